//! `/mcp` answers anybody's discovery (`initialize`, `tools/list`) and runs its tools with a
//! bearer credential checked by each tool. What a caller can cost before its body is read is
//! bounded here, as the authentication layer bounds every other route: a credential, when
//! given, must hold (a customer key or an agent token) before anything is read; without one,
//! the body must declare its length and stay small, as discovery messages are.

use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

use ami_core::secret::AGENT_TOKEN_PREFIX;
use ami_services::Error;

use crate::app::AppState;
use crate::http::auth::bearer_of;
use crate::http::error::ApiError;

/// The largest body of a request to `/mcp` without a credential.
pub const ANONYMOUS_BODY_MAX: u64 = 64 * 1024;

/// The refusal of a request to `/mcp`, or None when it may be served.
pub async fn refusal(state: &AppState, method: &Method, headers: &HeaderMap) -> Option<Response> {
    if method != Method::POST {
        return None;
    }
    if !headers.contains_key(header::AUTHORIZATION) {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        return match declared {
            Some(n) if n <= ANONYMOUS_BODY_MAX => None,
            _ => Some(
                ApiError(
                    Error::refused(
                        413,
                        "payload_too_large",
                        "without a credential, /mcp takes a body of declared length up to 64 KiB",
                    )
                    .with("max_bytes", ANONYMOUS_BODY_MAX),
                )
                .into_response(),
            ),
        };
    }
    let token = bearer_of(headers);
    let services = &state.services;
    let holds = match token {
        Some(t) if t.starts_with(AGENT_TOKEN_PREFIX) => {
            services.authenticate_agent(token).await.is_ok()
        }
        Some(_) => services.authenticate_customer(token).await.is_ok(),
        None => false,
    };
    (!holds).then(|| ApiError(Error::unauthorized("unauthorized")).into_response())
}
