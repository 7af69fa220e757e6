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
            ApiError::new(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
                .into_response()
        })?;
    // The key space belongs to the credential that sent it: two callers never share keys.
    let credential = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let scope = secret::hash(&String::from_utf8_lossy(&credential));
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, state.body_limit)
        .await
        .map_err(|_| ApiError::new(413, "payload_too_large", "the request body is too large").into_response())?;
    let fingerprint = {
        let mut material = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
        material.extend_from_slice(&bytes);
        secret::hash(&String::from_utf8_lossy(&material))
    };
    let now = state.services.now();
    let ttl = state.idempotency_ttl_ms;
    let store = &state.services.store;
    let internal = |e: ami_store::StoreError| ApiError(ami_services::Error::Internal(e)).into_response();
    let claim = {
        let mut tx = store.begin().await.map_err(internal)?;
        let claim = idempotency::claim(&mut tx, &scope, &key, &fingerprint, now, ttl).await.map_err(internal)?;
        ami_store::commit(tx).await.map_err(internal)?;
        claim
    };
    match claim {
        Claim::Replay { status, body } => {
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
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
            return Err(ApiError::new(409, "idempotency_key_in_flight", "a request with this Idempotency-Key is still running")
                .into_response());
        }
        Claim::Fresh => {}
    }
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = res.into_parts();
    let body = to_bytes(body, MAX_STORED_RESPONSE).await.unwrap_or_default();
    let mut tx = store.begin().await.map_err(internal)?;
    // Server errors are not final: forget the key so a retry runs again.
    if parts.status.is_server_error() {
        idempotency::release(&mut tx, &scope, &key).await.map_err(internal)?;
    } else {
        let text = String::from_utf8_lossy(&body);
        idempotency::complete(&mut tx, &scope, &key, parts.status.as_u16(), &text).await.map_err(internal)?;
    }
    ami_store::commit(tx).await.map_err(internal)?;
    Ok(Response::from_parts(parts, Body::from(body)))
}
