//! `/v1/admin/carrier-events`: what the network reported that could not be applied, parked
//! for the operator (extension).

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::carrier_events::{ParkedEventList, ParkedEventView};

use super::{ApiResult, Empty, ErrorBody, ListQuery};
use crate::app::AppState;
use crate::http::auth::Admin;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_parked))
        .routes(routes!(retry_parked))
}

#[utoipa::path(get, path = "/v1/admin/carrier-events/parked", tag = "admin", security(("adminKey" = [])), params(ListQuery),
    description = "Carrier events (delivery reports, inbound SMS, call states) that could not be applied even alone, oldest first. The network was told they arrived, so they are kept here with their error instead of being dropped.",
    responses((status = 200, body = ParkedEventList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_parked(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ParkedEventList> {
    let page = q.page()?;
    Ok(Json(
        s.services
            .list_parked_carrier_events(&a, page.cursor.as_deref(), page.limit)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/admin/carrier-events/parked/{id}/retry", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "parked event id")), request_body = Empty,
    description = "Applies a parked event again once its cause is mended: applied, it leaves the list; refused again, it stays with the new error.",
    responses((status = 200, body = ParkedEventView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn retry_parked(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<ParkedEventView> {
    Ok(Json(s.services.retry_parked_carrier_event(&a, &id).await?))
}
