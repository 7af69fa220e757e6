//! Sandbox traffic injection (PROTOCOL §4): a customer makes the (fictional) network send
//! something to one of its own MIDs, through the same use case as the real network. On a
//! server that is not a sandbox these routes answer like routes that do not exist.

use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::inbound_calls::{InboundCallRoute, SandboxInboundCall};
use ami_services::sms::SmsView;
use ami_services::telco::SandboxInboundSms;

use super::{Created, ErrorBody, created};
use crate::app::AppState;
use crate::http::auth::{Customer, SandboxOnly};
use crate::http::json::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbound_sms))
        .routes(routes!(inbound_call))
}

/// An inbound SMS for one of the caller's MIDs, as if the network had delivered it: the
/// agent sees it in `GET /v1/agent/sms?direction=inbound`.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/sandbox/inbound-sms", tag = "sandbox",
    security(("bearerAuth" = [])), params(("id" = String, Path)), request_body = SandboxInboundSms,
    responses((status = 201, body = SmsView, description = "the inbound message, status `received`"),
              (status = 400, body = ErrorBody, description = "missing_fields, invalid_from, empty_body, body_too_long, invalid_body"),
              (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "kill_switch, with its scope"),
              (status = 404, body = ErrorBody, description = "mobile_identity_not_found; not_found on servers that are not a sandbox"),
              (status = 409, body = ErrorBody, description = "mobile_identity_not_active")))]
async fn inbound_sms(
    _sandbox: SandboxOnly,
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SandboxInboundSms>,
) -> Created<SmsView> {
    Ok(created(
        s.services.sandbox_inbound_sms(&c, &id, input).await?,
    ))
}

/// An inbound call to one of the caller's MIDs, as if the network had placed it: it is
/// forwarded to the MID's `inbound_sip_uri`, answered, and ended on the sandbox timings.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/sandbox/inbound-call", tag = "sandbox",
    security(("bearerAuth" = [])), params(("id" = String, Path)), request_body = SandboxInboundCall,
    responses((status = 201, body = InboundCallRoute, description = "the call, `ringing`, and where it is forwarded"),
              (status = 400, body = ErrorBody, description = "missing_fields, invalid_from"),
              (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody, description = "kill_switch with its scope, capability_not_contracted"),
              (status = 404, body = ErrorBody, description = "mobile_identity_not_found; not_found on servers that are not a sandbox"),
              (status = 409, body = ErrorBody, description = "mobile_identity_not_active, no_inbound_sip_uri")))]
async fn inbound_call(
    _sandbox: SandboxOnly,
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SandboxInboundCall>,
) -> Created<InboundCallRoute> {
    let route = s.services.sandbox_inbound_call(&c, &id, input).await?;
    s.sandbox.bridge_inbound_call(&route.call_id);
    Ok(created(route))
}
