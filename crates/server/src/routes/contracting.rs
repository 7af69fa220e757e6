//! The contracting steps (PROTOCOL §3.3) and the demo flow (§5).

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::contracting::{
    ActivateInput, CancelInput, CustomerDataInput, NewContract, NewSimRequest,
};
use ami_services::views::{
    ActivatedMid, ContractView, CustomerDataSubmitted, CustomerView, OfferView, SimRequestCreated,
    SimRequestView,
};

use super::{ApiResult, Created, Empty, ErrorBody, created};
use crate::app::AppState;
use crate::http::auth::Customer;
use crate::http::json::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_sim_request))
        .routes(routes!(get_sim_request))
        .routes(routes!(cancel_sim_request))
        .routes(routes!(submit_customer_data))
        .routes(routes!(get_offer))
        .routes(routes!(accept_offer))
        .routes(routes!(create_customer_record))
        .routes(routes!(get_customer_record))
        .routes(routes!(create_contract))
        .routes(routes!(get_contract))
        .routes(routes!(mock_sign))
        .routes(routes!(activate))
}

#[utoipa::path(post, path = "/v1/sim-requests", tag = "contracting", security(("bearerAuth" = [])),
    request_body = NewSimRequest,
    responses((status = 201, body = SimRequestCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_sim_request(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiJson(input): ApiJson<NewSimRequest>,
) -> Created<SimRequestCreated> {
    Ok(created(s.services.create_sim_request(&c, input).await?))
}

#[utoipa::path(get, path = "/v1/sim-requests/{id}", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = SimRequestView), (status = 404, body = ErrorBody)))]
async fn get_sim_request(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<SimRequestView> {
    Ok(Json(s.services.get_sim_request(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/sim-requests/{id}/cancel", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = CancelInput,
    responses((status = 200, body = SimRequestView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_sim_request(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CancelInput>,
) -> ApiResult<SimRequestView> {
    Ok(Json(s.services.cancel_sim_request(&c, &id, input).await?))
}

#[utoipa::path(post, path = "/v1/sim-requests/{id}/customer-data", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = CustomerDataInput,
    responses((status = 201, body = CustomerDataSubmitted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn submit_customer_data(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CustomerDataInput>,
) -> Created<CustomerDataSubmitted> {
    Ok(created(
        s.services.submit_customer_data(&c, &id, input).await?,
    ))
}

#[utoipa::path(get, path = "/v1/offers/{id}", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = OfferView), (status = 404, body = ErrorBody)))]
async fn get_offer(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<OfferView> {
    Ok(Json(s.services.get_offer(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/offers/{id}/accept", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Empty,
    responses((status = 200, body = OfferView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_offer(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<OfferView> {
    Ok(Json(s.services.accept_offer(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/customers", tag = "contracting", security(("bearerAuth" = [])),
    request_body = CustomerDataInput,
    responses((status = 201, body = CustomerView), (status = 400, body = ErrorBody)))]
async fn create_customer_record(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiJson(input): ApiJson<CustomerDataInput>,
) -> Created<CustomerView> {
    Ok(created(s.services.create_customer_record(&c, input).await?))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)))]
async fn get_customer_record(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<CustomerView> {
    Ok(Json(s.services.get_customer_record(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/contracts", tag = "contracting", security(("bearerAuth" = [])),
    request_body = NewContract,
    responses((status = 201, body = ContractView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_contract(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiJson(input): ApiJson<NewContract>,
) -> Created<ContractView> {
    Ok(created(s.services.create_contract(&c, input).await?))
}

#[utoipa::path(get, path = "/v1/contracts/{id}", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ContractView), (status = 404, body = ErrorBody)))]
async fn get_contract(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
) -> ApiResult<ContractView> {
    Ok(Json(s.services.get_contract(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/contracts/{id}/mock-sign", tag = "contracting", security(("bearerAuth" = [])),
    params(("id" = String, Path)), request_body = Empty,
    responses((status = 200, body = ContractView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mock_sign(
    State(s): State<AppState>,
    Customer(c): Customer,
    Path(id): Path<String>,
    ApiJson(_empty): ApiJson<Empty>,
) -> ApiResult<ContractView> {
    Ok(Json(s.services.mock_sign(&c, &id).await?))
}

#[utoipa::path(post, path = "/v1/mobile-identities/activate", tag = "contracting", security(("bearerAuth" = [])),
    request_body = ActivateInput,
    responses((status = 201, body = ActivatedMid), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn activate(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiJson(input): ApiJson<ActivateInput>,
) -> Created<ActivatedMid> {
    Ok(created(s.services.activate(&c, input).await?))
}
