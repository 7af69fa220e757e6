//! `/v1/admin/*`: the operator's routes (PROTOCOL §3.2).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::admin::{LoadNumbers, ManualMid, NewCustomer, Reason};
use ami_services::views::{
    AccountList, AccountStatus, ActivatedMid, CreatedAccount, NumberList, NumberView,
    NumbersLoaded, RotatedKey,
};

use super::{ApiResult, Created, Empty, ErrorBody, ListQuery, created};
use crate::app::AppState;
use crate::http::auth::Admin;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(rotate_key))
        .routes(routes!(suspend))
        .routes(routes!(activate))
        .routes(routes!(load_numbers, list_numbers))
        .routes(routes!(disable_number))
        .routes(routes!(enable_number))
        .routes(routes!(manual_mid))
}

#[utoipa::path(post, path = "/v1/admin/customers", tag = "admin", security(("adminKey" = [])),
    request_body = NewCustomer,
    responses((status = 201, body = CreatedAccount), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_customer(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiJson(input): ApiJson<NewCustomer>,
) -> Created<CreatedAccount> {
    Ok(created(s.services.create_customer(&a, input).await?))
}

#[utoipa::path(get, path = "/v1/admin/customers", tag = "admin", security(("adminKey" = [])), params(ListQuery),
    responses((status = 200, body = AccountList), (status = 401, body = ErrorBody)))]
async fn list_customers(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<AccountList> {
    Ok(Json(s.services.list_customers(&a, &q.page()?).await?))
}

#[utoipa::path(post, path = "/v1/admin/customers/{id}/rotate-key", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "account id")), request_body = Empty,
    responses((status = 200, body = RotatedKey), (status = 404, body = ErrorBody)))]
async fn rotate_key(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<RotatedKey> {
    Ok(Json(s.services.rotate_customer_key(&a, &id).await?))
}

#[utoipa::path(post, path = "/v1/admin/customers/{id}/suspend", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "account id")), request_body = Reason,
    responses((status = 200, body = AccountStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn suspend(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Reason>,
) -> ApiResult<AccountStatus> {
    Ok(Json(s.services.suspend_customer(&a, &id, input).await?))
}

#[utoipa::path(post, path = "/v1/admin/customers/{id}/activate", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "account id")), request_body = Reason,
    responses((status = 200, body = AccountStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn activate(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Reason>,
) -> ApiResult<AccountStatus> {
    Ok(Json(s.services.activate_customer(&a, &id, input).await?))
}

/// Loads numbers into the operator's inventory: `number`, `numbers` or a `from`/`to` range,
/// with an optional `country` and `capabilities`. Never all-or-nothing: numbers already held
/// are skipped, entries that are not a valid number (of `country`, when given) of a catalogue
/// country are listed as `invalid`, the rest are added. Activation takes the operator's
/// numbers of a country first; the sandbox's fictional ones only serve a country without any.
#[utoipa::path(post, path = "/v1/admin/numbers", tag = "admin", security(("adminKey" = [])), request_body = LoadNumbers,
    responses((status = 201, body = NumbersLoaded),
              (status = 400, body = ErrorBody, description = "unsupported_country (with country and supported), invalid_numbers, invalid_range, invalid_capabilities")))]
async fn load_numbers(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiJson(input): ApiJson<LoadNumbers>,
) -> Created<NumbersLoaded> {
    Ok(created(s.services.load_numbers(&a, input).await?))
}

/// The states of an inventory number: the `status` filter of its list.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum NumberStatus {
    Available,
    Assigned,
    Quarantined,
    Disabled,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NumbersQuery {
    #[param(value_type = Option<NumberStatus>, inline)]
    status: Option<String>,
    country: Option<String>,
    /// Default 20; clamped to 1..200.
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

/// The inventory, newest first, filtered by `status` and `country`; `counts` gives the number
/// in each status for the `country` filter (whatever the `status` filter).
#[utoipa::path(get, path = "/v1/admin/numbers", tag = "admin", security(("adminKey" = [])), params(NumbersQuery),
    responses((status = 200, body = NumberList), (status = 400, body = ErrorBody)))]
async fn list_numbers(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiQuery(q): ApiQuery<NumbersQuery>,
) -> ApiResult<NumberList> {
    let page = super::page(q.limit.as_deref(), q.cursor.as_deref(), 20, 200)?;
    Ok(Json(
        s.services
            .list_numbers(&a, q.status.as_deref(), q.country.as_deref(), &page)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/admin/numbers/{id}/disable", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "the number's id, or the number in E.164 (`%2B34600000001`)")), request_body = Empty,
    responses((status = 200, body = NumberView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn disable_number(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<NumberView> {
    Ok(Json(s.services.disable_number(&a, &id).await?))
}

#[utoipa::path(post, path = "/v1/admin/numbers/{id}/enable", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "the number's id, or the number in E.164 (`%2B34600000001`)")), request_body = Empty,
    responses((status = 200, body = NumberView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn enable_number(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<NumberView> {
    Ok(Json(s.services.enable_number(&a, &id).await?))
}

#[utoipa::path(post, path = "/v1/admin/mobile-identities/manual", tag = "admin", security(("adminKey" = [])),
    request_body = ManualMid,
    responses((status = 201, body = ActivatedMid), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn manual_mid(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiJson(input): ApiJson<ManualMid>,
) -> Created<ActivatedMid> {
    Ok(created(s.services.create_manual_mid(&a, input).await?))
}
