//! `/v1/_telco/*`: the carrier partner's callbacks (PROTOCOL §3.6), authenticated by the
//! `X-Telco-Key` header. They enter the same use cases as the carrier's own event stream.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::auth::Actor;
use ami_services::calls::CallView;
use ami_services::inbound_calls::{CallStatusReport, InboundCall, InboundCallRoute};
use ami_services::sms::SmsView;
use ami_services::telco::{DeliveryReport, InboundSms};

use super::{ApiResult, Created, ErrorBody, created};
use crate::app::AppState;
use crate::http::auth::Telco;
use crate::http::json::ApiJson;
use crate::http::query::parse_query;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbound_sms))
        .routes(routes!(sms_dlr))
        .routes(routes!(inbound_call))
        .routes(routes!(call_status))
}

/// An SMS from the network to the phone number of a mobile identity. Refused when the MID is
/// not active or a kill-switch covers it; the body is kept for the agent, never audited.
#[utoipa::path(post, path = "/v1/_telco/sms/inbound", tag = "telco", security(("telcoKey" = [])),
    request_body = InboundSms,
    responses((status = 201, body = SmsView, description = "the inbound message, status `received`"),
              (status = 400, body = ErrorBody, description = "missing_fields, invalid_from, invalid_to, empty_body, body_too_long, invalid_body, invalid_telco_ref"),
              (status = 401, body = ErrorBody, description = "invalid_telco_key"),
              (status = 403, body = ErrorBody, description = "kill_switch, with its scope"),
              (status = 404, body = ErrorBody, description = "destination_not_found"),
              (status = 409, body = ErrorBody, description = "mobile_identity_not_active"),
              (status = 503, body = ErrorBody, description = "telco_inbound_disabled")))]
async fn inbound_sms(
    State(s): State<AppState>,
    _telco: Telco,
    ApiJson(input): ApiJson<InboundSms>,
) -> Created<SmsView> {
    Ok(created(s.services.receive_sms(&Actor::Telco, input).await?))
}

/// A delivery report, as a JSON body or as query parameters (a body field wins over the same
/// query parameter). Statuses never move backwards: a late report answers 200 with the
/// unchanged record and is audited as `sms_status_ignored`.
#[utoipa::path(post, path = "/v1/_telco/sms/dlr", tag = "telco", security(("telcoKey" = [])),
    params(DeliveryReport), request_body = DeliveryReport,
    responses((status = 200, body = SmsView, description = "the message after the report"),
              (status = 400, body = ErrorBody, description = "missing_msg_id, unknown_status, invalid_telco_ref"),
              (status = 401, body = ErrorBody, description = "invalid_telco_key"),
              (status = 404, body = ErrorBody, description = "sms_not_found"),
              (status = 503, body = ErrorBody, description = "telco_inbound_disabled")))]
async fn sms_dlr(
    State(s): State<AppState>,
    _telco: Telco,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<DeliveryReport>,
) -> ApiResult<SmsView> {
    let from_query: DeliveryReport = parse_query(query.as_deref().unwrap_or_default())?;
    Ok(Json(s.services.delivery_report(body.or(from_query)).await?))
}

/// A call from the network to the number of a mobile identity: the carrier bridges it to
/// the returned `forward_sip_uri`. Refused when the MID has no `inbound_sip_uri`, is not
/// active, has no voice, or a kill-switch covers it.
#[utoipa::path(post, path = "/v1/_telco/calls/inbound", tag = "telco", security(("telcoKey" = [])),
    request_body = InboundCall,
    responses((status = 201, body = InboundCallRoute, description = "the call, `ringing`, and where to bridge it"),
              (status = 400, body = ErrorBody, description = "missing_fields, invalid_from, invalid_to, invalid_telco_ref"),
              (status = 401, body = ErrorBody, description = "invalid_telco_key"),
              (status = 403, body = ErrorBody, description = "kill_switch with its scope, capability_not_contracted"),
              (status = 404, body = ErrorBody, description = "destination_not_found"),
              (status = 409, body = ErrorBody, description = "no_inbound_sip_uri, mobile_identity_not_active"),
              (status = 503, body = ErrorBody, description = "telco_inbound_disabled")))]
async fn inbound_call(
    State(s): State<AppState>,
    _telco: Telco,
    ApiJson(input): ApiJson<InboundCall>,
) -> Created<InboundCallRoute> {
    Ok(created(
        s.services.receive_call(&Actor::Telco, input).await?,
    ))
}

/// A status of a call, inbound or outbound. Statuses only move forward (§3.5); a report
/// that would move the call backwards, or names another attempt's reference, is audited,
/// changes nothing and answers 409. A report repeating the current status (carriers resend)
/// answers 200 with the unchanged call.
#[utoipa::path(post, path = "/v1/_telco/calls/{id}/status", tag = "telco", security(("telcoKey" = [])),
    params(("id" = String, Path)), request_body = CallStatusReport,
    responses((status = 200, body = CallView, description = "the call after the report; a repeat of its current status changes nothing"),
              (status = 400, body = ErrorBody, description = "unknown_status, invalid_telco_ref, invalid_hangup_cause"),
              (status = 401, body = ErrorBody, description = "invalid_telco_key"),
              (status = 404, body = ErrorBody, description = "call_not_found"),
              (status = 409, body = ErrorBody, description = "invalid_call_transition, with from and to"),
              (status = 503, body = ErrorBody, description = "telco_inbound_disabled")))]
async fn call_status(
    State(s): State<AppState>,
    _telco: Telco,
    Path(id): Path<String>,
    ApiJson(report): ApiJson<CallStatusReport>,
) -> ApiResult<CallView> {
    Ok(Json(s.services.call_status_report(&id, report).await?))
}
