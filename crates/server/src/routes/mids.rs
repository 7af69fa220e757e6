//! MID administration by its customer (PROTOCOL §3.4).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::mids::InboundConfigInput;
use ami_services::usage::UsageSnapshot;
use ami_services::views::{InboundConfig, LimitsView, MidList, MidView, RotatedToken};
use ami_services::voice_config::{VoiceConfigInput, VoiceConfigView};

use super::{ApiResult, Empty, ErrorBody, ListQuery};
use crate::app::AppState;
use crate::http::auth::Customer;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mids))
        .routes(routes!(get_mid))
        .routes(routes!(rotate_token))
        .routes(routes!(inbound_config))
        .routes(routes!(get_voice_config, set_voice_config))
        .routes(routes!(rotate_signing_secret))
        .routes(routes!(get_limits, update_limits))
        .routes(routes!(release))
        .routes(routes!(mid_usage))
}

#[utoipa::path(get, path = "/v1/mobile-identities", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(ListQuery), responses((status = 200, body = MidList), (status = 400, body = ErrorBody)))]
async fn list_mids(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<MidList> {
    Ok(Json(s.services.list_mids(&c, &q.page()?).await?))
}

#[utoipa::path(get, path = "/v1/mobile-identities/{id}", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = MidView), (status = 404, body = ErrorBody)))]
async fn get_mid(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<MidView> {
    Ok(Json(s.services.get_mid(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/mobile-identities/{id}/rotate-token", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Empty,
    responses((status = 200, body = RotatedToken), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rotate_token(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<RotatedToken> {
    Ok(Json(s.services.rotate_agent_token(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/mobile-identities/{id}/inbound-config", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = InboundConfigInput,
    responses((status = 200, body = InboundConfig), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn inbound_config(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<InboundConfigInput>,
) -> ApiResult<InboundConfig> {
    Ok(Json(s.services.set_inbound_config(&c, &id, input).await?))
}

#[utoipa::path(get, path = "/v1/mobile-identities/{id}/voice-config", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = VoiceConfigView, description = "the voice URL and the signing secret's hint, never the secret"),
              (status = 404, body = ErrorBody)))]
async fn get_voice_config(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<VoiceConfigView> {
    Ok(Json(s.services.get_voice_config(&c, &id).await?))
}

/// Sets (or, with null or "", clears) the URL where the agent takes the MID's inbound calls.
/// When the MID has no signing secret yet, one is made and returned in this response only as
/// `signing_secret`; later reads show `signing_secret_hint`. When both a voice URL and an
/// `inbound_sip_uri` are set, inbound calls go to the voice URL.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/voice-config", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = VoiceConfigInput,
    responses((status = 200, body = VoiceConfigView),
              (status = 400, body = ErrorBody, description = "invalid_voice_url {detail}: the SSRF guard's or the scheme rule's reason"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "mobile_identity_not_active (released)")))]
async fn set_voice_config(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<VoiceConfigInput>,
) -> ApiResult<VoiceConfigView> {
    Ok(Json(s.services.set_voice_config(&c, &id, input).await?))
}

/// Replaces the MID's voice signing secret and returns the new one once. The previous secret
/// stops being valid at once: every call set-up from now on is signed with the new one.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/rotate-signing-secret", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Empty,
    responses((status = 200, body = VoiceConfigView, description = "with the new `signing_secret`, shown once"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "mobile_identity_not_active (released)")))]
async fn rotate_signing_secret(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<VoiceConfigView> {
    Ok(Json(s.services.rotate_voice_signing_secret(&c, &id).await?))
}

#[utoipa::path(get, path = "/v1/mobile-identities/{id}/limits", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = LimitsView), (status = 404, body = ErrorBody)))]
async fn get_limits(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<LimitsView> {
    Ok(Json(s.services.get_limits(&c, &id).await?))
}

/// A partial patch of the §6 fields; every field is validated before anything changes.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/limits", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body(content = Object, description = "any subset of the limit fields"),
    responses((status = 200, body = LimitsView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_limits(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<LimitsView> {
    Ok(Json(s.services.update_limits(&c, &id, &patch).await?))
}

#[utoipa::path(post, path = "/v1/mobile-identities/{id}/release", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Empty,
    responses((status = 200, body = MidView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn release(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<MidView> {
    Ok(Json(s.services.release_mid(&c, &id).await?))
}

#[utoipa::path(get, path = "/v1/mobile-identities/{id}/usage", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = UsageSnapshot), (status = 404, body = ErrorBody)))]
async fn mid_usage(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<UsageSnapshot> {
    Ok(Json(s.services.mid_usage(&c, &id).await?))
}
