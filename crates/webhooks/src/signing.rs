//! Signing one delivery attempt with both schemes (pure).
//!
//! Both MACs cover the exact body bytes that are sent. The timestamp is the attempt's
//! own, so every retry carries a fresh signature; the message id stays the same across
//! retries (it is the receiver's idempotency key).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::secret::{InvalidSecret, compatible_key, standard_key};

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Compatible scheme: `sha256=<lowercase hex>`.
pub const X_AMI_SIGNATURE: &str = "x-ami-signature";
/// Compatible scheme: unix seconds of the attempt.
pub const X_AMI_TIMESTAMP: &str = "x-ami-timestamp";
/// Compatible scheme: the webhook (`wh_…`).
pub const X_AMI_WEBHOOK_ID: &str = "x-ami-webhook-id";
/// Standard Webhooks: the message id, stable across retries.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks: unix seconds of the attempt.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64>`, space-separated when several.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Why a delivery could not be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The secret is not a `whsec_` secret.
    #[error("invalid webhook secret")]
    InvalidSecret,
    /// An id is empty, too long, or has a character other than `[A-Za-z0-9_-]`. A `.`
    /// would make the signed string ambiguous; anything else could break the header.
    #[error("invalid id for a signature header")]
    InvalidId,
}

impl From<InvalidSecret> for SignError {
    fn from(_: InvalidSecret) -> Self {
        SignError::InvalidSecret
    }
}

/// The six signature headers of one attempt, as header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `X-Ami-Signature: sha256=<hex>`.
    pub ami_signature: String,
    /// `X-Ami-Timestamp`.
    pub ami_timestamp: String,
    /// `X-Ami-Webhook-Id: wh_…`.
    pub ami_webhook_id: String,
    /// `webhook-id`: the message id.
    pub webhook_id: String,
    /// `webhook-timestamp`.
    pub webhook_timestamp: String,
    /// `webhook-signature: v1,<base64>`.
    pub webhook_signature: String,
}

impl SignatureHeaders {
    /// Name and value pairs, in a fixed order.
    pub fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            (X_AMI_SIGNATURE, &self.ami_signature),
            (X_AMI_TIMESTAMP, &self.ami_timestamp),
            (X_AMI_WEBHOOK_ID, &self.ami_webhook_id),
            (WEBHOOK_ID, &self.webhook_id),
            (WEBHOOK_TIMESTAMP, &self.webhook_timestamp),
            (WEBHOOK_SIGNATURE, &self.webhook_signature),
        ]
    }

    /// Adds the six headers to `headers`, replacing any of the same name.
    pub fn apply_to(&self, headers: &mut HeaderMap) -> Result<(), SignError> {
        for (name, value) in self.pairs() {
            // The values are built from checked ids, digits, hex and base64, so this
            // cannot fail; the error is still handled rather than assumed away.
            let value = HeaderValue::from_str(value).map_err(|_| SignError::InvalidId)?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(())
    }

    /// The six headers as a fresh map.
    pub fn to_header_map(&self) -> Result<HeaderMap, SignError> {
        let mut headers = HeaderMap::new();
        self.apply_to(&mut headers)?;
        Ok(headers)
    }
}

fn check_id(id: &str) -> Result<(), SignError> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SignError::InvalidId)
    }
}

/// `HMAC-SHA256(key, part₀ ‖ part₁ ‖ …)`. HMAC takes keys of any length, so the
/// error arm is never taken in practice; it is mapped instead of unwrapped.
fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> Result<HmacSha256, InvalidSecret> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| InvalidSecret)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac)
}

/// Compatible scheme MAC input: `ts + "." + body`.
pub(crate) fn compatible_mac(
    key: &[u8],
    timestamp: &str,
    body: &[u8],
) -> Result<HmacSha256, InvalidSecret> {
    hmac_parts(key, &[timestamp.as_bytes(), b".", body])
}

/// Standard Webhooks MAC input: `id + "." + ts + "." + body`.
pub(crate) fn standard_mac(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<HmacSha256, InvalidSecret> {
    hmac_parts(
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}

/// Signs one attempt: `webhook_id` is the endpoint (`wh_…`), `message_id` the event's
/// id that stays the same across retries, `timestamp_secs` this attempt's unix time.
pub fn sign(
    secret: &str,
    webhook_id: &str,
    message_id: &str,
    timestamp_secs: u64,
    body: &[u8],
) -> Result<SignatureHeaders, SignError> {
    check_id(webhook_id)?;
    check_id(message_id)?;
    let timestamp = timestamp_secs.to_string();
    let compatible = compatible_mac(compatible_key(secret)?, &timestamp, body)?;
    let standard = standard_mac(&standard_key(secret)?, message_id, &timestamp, body)?;
    Ok(SignatureHeaders {
        ami_signature: format!("sha256={}", hex::encode(compatible.finalize().into_bytes())),
        ami_timestamp: timestamp.clone(),
        ami_webhook_id: webhook_id.to_owned(),
        webhook_id: message_id.to_owned(),
        webhook_timestamp: timestamp,
        webhook_signature: format!("v1,{}", STANDARD.encode(standard.finalize().into_bytes())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn ids_with_separators_or_header_breakers_are_refused() {
        for bad in ["", "a.b", "a b", "a\r\nb", "é", &"a".repeat(257)] {
            assert_eq!(
                sign(SECRET, bad, "evt_1", 1, b"{}"),
                Err(SignError::InvalidId),
                "{bad:?}"
            );
            assert_eq!(
                sign(SECRET, "wh_1", bad, 1, b"{}"),
                Err(SignError::InvalidId),
                "{bad:?}"
            );
        }
        assert_eq!(
            sign("whsec_x", "wh_1", "evt_1", 1, b"{}"),
            Err(SignError::InvalidSecret)
        );
    }

    #[test]
    fn headers_convert_to_a_map() {
        let headers = sign(SECRET, "wh_1", "evt_1", 1_700_000_000, b"{}").unwrap();
        let map = headers.to_header_map().unwrap();
        assert_eq!(map.len(), 6);
        assert_eq!(map[X_AMI_TIMESTAMP], "1700000000");
        assert_eq!(map[WEBHOOK_ID], "evt_1");
        assert_eq!(map[X_AMI_WEBHOOK_ID], "wh_1");
    }

    #[test]
    fn every_input_changes_the_signatures() {
        let base = sign(SECRET, "wh_1", "evt_1", 1_700_000_000, b"{}").unwrap();
        let other_body = sign(SECRET, "wh_1", "evt_1", 1_700_000_000, b"{} ").unwrap();
        let other_ts = sign(SECRET, "wh_1", "evt_1", 1_700_000_001, b"{}").unwrap();
        let other_msg = sign(SECRET, "wh_1", "evt_2", 1_700_000_000, b"{}").unwrap();
        for changed in [&other_body, &other_ts] {
            assert_ne!(base.ami_signature, changed.ami_signature);
            assert_ne!(base.webhook_signature, changed.webhook_signature);
        }
        // The compatible scheme does not cover the message id; Standard Webhooks does.
        assert_eq!(base.ami_signature, other_msg.ami_signature);
        assert_ne!(base.webhook_signature, other_msg.webhook_signature);
    }
}
