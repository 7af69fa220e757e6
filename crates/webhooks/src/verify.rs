//! Verifying a received delivery, for receivers and for the CLI (pure).
//!
//! Order of checks: headers present and well-formed, then the two-sided time window,
//! then the MAC, compared in constant time on the decoded bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use http::HeaderMap;

use crate::secret::{compatible_key, standard_key};
use crate::signing::{
    WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, X_AMI_SIGNATURE, X_AMI_TIMESTAMP,
    compatible_mac, standard_mac,
};

/// Accepted clock difference, each way: 5 minutes.
pub const TOLERANCE_SECS: u64 = 300;

/// Why a delivery did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not in the expected format.
    #[error("malformed header {0}")]
    BadFormat(&'static str),
    /// The timestamp is more than [`TOLERANCE_SECS`] in the past.
    #[error("timestamp too old")]
    TimestampTooOld,
    /// The timestamp is more than [`TOLERANCE_SECS`] in the future.
    #[error("timestamp too new")]
    TimestampTooNew,
    /// No signature matches the body.
    #[error("no matching signature")]
    Mismatch,
    /// The secret is not a `whsec_` secret.
    #[error("invalid webhook secret")]
    InvalidSecret,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    let value = headers.get(name).ok_or(VerifyError::MissingHeader(name))?;
    value.to_str().map_err(|_| VerifyError::BadFormat(name))
}

/// Strict: 1 to 12 ASCII digits, so that `ts + "." + body` cannot be re-split.
fn parse_timestamp(value: &str, name: &'static str) -> Result<u64, VerifyError> {
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadFormat(name));
    }
    value.parse().map_err(|_| VerifyError::BadFormat(name))
}

fn check_window(timestamp: u64, now_secs: u64) -> Result<(), VerifyError> {
    if timestamp.saturating_add(TOLERANCE_SECS) < now_secs {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp > now_secs.saturating_add(TOLERANCE_SECS) {
        return Err(VerifyError::TimestampTooNew);
    }
    Ok(())
}

/// Verifies the compatible scheme from its two header values.
pub fn verify_compatible_parts(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: u64,
) -> Result<(), VerifyError> {
    let key = compatible_key(secret).map_err(|_| VerifyError::InvalidSecret)?;
    let ts = parse_timestamp(timestamp, X_AMI_TIMESTAMP)?;
    let presented = signature
        .strip_prefix("sha256=")
        .filter(|hex| hex.len() == 64)
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(VerifyError::BadFormat(X_AMI_SIGNATURE))?;
    check_window(ts, now_secs)?;
    compatible_mac(key, timestamp, body)
        .map_err(|_| VerifyError::InvalidSecret)?
        .verify_slice(&presented)
        .map_err(|_| VerifyError::Mismatch)
}

/// Verifies the compatible scheme (`X-Ami-Timestamp`, `X-Ami-Signature`).
pub fn verify_compatible(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: u64,
) -> Result<(), VerifyError> {
    let timestamp = header(headers, X_AMI_TIMESTAMP)?;
    let signature = header(headers, X_AMI_SIGNATURE)?;
    verify_compatible_parts(secret, timestamp, signature, body, now_secs)
}

/// Verifies the Standard Webhooks scheme from its three header values. Any one of
/// several space-separated `v1,` signatures may match (secret rotation).
pub fn verify_standard_parts(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: u64,
) -> Result<(), VerifyError> {
    let key = standard_key(secret).map_err(|_| VerifyError::InvalidSecret)?;
    if id.is_empty() {
        return Err(VerifyError::BadFormat(WEBHOOK_ID));
    }
    let ts = parse_timestamp(timestamp, WEBHOOK_TIMESTAMP)?;
    let candidates: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::BadFormat(WEBHOOK_SIGNATURE));
    }
    check_window(ts, now_secs)?;
    let mac = standard_mac(&key, id, timestamp, body).map_err(|_| VerifyError::InvalidSecret)?;
    let matched = candidates
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Verifies the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`).
pub fn verify_standard(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: u64,
) -> Result<(), VerifyError> {
    let id = header(headers, WEBHOOK_ID)?;
    let timestamp = header(headers, WEBHOOK_TIMESTAMP)?;
    let signatures = header(headers, WEBHOOK_SIGNATURE)?;
    verify_standard_parts(secret, id, timestamp, signatures, body, now_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::sign;

    const SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const TS: u64 = 1_700_000_000;

    fn signed(body: &[u8]) -> HeaderMap {
        sign(SECRET, "wh_1", "evt_1", TS, body)
            .unwrap()
            .to_header_map()
            .unwrap()
    }

    #[test]
    fn window_edges() {
        let h = signed(b"{}");
        for (now, want) in [
            (TS, Ok(())),
            (TS + 300, Ok(())),
            (TS - 300, Ok(())),
            (TS + 301, Err(VerifyError::TimestampTooOld)),
            (TS - 301, Err(VerifyError::TimestampTooNew)),
        ] {
            assert_eq!(verify_compatible(SECRET, &h, b"{}", now), want, "{now}");
            assert_eq!(verify_standard(SECRET, &h, b"{}", now), want, "{now}");
        }
    }

    #[test]
    fn malformed_timestamps() {
        for bad in [
            "",
            "-1",
            "1.5",
            "17e8",
            "12345678901234567890",
            " 1",
            "0x10",
        ] {
            assert_eq!(
                verify_compatible_parts(
                    SECRET,
                    bad,
                    &format!("sha256={}", "0".repeat(64)),
                    b"",
                    TS
                ),
                Err(VerifyError::BadFormat(X_AMI_TIMESTAMP)),
                "{bad:?}"
            );
            assert_eq!(
                verify_standard_parts(SECRET, "evt_1", bad, "v1,AAAA", b"", TS),
                Err(VerifyError::BadFormat(WEBHOOK_TIMESTAMP)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_and_malformed_headers() {
        let empty = HeaderMap::new();
        assert_eq!(
            verify_compatible(SECRET, &empty, b"", TS),
            Err(VerifyError::MissingHeader(X_AMI_TIMESTAMP))
        );
        assert_eq!(
            verify_standard(SECRET, &empty, b"", TS),
            Err(VerifyError::MissingHeader(WEBHOOK_ID))
        );
        for bad in ["", "sha256=", "sha256=zz", "sha1=00", &"0".repeat(64)] {
            assert_eq!(
                verify_compatible_parts(SECRET, "1700000000", bad, b"", TS),
                Err(VerifyError::BadFormat(X_AMI_SIGNATURE)),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify_standard_parts(SECRET, "evt_1", "1700000000", "v2,AAAA", b"", TS),
            Err(VerifyError::BadFormat(WEBHOOK_SIGNATURE))
        );
    }

    #[test]
    fn rotation_accepts_any_listed_signature() {
        let h = signed(b"{}");
        let good = h[WEBHOOK_SIGNATURE].to_str().unwrap();
        let list = format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {good}");
        assert_eq!(
            verify_standard_parts(SECRET, "evt_1", "1700000000", &list, b"{}", TS),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        let h = signed(b"{}");
        let other = "whsec_AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(
            verify_compatible(other, &h, b"{}", TS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_standard(other, &h, b"{}", TS),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_standard("nope", &h, b"{}", TS),
            Err(VerifyError::InvalidSecret)
        );
    }
}
