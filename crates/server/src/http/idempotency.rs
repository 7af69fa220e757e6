//! `Idempotency-Key` on mutating POSTs (PROTOCOL §0): the same key and body within the window
//! replays the stored response; the same key with another body is `409 idempotency_key_reused`.
//!
//! Keys belong to the credential that sent them. A stored response may hold a secret shown
//! once (an API key, an agent token, a signing link), and the store never keeps a secret in
//! plaintext, so responses are sealed with ChaCha20-Poly1305 under a key derived from the
//! credential, which the store only knows hashed. A replay is served only while that
//! credential still authenticates: a rotated or suspended credential gets its 401/403.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use ami_core::secret;
use ami_store::idempotency::{self, Claim};

use crate::app::AppState;
use crate::http::auth::{TELCO_KEY_HEADER, bearer_of, check_telco_key};
use crate::http::error::ApiError;

const HEADER: &str = "idempotency-key";
/// Responses larger than this are not kept for replay (none of ours come close).
const MAX_STORED_RESPONSE: usize = 256 * 1024;
const SEALED: &str = "sealed-v2:";

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    match handle(state, req, next).await {
        Ok(res) | Err(res) => res,
    }
}

/// The credential a request carries, whatever its level.
fn credential(headers: &HeaderMap) -> Option<String> {
    [header::AUTHORIZATION.as_str(), TELCO_KEY_HEADER]
        .into_iter()
        .find_map(|h| headers.get(h))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
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
    // Without a credential there is no key space to keep it in: the request simply runs.
    let Some(credential) = credential(req.headers()) else {
        return Ok(next.run(req).await);
    };
    let scope = secret::hash(&credential);
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, state.body_limit).await.map_err(|_| {
        ApiError::new(413, "payload_too_large", "the request body is too large").into_response()
    })?;
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(format!("{} {}\n", parts.method, parts.uri.path()));
        h.update(&bytes);
        hex::encode(h.finalize())
    };
    let store = &state.services.store;
    let internal =
        |e: ami_store::StoreError| ApiError(ami_services::Error::Internal(e)).into_response();
    let claim = {
        let mut tx = store.begin().await.map_err(internal)?;
        let now = state.services.now();
        let claim = idempotency::claim(
            &mut tx,
            &scope,
            &key,
            &fingerprint,
            now,
            state.idempotency_ttl_ms,
        )
        .await
        .map_err(internal)?;
        ami_store::commit(tx).await.map_err(internal)?;
        claim
    };
    match claim {
        Claim::Fresh => {}
        Claim::Replay { status, body } => {
            // The credential the key space belongs to, checked at its own level.
            if parts.headers.contains_key(header::AUTHORIZATION) {
                state
                    .services
                    .authenticate_any(bearer_of(&parts.headers))
                    .await
                    .map_err(|e| ApiError(e).into_response())?;
            } else {
                check_telco_key(&parts.headers, &state).map_err(IntoResponse::into_response)?;
            }
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
        let sealed = seal(&credential, &key, &body);
        idempotency::complete(&mut tx, &scope, &key, parts.status.as_u16(), &sealed)
            .await
            .map_err(internal)?;
    }
    ami_store::commit(tx).await.map_err(internal)?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn cipher(credential: &str, key: &str) -> ChaCha20Poly1305 {
    // The credential is a high-entropy secret, so one domain-separated hash is a sound KDF.
    let mut h = Sha256::new();
    h.update(b"ami idempotency seal v2\0");
    h.update(credential.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    ChaCha20Poly1305::new(Key::from_slice(&h.finalize()))
}

fn seal(credential: &str, key: &str, plaintext: &[u8]) -> String {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    // Encryption with a fresh nonce cannot fail for inputs of this size.
    let ciphertext = cipher(credential, key)
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap_or_default();
    format!("{SEALED}{}:{}", hex::encode(nonce), hex::encode(ciphertext))
}

/// The plaintext, or None when sealed under another credential or key, or altered.
fn open(credential: &str, key: &str, stored: &str) -> Option<String> {
    let (nonce, ciphertext) = stored.strip_prefix(SEALED)?.split_once(':')?;
    let nonce = hex::decode(nonce).ok().filter(|n| n.len() == 12)?;
    let plain = cipher(credential, key)
        .decrypt(
            Nonce::from_slice(&nonce),
            hex::decode(ciphertext).ok()?.as_ref(),
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_responses_open_only_with_the_same_credential_and_key() {
        let body = r#"{"api_key":"amik_live_0123456789abcdef","note":"ünïcode"}"#;
        let sealed = seal("Bearer a", "k1", body.as_bytes());
        assert!(!sealed.contains("amik_live_") && sealed.starts_with(SEALED));
        assert_ne!(
            sealed,
            seal("Bearer a", "k1", body.as_bytes()),
            "a fresh nonce each time"
        );
        assert_eq!(open("Bearer a", "k1", &sealed).as_deref(), Some(body));
        assert_eq!(open("Bearer b", "k1", &sealed), None);
        assert_eq!(open("Bearer a", "k2", &sealed), None);
        let last = if sealed.ends_with('0') { "1" } else { "0" };
        let altered = format!("{}{last}", &sealed[..sealed.len() - 1]);
        assert_eq!(open("Bearer a", "k1", &altered), None);
        assert_eq!(open("x", "y", "{\"plain\":1}"), None);
        assert_eq!(
            open("Bearer a", "k1", &seal("Bearer a", "k1", b"")).as_deref(),
            Some("")
        );
    }
}
