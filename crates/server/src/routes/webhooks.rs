//! Webhooks (PROTOCOL §8): the same operations for a MID's webhooks
//! (`/v1/mobile-identities/{id}/webhooks`) and for the account's own
//! (`/v1/account/webhooks`), which hear every MID of the account.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::webhooks::Scope;
use ami_services::webhooks::registration::RegisterWebhook;
use ami_services::webhooks::views::{
    CreatedWebhook, DeletedWebhook, DeliveryDetail, DeliveryList, DeliveryView, WebhookList,
    WebhookView,
};

use super::{ApiResult, Created, Empty, ErrorBody, ListQuery, created};
use crate::app::AppState;
use crate::http::auth::Customer;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mid_webhooks, register_mid_webhook))
        .routes(routes!(delete_mid_webhook))
        .routes(routes!(enable_mid_webhook))
        .routes(routes!(ping_mid_webhook))
        .routes(routes!(list_mid_deliveries))
        .routes(routes!(get_mid_delivery))
        .routes(routes!(redeliver_mid))
        .routes(routes!(list_account_webhooks, register_account_webhook))
        .routes(routes!(delete_account_webhook))
        .routes(routes!(enable_account_webhook))
        .routes(routes!(ping_account_webhook))
        .routes(routes!(list_account_deliveries))
        .routes(routes!(get_account_delivery))
        .routes(routes!(redeliver_account))
}

type Accepted<T> = Result<(StatusCode, Json<T>), ApiError>;

fn accepted<T>(value: T) -> (StatusCode, Json<T>) {
    (StatusCode::ACCEPTED, Json(value))
}

/// The states of a webhook delivery: the `status` filter of their list.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    #[param(value_type = Option<DeliveryStatus>, inline)]
    status: Option<String>,
    /// Default 20; clamped to 1..200.
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

// ---- A MID's webhooks -------------------------------------------------------------------

/// Registers a webhook for one MID. The secret is in this answer only.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/webhooks", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id")), request_body = RegisterWebhook,
    responses((status = 201, body = CreatedWebhook),
              (status = 400, body = ErrorBody, description = "invalid_url {detail}, invalid_events, unsupported_event {event, supported}, missing_fields"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "webhook_limit_reached")))]
async fn register_mid_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RegisterWebhook>,
) -> Created<CreatedWebhook> {
    Ok(created(
        s.services
            .register_webhook(&c, Scope::Mid(&id), input)
            .await?,
    ))
}

/// A MID's webhooks, newest first; secrets show as their prefix.
#[utoipa::path(get, path = "/v1/mobile-identities/{id}/webhooks", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ListQuery),
    responses((status = 200, body = WebhookList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_mid_webhooks(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<WebhookList> {
    Ok(Json(
        s.services
            .list_webhooks(&c, Scope::Mid(&id), &q.page()?)
            .await?,
    ))
}

/// Deletes a webhook with its secret and its deliveries.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/webhooks/{wh}/delete", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ("wh" = String, Path, description = "webhook id")),
    request_body = Empty, responses((status = 200, body = DeletedWebhook), (status = 404, body = ErrorBody)))]
async fn delete_mid_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((id, wh)): Path<(String, String)>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<DeletedWebhook> {
    Ok(Json(
        s.services.delete_webhook(&c, Scope::Mid(&id), &wh).await?,
    ))
}

/// Turns a disabled webhook back on; the deliveries that waited are sent.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/webhooks/{wh}/enable", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ("wh" = String, Path, description = "webhook id")),
    request_body = Empty, responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
async fn enable_mid_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((id, wh)): Path<(String, String)>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<WebhookView> {
    Ok(Json(
        s.services.enable_webhook(&c, Scope::Mid(&id), &wh).await?,
    ))
}

/// Sends a signed `webhook.test` delivery.
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/webhooks/{wh}/test", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ("wh" = String, Path, description = "webhook id")),
    request_body = Empty, responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody),
                                    (status = 409, body = ErrorBody, description = "webhook_not_active")))]
async fn ping_mid_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((id, wh)): Path<(String, String)>,
    ApiJson(_empty): ApiJson<Empty>,
) -> Accepted<DeliveryView> {
    Ok(accepted(
        s.services.ping_webhook(&c, Scope::Mid(&id), &wh).await?,
    ))
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/v1/mobile-identities/{id}/webhooks/{wh}/deliveries", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ("wh" = String, Path, description = "webhook id"), DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_mid_deliveries(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((id, wh)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<DeliveryList> {
    list_deliveries(&s, &c, Scope::Mid(&id), &wh, q).await
}

/// One delivery, with its payload and its attempts.
#[utoipa::path(get, path = "/v1/mobile-identities/{id}/webhooks/{wh}/deliveries/{dlv}", tag = "webhooks", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ("wh" = String, Path, description = "webhook id"),
           ("dlv" = String, Path, description = "delivery id")),
    responses((status = 200, body = DeliveryDetail), (status = 404, body = ErrorBody)))]
async fn get_mid_delivery(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((id, wh, dlv)): Path<(String, String, String)>,
) -> ApiResult<DeliveryDetail> {
    Ok(Json(
        s.services
            .get_delivery(&c, Scope::Mid(&id), &wh, &dlv)
            .await?,
    ))
}

/// Sends a delivered or failed delivery again (same event id, same bytes).
#[utoipa::path(post, path = "/v1/mobile-identities/{id}/webhooks/{wh}/deliveries/{dlv}/redeliver", tag = "webhooks",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "MID id"), ("wh" = String, Path, description = "webhook id"),
           ("dlv" = String, Path, description = "delivery id")),
    request_body = Empty, responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody),
                                    (status = 409, body = ErrorBody, description = "delivery_not_finished, webhook_not_active")))]
