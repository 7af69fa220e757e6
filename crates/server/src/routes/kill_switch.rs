//! Kill-switches (PROTOCOL §7): the operator's, and the customer's own for one MID.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::admin::Reason;
use ami_services::kill_switch::{
    EngageKillSwitch, KillSwitchList, KillSwitchView, ReleaseKillSwitch,
};

use super::{ApiResult, Created, ErrorBody, created};
use crate::app::AppState;
use crate::http::auth::{Admin, Customer};
use crate::http::json::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(engage, list))
        .routes(routes!(release))
        .routes(routes!(suspend_mid))
        .routes(routes!(resume_mid))
}

#[utoipa::path(post, path = "/v1/admin/kill-switch", tag = "admin", security(("adminKey" = [])),
    request_body = EngageKillSwitch,
    responses((status = 201, body = KillSwitchView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn engage(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiJson(input): ApiJson<EngageKillSwitch>,
) -> Created<KillSwitchView> {
    Ok(created(s.services.engage_kill_switch(&a, input).await?))
}

#[utoipa::path(get, path = "/v1/admin/kill-switch", tag = "admin", security(("adminKey" = [])),
    responses((status = 200, body = KillSwitchList), (status = 401, body = ErrorBody)))]
async fn list(State(s): State<AppState>, Admin(a): Admin) -> ApiResult<KillSwitchList> {
    Ok(Json(s.services.list_kill_switches(&a).await?))
}

#[utoipa::path(post, path = "/v1/admin/kill-switch/{id}/release", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path)), request_body = ReleaseKillSwitch,
    responses((status = 200, body = KillSwitchView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn release(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ReleaseKillSwitch>,
) -> ApiResult<KillSwitchView> {
    Ok(Json(s.services.release_kill_switch(&a, &id, input).await?))
}

#[utoipa::path(post, path = "/v1/mobile-identities/{id}/suspend", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Reason,
    responses((status = 201, body = KillSwitchView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn suspend_mid(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Reason>,
) -> Created<KillSwitchView> {
    Ok(created(s.services.suspend_mid(&c, &id, input).await?))
}

#[utoipa::path(post, path = "/v1/mobile-identities/{id}/resume", tag = "mobile-identities", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = KillSwitchView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn resume_mid(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Reason>,
) -> ApiResult<KillSwitchView> {
    Ok(Json(s.services.resume_mid(&c, &id, input).await?))
}
