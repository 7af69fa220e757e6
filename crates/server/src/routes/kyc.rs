//! The representative's identity check (KYC): the customer's routes under the SIM request
//! and the operator's review queue.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::admin::Reason;
use ami_services::kyc::{AdminKycList, AdminKycView, KycInitiated, KycPurged, KycView};

use super::{ApiResult, Empty, ErrorBody};
use crate::app::AppState;
use crate::http::auth::{Admin, Customer};
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(initiate))
        .routes(routes!(get_kyc))
        .routes(routes!(list))
        .routes(routes!(verify))
        .routes(routes!(reject))
        .routes(routes!(purge))
}

/// Start the representative's identity check (KYC) of a SIM request, or get a fresh link for the pending one.
#[utoipa::path(post, path = "/v1/sim-requests/{id}/kyc/initiate", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "SIM request id")), request_body = Empty,
    responses((status = 201, body = KycInitiated, description = "a new check; `verification_url` goes to the representative"),
              (status = 200, body = KycInitiated, description = "the request already had a live check (`already_existed`)"),
              (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "`customer_data_missing`, or the request is closed (`invalid_state`)")))]
async fn initiate(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> Result<(StatusCode, Json<KycInitiated>), ApiError> {
    let (created, view) = s.services.initiate_kyc(&c, &id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The SIM request's newest KYC check and its state.
#[utoipa::path(get, path = "/v1/sim-requests/{id}/kyc", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "SIM request id")),
    responses((status = 200, body = KycView), (status = 404, body = ErrorBody, description = "`sim_request_not_found` or `kyc_not_found`")))]
async fn get_kyc(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<KycView> {
    Ok(Json(s.services.get_kyc(&c, &id).await?))
}

/// The states of a check: the `status` filter of the review queue.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum KycStatus {
    Pending,
    Submitted,
    Verified,
    Rejected,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct KycQuery {
    #[param(value_type = Option<KycStatus>, inline)]
    status: Option<String>,
    /// Default 20; clamped to 1..200.
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

/// The KYC review queue: every account's checks with the declared identity and documents.
#[utoipa::path(get, path = "/v1/admin/kyc", tag = "admin", security(("adminKey" = [])), params(KycQuery),
    responses((status = 200, body = AdminKycList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiQuery(q): ApiQuery<KycQuery>,
) -> ApiResult<AdminKycList> {
    let page = super::page(q.limit.as_deref(), q.cursor.as_deref(), 20, 200)?;
    Ok(Json(
        s.services
            .list_kyc(&a, q.status.as_deref().filter(|s| !s.is_empty()), &page)
            .await?,
    ))
}

/// Verify a submitted KYC check.
#[utoipa::path(post, path = "/v1/admin/kyc/{id}/verify", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "KYC id")), request_body = Empty,
    responses((status = 200, body = AdminKycView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "`kyc_not_submitted`")))]
async fn verify(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<AdminKycView> {
    Ok(Json(s.services.decide_kyc(&a, &id, true, None).await?))
}

/// Reject a submitted KYC check, with a reason.
#[utoipa::path(post, path = "/v1/admin/kyc/{id}/reject", tag = "admin", security(("adminKey" = [])),
    params(("id" = String, Path, description = "KYC id")), request_body = Reason,
    responses((status = 200, body = AdminKycView), (status = 400, body = ErrorBody, description = "`missing_reason`"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`kyc_not_submitted`")))]
async fn reject(
    State(s): State<AppState>,
    Admin(a): Admin,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Reason>,
) -> ApiResult<AdminKycView> {
    Ok(Json(
        s.services
            .decide_kyc(&a, &id, false, input.reason.as_deref())
            .await?,
    ))
}

/// Delete the documents of every KYC check decided longer ago than the retention.
#[utoipa::path(post, path = "/v1/admin/kyc/purge", tag = "admin", security(("adminKey" = [])), request_body = Empty,
    responses((status = 200, body = KycPurged), (status = 401, body = ErrorBody)))]
async fn purge(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<KycPurged> {
    Ok(Json(s.services.purge_kyc_documents(Some(&a)).await?))
}
