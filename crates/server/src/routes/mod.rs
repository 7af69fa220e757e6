//! Every HTTP route, grouped by who calls it. Each module returns an `OpenApiRouter`, so the
//! OpenAPI document is built from the same list that serves requests and cannot drift.

pub mod admin;
pub mod agent;
pub mod calls;
pub mod carrier_events;
pub mod contracting;
pub mod discovery;
pub mod events;
pub mod kill_switch;
pub mod kyc;
pub mod kyc_page;
pub mod metrics;
pub mod mids;
pub mod sandbox;
pub mod sign;
pub mod telco;
pub mod webhooks;

use axum::Json;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use ami_store::page::PageRequest;

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::query::clamp_limit;

pub type ApiResult<T> = Result<Json<T>, ApiError>;
pub type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

pub fn created<T>(value: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(value))
}

/// PROTOCOL §2: `{"error": code, "message": text, ...extra}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub error: String,
    pub message: String,
}

/// A body that must be empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `limit` and `cursor` of every list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Default 20; clamped to 1..200.
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{0,64}$")]
    pub cursor: Option<String>,
}

/// The `direction` filter of message and call lists.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Direction {
    Outbound,
    Inbound,
}

impl ListQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        page(self.limit.as_deref(), self.cursor.as_deref(), 20, 200)
    }
}

pub fn page(
    limit: Option<&str>,
    cursor: Option<&str>,
    default: i64,
    max: i64,
) -> Result<PageRequest, ApiError> {
    let limit = clamp_limit(limit, default, max)?;
    let cursor = match cursor {
        None | Some("") => None,
        Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Some(c.to_owned())
        }
        Some(_) => {
            return Err(ApiError::new(
                400,
                "invalid_cursor",
                "cursor is not one this server issued",
            ));
        }
    };
    Ok(PageRequest { limit, cursor })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(discovery::router())
        .merge(events::router())
        .merge(admin::router())
        .merge(carrier_events::router())
        .merge(contracting::router())
        .merge(mids::router())
        .merge(agent::router())
        .merge(calls::router())
        .merge(kill_switch::router())
        .merge(sign::router())
        .merge(kyc::router())
        .merge(kyc_page::router())
        .merge(telco::router())
        .merge(sandbox::router())
        .merge(webhooks::router())
        .merge(metrics::router())
}
