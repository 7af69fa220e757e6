//! Credential extractors. A handler names the level it serves by taking one of these; the
//! caller it yields carries the tenant, so no handler reads an account from the request.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use ami_core::secret;
use ami_services::auth::{AdminCaller, AgentCaller, CustomerCaller};

use crate::app::AppState;
use crate::http::error::ApiError;

fn bearer(parts: &Parts) -> Option<&str> {
    bearer_of(&parts.headers)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Level 1: a customer API key.
pub struct Customer(pub CustomerCaller);
/// Level 2: an agent token, bound to one MID.
pub struct Agent(pub AgentCaller);
/// The operator master key.
pub struct Admin(pub AdminCaller);
/// The carrier partner: header `X-Telco-Key` equal to `AMI_TELCO_INBOUND_KEY`.
pub struct Telco;
/// Sandbox servers only: elsewhere the route answers like a route that does not exist.
pub struct SandboxOnly;

pub const TELCO_KEY_HEADER: &str = "x-telco-key";

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Customer(
            state.services.authenticate_customer(bearer(parts)).await?,
        ))
    }
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Agent(
            state.services.authenticate_agent(bearer(parts)).await?,
        ))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Admin(state.services.authenticate_admin(bearer(parts))?))
    }
}

impl FromRequestParts<AppState> for Telco {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_telco_key(&parts.headers, state)?;
        Ok(Telco)
    }
}

/// The telco key check: 503 `telco_inbound_disabled` when no key is configured; otherwise a
/// missing, unreadable or wrong key is the same 401 `invalid_telco_key`. The comparison is
/// of SHA-256 digests in constant time, so neither the key nor its length leaks by timing.
pub fn check_telco_key(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.telco_key_hash.as_deref() else {
        return Err(ApiError::new(
            503,
            "telco_inbound_disabled",
            "telco callbacks are not enabled on this server",
        ));
    };
    let given = headers.get(TELCO_KEY_HEADER).and_then(|v| v.to_str().ok());
    let digest = secret::hash(given.unwrap_or_default());
    if given.is_some() && secret::ct_eq(digest.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError(ami_services::Error::unauthorized(
            "invalid_telco_key",
        )))
    }
}

impl FromRequestParts<AppState> for SandboxOnly {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.services.settings.sandbox {
            Ok(SandboxOnly)
        } else {
            Err(crate::http::hygiene::fallback().await)
        }
    }
}
