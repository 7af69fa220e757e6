//! Webhook secrets: `whsec_` + standard base64 of 32 random bytes.
//!
//! The same string keys both schemes: its UTF-8 bytes for the compatible scheme, the
//! decoded bytes after `whsec_` for Standard Webhooks, so any Standard Webhooks library
//! accepts it as it is.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a generated secret (256 bits, the HMAC-SHA256 block-size sweet spot).
pub const SECRET_BYTES: usize = 32;

/// Decoded key lengths the Standard Webhooks specification allows.
const KEY_LEN: std::ops::RangeInclusive<usize> = 24..=64;

/// A secret that is not `whsec_` + base64 of 24 to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook secret")]
pub struct InvalidSecret;

/// A fresh secret from the operating system's CSPRNG.
pub fn generate_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The Standard Webhooks HMAC key: the base64 part of the secret, decoded.
pub fn standard_key(secret: &str) -> Result<Vec<u8>, InvalidSecret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
    if KEY_LEN.contains(&key.len()) {
        Ok(key)
    } else {
        Err(InvalidSecret)
    }
}

/// The compatible scheme's HMAC key: the whole secret string, prefix included.
pub fn compatible_key(secret: &str) -> Result<&[u8], InvalidSecret> {
    standard_key(secret)?;
    Ok(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_well_formed_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(a.len(), "whsec_".len() + 44);
        assert_eq!(standard_key(&a).unwrap().len(), 32);
        assert_eq!(compatible_key(&a).unwrap(), a.as_bytes());
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in [
            "",
            "whsec_",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "whsec_not*base64",
            "whsec_AAAA",
        ] {
            assert_eq!(standard_key(bad), Err(InvalidSecret), "{bad}");
        }
    }
}
