//! `/v1/agent/calls*`: an agent's calls (PROTOCOL §3.5).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::calls::{CallList, CallView, PlaceCall};

use super::{ApiResult, Created, Empty, ErrorBody, created};
use crate::app::AppState;
use crate::http::auth::Agent;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_call))
        .routes(routes!(list_calls))
        .routes(routes!(get_call))
        .routes(routes!(hang_up_call))
}

/// Places a call to `to`; once answered, its audio is bridged to `callback_sip_uri`. Every
/// §6 limit is checked and the call's slots reserved before anything reaches the carrier;
/// the call is charged per started minute when it ends.
#[utoipa::path(post, path = "/v1/agent/calls/place", tag = "agent", security(("agentBearer" = [])),
    request_body = PlaceCall,
    responses((status = 201, body = CallView),
              (status = 400, body = ErrorBody, description = "invalid_to, invalid_callback_sip_uri"),
              (status = 403, body = ErrorBody, description = "kill_switch"),
              (status = 409, body = ErrorBody, description = "mobile_identity_not_active"),
              (status = 429, body = ErrorBody, description = "a §6 limit, with reason and Retry-After")))]
async fn place_call(
    State(s): State<AppState>,
    Agent(a): Agent,
    ApiJson(input): ApiJson<PlaceCall>,
) -> Created<CallView> {
    Ok(created(s.services.place_call(&a, input).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CallQuery {
    /// `outbound` or `inbound`.
    #[param(value_type = Option<super::Direction>, inline)]
    direction: Option<String>,
    /// Default 20; clamped to 1..200.
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

/// The agent's calls, newest first.
#[utoipa::path(get, path = "/v1/agent/calls", tag = "agent", security(("agentBearer" = [])), params(CallQuery),
    responses((status = 200, body = CallList), (status = 400, body = ErrorBody)))]
async fn list_calls(
    State(s): State<AppState>,
    Agent(a): Agent,
    ApiQuery(q): ApiQuery<CallQuery>,
) -> ApiResult<CallList> {
    let page = super::page(q.limit.as_deref(), q.cursor.as_deref(), 20, 200)?;
    Ok(Json(
        s.services
            .list_calls(&a, q.direction.as_deref(), &page)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/agent/calls/{id}", tag = "agent", security(("agentBearer" = [])),
    params(("id" = String, Path, description = "call id")),
    responses((status = 200, body = CallView), (status = 404, body = ErrorBody, description = "call_not_found")))]
async fn get_call(
    State(s): State<AppState>,
    Agent(a): Agent,
    Path(id): Path<String>,
) -> ApiResult<CallView> {
    Ok(Json(s.services.get_call(&a, &id).await?))
}

/// Hangs up: a call not yet answered becomes `cancelled`, an answered one `completed` with
/// `hangup_cause: "hangup_by_agent"`. On a call that already ended, answers 200 with the call
/// unchanged.
#[utoipa::path(post, path = "/v1/agent/calls/{id}/hangup", tag = "agent", security(("agentBearer" = [])),
    params(("id" = String, Path, description = "call id")), request_body = Empty,
    responses((status = 200, body = CallView), (status = 404, body = ErrorBody, description = "call_not_found")))]
async fn hang_up_call(
    State(s): State<AppState>,
    Agent(a): Agent,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<CallView> {
    Ok(Json(s.services.hang_up_call(&a, &id).await?))
}
