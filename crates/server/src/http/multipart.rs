//! A strict `multipart/form-data` reader for the one HTML form that uploads files (the KYC
//! page). The body is already read, within its limit; this only splits it into named parts.

use bytes::Bytes;

/// One field of the form.
pub struct Part {
    pub name: String,
    /// Present for file inputs.
    pub filename: Option<String>,
    pub data: Bytes,
}

/// Why a body is not a form this server reads.
#[derive(Debug, PartialEq, Eq)]
pub enum MultipartError {
    /// The Content-Type is not `multipart/form-data` with a usable boundary.
    NotMultipart,
    /// Broken framing, headers or too many parts.
    Malformed,
}

/// Most parts a form may have.
const MAX_PARTS: usize = 32;
/// Longest header block of one part.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// The boundary of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let mut params = content_type.split(';');
    let essence = params.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    let b = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .ok_or(MultipartError::NotMultipart)?;
    // RFC 2046: 1 to 70 characters.
    if b.is_empty() || b.len() > 70 || b.chars().any(|c| c.is_control()) {
        return Err(MultipartError::NotMultipart);
    }
    Ok(b)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `name="value"` of a Content-Disposition header.
fn param(disposition: &str, key: &str) -> Option<String> {
    disposition.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits a body into its parts.
pub fn parse(content_type: &str, body: &Bytes) -> Result<Vec<Part>, MultipartError> {
    let b = boundary(content_type)?;
    let delimiter = format!("--{b}").into_bytes();
    let next_delimiter = format!("\r\n--{b}").into_bytes();
    let mut pos = find(body, &delimiter, 0).ok_or(MultipartError::Malformed)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(MultipartError::Malformed);
        }
        pos += 2;
        let headers_end = find(body, b"\r\n\r\n", pos).ok_or(MultipartError::Malformed)?;
        if headers_end - pos > MAX_PART_HEADERS {
            return Err(MultipartError::Malformed);
        }
        let headers =
            std::str::from_utf8(&body[pos..headers_end]).map_err(|_| MultipartError::Malformed)?;
        let disposition = headers
            .split("\r\n")
            .filter_map(|h| h.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| v.trim())
            .ok_or(MultipartError::Malformed)?;
        if !disposition
            .split(';')
            .next()
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("form-data"))
        {
            return Err(MultipartError::Malformed);
        }
        let name = param(disposition, "name").ok_or(MultipartError::Malformed)?;
        let filename = param(disposition, "filename");
        let start = headers_end + 4;
        let end = find(body, &next_delimiter, start).ok_or(MultipartError::Malformed)?;
        parts.push(Part {
            name,
            filename,
            data: body.slice(start..end),
        });
        if parts.len() > MAX_PARTS {
            return Err(MultipartError::Malformed);
        }
        pos = end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn reads_fields_and_files() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"full_name\"\r\n\r\nAna Ruiz\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"document_front\"; filename=\"f.png\"\r\n\
              Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--XyZ--\r\n",
        );
        let parts = parse(CT, &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "full_name");
        assert_eq!(&parts[0].data[..], b"Ana Ruiz");
        assert_eq!(parts[1].filename.as_deref(), Some("f.png"));
        assert_eq!(&parts[1].data[..], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn refuses_what_is_not_a_form() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
        );
        assert_eq!(parse(CT, &body).err(), Some(MultipartError::Malformed));
        assert_eq!(
            parse("application/json", &body).err(),
            Some(MultipartError::NotMultipart)
        );
        assert_eq!(
            parse("multipart/form-data", &body).err(),
            Some(MultipartError::NotMultipart)
        );
        let nameless =
            Bytes::from_static(b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--");
        assert_eq!(parse(CT, &nameless).err(), Some(MultipartError::Malformed));
    }
}
