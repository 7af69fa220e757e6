//! `GET /metrics` (PROTOCOL §3.1): the process's metrics in the Prometheus text format.
//! Public, or the operator's with `metrics_public = false`: the authentication layer decides
//! (`http/auth.rs`), so the handler takes no caller.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ErrorBody;
use crate::app::AppState;
use crate::http::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Metrics in the Prometheus text format
///
/// HTTP requests by route template and status with their latency, the send path's
/// latencies (group commit, dispatcher claim and hand-off), carrier submissions and binds,
/// webhook attempts, and the queue depths, read from the store at each scrape. Public by
/// default; with `metrics_public = false` it takes the admin key.
#[utoipa::path(get, path = "/metrics", tag = "discovery", security((), ("adminKey" = [])),
    responses((status = 200, description = "Prometheus text exposition format, version 0.0.4", body = String, content_type = "text/plain"),
              (status = 401, description = "`metrics_public = false` and no valid admin key", body = ErrorBody)))]
async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    s.services.refresh_queue_depths().await?;
    let text = s.metrics.render().map_err(|e| {
        tracing::error!(error = %e, "metrics not rendered");
        ApiError::new(500, "internal_error", "internal error")
    })?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}
