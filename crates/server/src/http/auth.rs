//! Credential extractors. A handler names the level it serves by taking one of these; the
//! caller it yields carries the tenant, so no handler reads an account from the request.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

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