async fn redeliver_mid(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((id, wh, dlv)): Path<(String, String, String)>,
    ApiJson(_empty): ApiJson<Empty>,
) -> Accepted<DeliveryView> {
    Ok(accepted(
        s.services.redeliver(&c, Scope::Mid(&id), &wh, &dlv).await?,
    ))
}

// ---- The account's webhooks -------------------------------------------------------------

/// Registers a webhook that hears every MID of the account. The secret is in this answer
/// only.
#[utoipa::path(post, path = "/v1/account/webhooks", tag = "webhooks", security(("bearerAuth" = [])),
    request_body = RegisterWebhook,
    responses((status = 201, body = CreatedWebhook),
              (status = 400, body = ErrorBody, description = "invalid_url {detail}, invalid_events, unsupported_event {event, supported}, missing_fields"),
              (status = 409, body = ErrorBody, description = "webhook_limit_reached")))]
async fn register_account_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiJson(input): ApiJson<RegisterWebhook>,
) -> Created<CreatedWebhook> {
    Ok(created(
        s.services
            .register_webhook(&c, Scope::Account, input)
            .await?,
    ))
}

/// The account's own webhooks, newest first; secrets show as their prefix.
#[utoipa::path(get, path = "/v1/account/webhooks", tag = "webhooks", security(("bearerAuth" = [])), params(ListQuery),
    responses((status = 200, body = WebhookList), (status = 400, body = ErrorBody)))]
async fn list_account_webhooks(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<WebhookList> {
    Ok(Json(
        s.services
            .list_webhooks(&c, Scope::Account, &q.page()?)
            .await?,
    ))
}

/// Deletes a webhook with its secret and its deliveries.
#[utoipa::path(post, path = "/v1/account/webhooks/{wh}/delete", tag = "webhooks", security(("bearerAuth" = [])),
    params(("wh" = String, Path, description = "webhook id")),
    request_body = Empty, responses((status = 200, body = DeletedWebhook), (status = 404, body = ErrorBody)))]
async fn delete_account_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(wh): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<DeletedWebhook> {
    Ok(Json(
        s.services.delete_webhook(&c, Scope::Account, &wh).await?,
    ))
}

/// Turns a disabled webhook back on; the deliveries that waited are sent.
#[utoipa::path(post, path = "/v1/account/webhooks/{wh}/enable", tag = "webhooks", security(("bearerAuth" = [])),
    params(("wh" = String, Path, description = "webhook id")),
    request_body = Empty, responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
async fn enable_account_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(wh): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<WebhookView> {
    Ok(Json(
        s.services.enable_webhook(&c, Scope::Account, &wh).await?,
    ))
}

/// Sends a signed `webhook.test` delivery.
#[utoipa::path(post, path = "/v1/account/webhooks/{wh}/test", tag = "webhooks", security(("bearerAuth" = [])),
    params(("wh" = String, Path, description = "webhook id")),
    request_body = Empty, responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody),
                                    (status = 409, body = ErrorBody, description = "webhook_not_active")))]
async fn ping_account_webhook(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(wh): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> Accepted<DeliveryView> {
    Ok(accepted(
        s.services.ping_webhook(&c, Scope::Account, &wh).await?,
    ))
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/v1/account/webhooks/{wh}/deliveries", tag = "webhooks", security(("bearerAuth" = [])),
    params(("wh" = String, Path, description = "webhook id"), DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_account_deliveries(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(wh): Path<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<DeliveryList> {
    list_deliveries(&s, &c, Scope::Account, &wh, q).await
}

/// One delivery, with its payload and its attempts.
#[utoipa::path(get, path = "/v1/account/webhooks/{wh}/deliveries/{dlv}", tag = "webhooks", security(("bearerAuth" = [])),
    params(("wh" = String, Path, description = "webhook id"), ("dlv" = String, Path, description = "delivery id")),
    responses((status = 200, body = DeliveryDetail), (status = 404, body = ErrorBody)))]
async fn get_account_delivery(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((wh, dlv)): Path<(String, String)>,
) -> ApiResult<DeliveryDetail> {
    Ok(Json(
        s.services
            .get_delivery(&c, Scope::Account, &wh, &dlv)
            .await?,
    ))
}

/// Sends a delivered or failed delivery again (same event id, same bytes).
#[utoipa::path(post, path = "/v1/account/webhooks/{wh}/deliveries/{dlv}/redeliver", tag = "webhooks", security(("bearerAuth" = [])),
    params(("wh" = String, Path, description = "webhook id"), ("dlv" = String, Path, description = "delivery id")),
    request_body = Empty, responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody),
                                    (status = 409, body = ErrorBody, description = "delivery_not_finished, webhook_not_active")))]
async fn redeliver_account(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path((wh, dlv)): Path<(String, String)>,
    ApiJson(_empty): ApiJson<Empty>,
) -> Accepted<DeliveryView> {
    Ok(accepted(
        s.services.redeliver(&c, Scope::Account, &wh, &dlv).await?,
    ))
}

async fn list_deliveries(
    s: &AppState,
    c: &ami_services::auth::CustomerCaller,
    scope: Scope<'_>,
    wh: &str,
    q: DeliveryQuery,
) -> ApiResult<DeliveryList> {
    let page = super::page(q.limit.as_deref(), q.cursor.as_deref(), 20, 200)?;
    let status = q.status.as_deref();
    Ok(Json(
        s.services
            .list_deliveries(c, scope, wh, status, &page)
            .await?,
    ))
}
