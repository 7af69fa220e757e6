//! The response excerpt shown to the customer (pure).
//!
//! Only a little of a receiver's answer is kept, and never raw: if a guard bypass is
//! ever found, a short escaped excerpt keeps it a blind SSRF instead of a way to read
//! internal services, and escaping keeps terminal and HTML control sequences inert.

/// Longest stored excerpt, in bytes of escaped text.
pub const EXCERPT_MAX: usize = 1024;

/// Escapes `bytes` into printable ASCII (`\n`, `\r`, `\t`, `\\`, `\xHH`), stopping
/// before the escaped text would exceed `max_len` bytes. Returns the text and whether
/// input was left out.
pub fn escape_excerpt(bytes: &[u8], max_len: usize) -> (String, bool) {
    let mut out = String::with_capacity(max_len.min(bytes.len() * 4));
    for (i, &b) in bytes.iter().enumerate() {
        let piece: std::borrow::Cow<'static, str> = match b {
            b'\\' => "\\\\".into(),
            b'\n' => "\\n".into(),
            b'\r' => "\\r".into(),
            b'\t' => "\\t".into(),
            0x20..=0x7e => char::from(b).to_string().into(),
            _ => format!("\\x{b:02x}").into(),
        };
        if out.len() + piece.len() > max_len {
            return (out, i < bytes.len());
        }
        out.push_str(&piece);
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_everything_not_printable() {
        let (s, cut) = escape_excerpt(b"ok\r\n\t\\\x00\x1b[31m\x7f\xc3\xa9<", 100);
        assert_eq!(s, "ok\\r\\n\\t\\\\\\x00\\x1b[31m\\x7f\\xc3\\xa9<");
        assert!(!cut);
    }

    #[test]
    fn never_splits_an_escape() {
        let (s, cut) = escape_excerpt(b"abc\x00", 5);
        assert_eq!(s, "abc");
        assert!(cut);
    }

    proptest! {
        #[test]
        fn bounded_and_printable(bytes in proptest::collection::vec(any::<u8>(), 0..4096), max in 0usize..2048) {
            let (s, _) = escape_excerpt(&bytes, max);
            prop_assert!(s.len() <= max);
            prop_assert!(s.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        }
    }
}
