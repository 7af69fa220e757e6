//! `/v1/agent/*`: what an agent token may do (PROTOCOL §3.5).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::policy_check::{PolicyCheck, PolicyVerdict};
use ami_services::sms::{SendSms, SmsList, SmsView};
use ami_services::sms_preview::{PreviewSms, SmsPreview};
use ami_services::usage::UsageSnapshot;
use ami_services::views::AgentSelf;

use super::{ApiResult, ErrorBody};
use crate::app::AppState;
use crate::http::auth::Agent;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agent_self))
        .routes(routes!(send_sms))
        .routes(routes!(list_sms))
        .routes(routes!(get_sms))
        .routes(routes!(agent_usage))
        .routes(routes!(check_policy))
        .routes(routes!(preview_sms))
}

#[utoipa::path(get, path = "/v1/agent/self", tag = "agent", security(("agentBearer" = [])),
    responses((status = 200, body = AgentSelf), (status = 401, body = ErrorBody)))]
async fn agent_self(State(s): State<AppState>, Agent(a): Agent) -> ApiResult<AgentSelf> {
    Ok(Json(s.services.agent_self(&a).await?))
}

/// Sends an SMS. Every §6 limit is checked and reserved before anything reaches the carrier.
#[utoipa::path(post, path = "/v1/agent/sms/send", tag = "agent", security(("agentBearer" = [])),
    request_body = SendSms,
    responses((status = 201, body = SmsView, headers(("X-Ami-Budget-Remaining-Eur" = String), ("X-Ami-Sms-Remaining-Hour" = String))),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "kill_switch"),
              (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "destination_not_routable: no SMS route of this server covers the destination; over_max_price: the message would cost more than max_price_eur (nothing is reserved)"),
              (status = 429, body = ErrorBody, description = "a §6 limit, with reason and Retry-After")))]
async fn send_sms(
    State(s): State<AppState>,
    Agent(a): Agent,
    ApiJson(input): ApiJson<SendSms>,
) -> Result<(StatusCode, HeaderMap, Json<SmsView>), ApiError> {
    let sent = s.services.send_sms(&a, input).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&sent.remaining_budget_eur.to_string()) {
        headers.insert("x-ami-budget-remaining-eur", v);
    }
    headers.insert(
        "x-ami-sms-remaining-hour",
        HeaderValue::from(sent.remaining_sms_this_hour),
    );
    Ok((StatusCode::CREATED, headers, Json(sent.sms)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SmsQuery {
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

#[utoipa::path(get, path = "/v1/agent/sms", tag = "agent", security(("agentBearer" = [])), params(SmsQuery),
    responses((status = 200, body = SmsList), (status = 400, body = ErrorBody)))]
async fn list_sms(
    State(s): State<AppState>,
    Agent(a): Agent,
    ApiQuery(q): ApiQuery<SmsQuery>,
) -> ApiResult<SmsList> {
    let page = super::page(q.limit.as_deref(), q.cursor.as_deref(), 20, 200)?;
    Ok(Json(
        s.services
            .list_sms(&a, q.direction.as_deref(), &page)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/agent/sms/{id}", tag = "agent", security(("agentBearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = SmsView), (status = 404, body = ErrorBody)))]
async fn get_sms(
    State(s): State<AppState>,
    Agent(a): Agent,
    Path(id): Path<String>,
) -> ApiResult<SmsView> {
    Ok(Json(s.services.get_sms(&a, &id).await?))
}

#[utoipa::path(get, path = "/v1/agent/usage", tag = "agent", security(("agentBearer" = [])),
    responses((status = 200, body = UsageSnapshot), (status = 401, body = ErrorBody)))]
async fn agent_usage(State(s): State<AppState>, Agent(a): Agent) -> ApiResult<UsageSnapshot> {
    Ok(Json(s.services.agent_usage(&a).await?))
}

/// What a send or a call made now would get, without reserving or sending anything: `allow`
/// or the exact refusal the send would answer (status and body: the §6 reason and
/// `retry_after`, the kill-switch scope, `over_max_price`), the counters of the current
/// windows and the estimated cost. Input errors are the send's own. Audited
/// `policy_checked`.
#[utoipa::path(post, path = "/v1/agent/policy/check", tag = "agent", security(("agentBearer" = [])),
    request_body = PolicyCheck,
    responses((status = 200, body = PolicyVerdict), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "destination_not_routable")))]
async fn check_policy(
    State(s): State<AppState>,
    Agent(a): Agent,
    ApiJson(input): ApiJson<PolicyCheck>,
) -> ApiResult<PolicyVerdict> {
    Ok(Json(s.services.check_policy(&a, input).await?))
}

/// How a text would travel and what it would cost, from the send's own segmentation and
/// price: the encoding, the parts, the characters that force UCS-2 and the GSM-7 alternative
/// when one exists. Nothing is reserved, sent or written.
#[utoipa::path(post, path = "/v1/agent/sms/preview", tag = "agent", security(("agentBearer" = [])),
    request_body = PreviewSms,
    responses((status = 200, body = SmsPreview), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "destination_not_routable")))]
async fn preview_sms(
    State(s): State<AppState>,
    Agent(a): Agent,
    ApiJson(input): ApiJson<PreviewSms>,
) -> ApiResult<SmsPreview> {
    Ok(Json(s.services.preview_sms(&a, input)?))
}
