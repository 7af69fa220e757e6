//! `Idempotency-Key` on mutating POSTs (PROTOCOL §0): the same key and body within the window
//! replays the stored response; the same key with another body is `409 idempotency_key_reused`.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use ami_core::secret;
use ami_store::idempotency::{self, Claim};

use crate::app::AppState;
use crate::http::error::ApiError;

const HEADER: &str = "idempotency-key";
/// Responses larger than this are not kept for replay (none of ours come close).
const MAX_STORED_RESPONSE: usize = 256 * 1024;

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    match handle(state, req, next).await {
        Ok(res) | Err(res) => res,
    }
}

async fn handle(state: AppState, req: Request, next: Next) -> Result<Response, Response> {
    let key = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        })?;
    // The key space belongs to the credential that sent it: two callers never share keys.
    let credential = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let credential = String::from_utf8_lossy(&credential).into_owned();
    let scope = secret::hash(&credential);
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, state.body_limit).await.map_err(|_| {
        ApiError::new(413, "payload_too_large", "the request body is too large").into_response()
    })?;
    let fingerprint = {
        let mut material = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
        material.extend_from_slice(&bytes);
        secret::hash(&String::from_utf8_lossy(&material))
    };
    let now = state.services.now();
    let ttl = state.idempotency_ttl_ms;
    let store = &state.services.store;
    let internal =
        |e: ami_store::StoreError| ApiError(ami_services::Error::Internal(e)).into_response();
    let claim = {
        let mut tx = store.begin().await.map_err(internal)?;
        let claim = idempotency::claim(&mut tx, &scope, &key, &fingerprint, now, ttl)
            .await
            .map_err(internal)?;
        ami_store::commit(tx).await.map_err(internal)?;
        claim
    };
    match claim {
        Claim::Replay { status, body } => {
            let body = open(&credential, &key, &body).ok_or_else(|| {
                internal(ami_store::StoreError::Corrupt(
                    "a stored idempotent response does not open".into(),
                ))
            })?;
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(res);
        }
        Claim::Mismatch => {
            return Err(ApiError::new(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            .into_response());
        }
        Claim::InFlight => {
            return Err(ApiError::new(
                409,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still running",
            )
            .into_response());
        }
        Claim::Fresh => {}
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = res.into_parts();
    let body = to_bytes(body, MAX_STORED_RESPONSE)
        .await
        .unwrap_or_default();
    let mut tx = store.begin().await.map_err(internal)?;
    // Server errors are not final: forget the key so a retry runs again.
    if parts.status.is_server_error() {
        idempotency::release(&mut tx, &scope, &key)
            .await
            .map_err(internal)?;
    } else {
        let sealed = seal(&credential, &key, &String::from_utf8_lossy(&body));
        idempotency::complete(&mut tx, &scope, &key, parts.status.as_u16(), &sealed)
            .await
            .map_err(internal)?;
    }
    ami_store::commit(tx).await.map_err(internal)?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Marks a sealed stored response; anything else is a plaintext row from an older version.
const SEALED: &str = "sealed-v1:";

/// A stored response may carry a secret shown once (an API key, an agent token, a signing
/// URL), and the store never holds a secret in plaintext (PROTOCOL §1, §10). So it is kept
/// sealed under a key derived from the caller's credential, which the store only knows
/// hashed: the replay, sent with that same credential, opens it; a reader of the database
/// cannot. The cipher is a SHA-256 keystream (counter mode) under a fresh random nonce, with
/// a SHA-256 tag over the ciphertext.
fn seal(credential: &str, key: &str, plaintext: &str) -> String {
    let k = seal_key(credential, key);
    let nonce = secret::new_signing_token();
    let ciphertext = to_hex(&keystream_xor(&k, &nonce, plaintext.as_bytes()));
    let tag = secret::hash(&format!("{k}\n{nonce}\n{ciphertext}"));
    format!("{SEALED}{nonce}:{tag}:{ciphertext}")
}

/// The plaintext of a stored response; None when it was sealed under another key or altered.
fn open(credential: &str, key: &str, stored: &str) -> Option<String> {
    let Some(sealed) = stored.strip_prefix(SEALED) else {
        return Some(stored.to_owned());
    };
    let (nonce, rest) = sealed.split_once(':')?;
    let (tag, ciphertext) = rest.split_once(':')?;
    let k = seal_key(credential, key);
    let expected = secret::hash(&format!("{k}\n{nonce}\n{ciphertext}"));
    if !secret::ct_eq(expected.as_bytes(), tag.as_bytes()) {
        return None;
    }
    String::from_utf8(keystream_xor(&k, nonce, &from_hex(ciphertext)?)).ok()
}

fn seal_key(credential: &str, key: &str) -> String {
    secret::hash(&format!("ami idempotency seal v1\n{credential}\n{key}"))
}

fn keystream_xor(k: &str, nonce: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (i, chunk) in data.chunks(32).enumerate() {
        let block = from_hex(&secret::hash(&format!("{k}\n{nonce}\n{i}"))).unwrap_or_default();
        out.extend(chunk.iter().zip(block).map(|(b, s)| b ^ s));
    }
    out
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_responses_open_only_with_the_same_credential_and_key() {
        let body = r#"{"api_key":"amik_live_0123456789abcdef","note":"ünïcode"}"#;
        let sealed = seal("Bearer a", "k1", body);
        assert!(!sealed.contains("amik_live_") && sealed.starts_with(SEALED));
        assert_ne!(
            sealed,
            seal("Bearer a", "k1", body),
            "a fresh nonce each time"
        );
        assert_eq!(open("Bearer a", "k1", &sealed).as_deref(), Some(body));
        assert_eq!(open("Bearer b", "k1", &sealed), None);
        assert_eq!(open("Bearer a", "k2", &sealed), None);
        let last = if sealed.ends_with('0') { "1" } else { "0" };
        let altered = format!("{}{last}", &sealed[..sealed.len() - 1]);
        assert_eq!(open("Bearer a", "k1", &altered), None);
        assert_eq!(
            open("x", "y", "{\"legacy\":1}").as_deref(),
            Some("{\"legacy\":1}")
        );
        assert_eq!(
            open("Bearer a", "k1", &seal("Bearer a", "k1", "")).as_deref(),
            Some("")
        );
    }
}
