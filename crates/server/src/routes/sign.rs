//! The public signing page for the customer's representative (PROTOCOL §3.3). The contract id
//! and the signing token together are the capability; anything else is a 404 page.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::Error;

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::pages::sign as page;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(confirm))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// The signing token from `signature_url`.
    t: Option<String>,
}

#[utoipa::path(get, path = "/v1/sign/{id}", tag = "contracting",
    params(("id" = String, Path, description = "contract id"), TokenQuery),
    responses((status = 200, description = "the signing page", content_type = "text/html"),
              (status = 404, description = "unknown contract or wrong token", content_type = "text/html")))]
async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let token = q.t.unwrap_or_default();
    match s.services.contract_for_signing(&id, &token).await {
        Ok(Some(view)) => html(StatusCode::OK, page::render(&view, &id, &token, None)),
        Ok(None) => html(StatusCode::NOT_FOUND, page::not_found()),
        Err(e) => ApiError(e).into_response(),
    }
}

#[utoipa::path(post, path = "/v1/sign/{id}/confirm", tag = "contracting",
    params(("id" = String, Path, description = "contract id"), TokenQuery),
    responses((status = 200, description = "the page again, signed", content_type = "text/html"),
              (status = 404, description = "unknown contract or wrong token", content_type = "text/html"),
              (status = 409, description = "already signed or expired", content_type = "text/html")))]
async fn confirm(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let token = q.t.unwrap_or_default();
    let outcome = s.services.sign_with_token(&id, &token).await;
    let (status, notice) = match outcome {
        Ok(None) => return html(StatusCode::NOT_FOUND, page::not_found()),
        Ok(Some(_)) => (
            StatusCode::OK,
            "The contract is signed. You can close this page.",
        ),
        Err(Error::Refused {
            status: 409,
            message,
            ..
        }) => {
            return match s.services.contract_for_signing(&id, &token).await {
                Ok(Some(view)) => html(
                    StatusCode::CONFLICT,
                    page::render(&view, &id, &token, Some(&message)),
                ),
                _ => html(StatusCode::NOT_FOUND, page::not_found()),
            };
        }
        Err(e) => return ApiError(e).into_response(),
    };
    match s.services.contract_for_signing(&id, &token).await {
        Ok(Some(view)) => html(status, page::render(&view, &id, &token, Some(notice))),
        Ok(None) => html(StatusCode::NOT_FOUND, page::not_found()),
        Err(e) => ApiError(e).into_response(),
    }
}

/// Pages that carry a capability in their URL: no caching, no referrer, no framing, no script.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, Html(body)).into_response();
    let h = res.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    res
}
