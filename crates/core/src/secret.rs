//! Credentials: generation, hashing for storage, display prefixes, constant-time comparison.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const CUSTOMER_KEY_PREFIX: &str = "amik_live_";
pub const AGENT_TOKEN_PREFIX: &str = "amiagt_live_";
pub const ADMIN_KEY_PREFIX: &str = "amiadm_live_";

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// `amik_live_` + 48 hex (192 bits).
pub fn new_customer_key() -> String {
    format!("{CUSTOMER_KEY_PREFIX}{}", random_hex(24))
}

/// `amiagt_live_` + 64 hex (256 bits).
pub fn new_agent_token() -> String {
    format!("{AGENT_TOKEN_PREFIX}{}", random_hex(32))
}

pub fn new_admin_key() -> String {
    format!("{ADMIN_KEY_PREFIX}{}", random_hex(32))
}

/// A link's token handed to a person (the KYC page): 256 bits, URL-safe hex.
pub fn new_link_token() -> String {
    random_hex(32)
}

/// A fresh 256-bit key (hex) for deriving signing tokens, kept in the database's settings.
pub fn new_signing_token_key() -> String {
    random_hex(32)
}

/// Signing-page token of one contract: HMAC-SHA256 of its id under the database's key, hex.
/// Derived rather than random so the owner can read it again while the store keeps only
/// its hash.
pub fn signing_token(key: &str, contract_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes a key of any length"),
    };
    mac.update(b"ami signing token v1\0");
    mac.update(contract_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn is_hex_tail(s: &str, prefix: &str, len: usize) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|t| t.len() == len && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn is_customer_key(s: &str) -> bool {
    is_hex_tail(s, CUSTOMER_KEY_PREFIX, 48)
}

pub fn is_agent_token(s: &str) -> bool {
    is_hex_tail(s, AGENT_TOKEN_PREFIX, 64)
}

/// Lowercase hex SHA-256: what the store keeps instead of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The short, non-secret beginning shown in lists (`amik_live_1a2b`).
pub fn display_prefix(secret: &str) -> String {
    let tail_start = secret.rfind('_').map_or(0, |i| i + 1);
    secret.chars().take(tail_start + 4).collect()
}

/// Prefix plus the last four characters: enough for a person to tell keys apart.
pub fn hint(secret: &str) -> String {
    let last: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{}…{last}", display_prefix(secret))
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_protocol() {
        let k = new_customer_key();
        assert!(is_customer_key(&k), "{k}");
        assert_eq!(k.len(), 10 + 48);
        let t = new_agent_token();
        assert!(is_agent_token(&t));
        assert!(!is_agent_token(&k) && !is_customer_key(&t));
        assert_eq!(
            signing_token(&new_signing_token_key(), "contract_x").len() * 4,
            256
        );
    }

    #[test]
    fn hash_and_prefix() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(display_prefix("amik_live_0123456789"), "amik_live_0123");
        assert_eq!(hint("amik_live_0123456789"), "amik_live_0123…6789");
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab"));
    }
}
