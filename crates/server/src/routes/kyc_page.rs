//! The representative's KYC page (`/kyc/{token}`) and its form (`/kyc/{token}/submit`). The
//! token in the path is the capability, stored only as its hash; any token that opens
//! nothing gets the same 404 page. The request log names the route template, never the
//! path, so the token stays out of the logs.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::Error;
use ami_services::kyc::{KycSubmission, Upload};

use super::sign::html;
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::multipart::{self, MultipartError};
use crate::pages::kyc as page;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(submit))
}

/// The form the page posts (`multipart/form-data`).
#[derive(utoipa::ToSchema)]
pub struct KycForm {
    /// As on the document.
    pub full_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// ISO 3166 two-letter code.
    pub nationality: String,
    /// `passport`, `id_card`, `residence_permit` or `driving_licence`.
    pub document_type: String,
    /// At most 40 letters, digits, spaces or hyphens.
    pub document_number: String,
    /// JPEG, PNG or PDF (judged by its first bytes), at most `kyc_max_document_bytes`.
    #[schema(value_type = String, format = Binary)]
    pub document_front: Vec<u8>,
    /// JPEG, PNG or PDF (judged by its first bytes), at most `kyc_max_document_bytes`.
    #[schema(value_type = String, format = Binary)]
    pub document_back: Vec<u8>,
}

/// Room for the form's text fields beside its two files.
const FORM_OVERHEAD: usize = 64 * 1024;

/// The representative's KYC page: who asks, and the identity form while the link is open.
#[utoipa::path(get, path = "/kyc/{token}", tag = "contracting",
    params(("token" = String, Path, description = "the token of `verification_url`")),
    responses((status = 200, description = "the verification page", content_type = "text/html"),
              (status = 404, description = "a token that opens nothing", content_type = "text/html")))]
async fn show(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match s.services.kyc_page(&token).await {
        Ok(Some(view)) => {
            let status = if view.expired {
                StatusCode::GONE
            } else {
                StatusCode::OK
            };
            html(status, page::render(&view, &token, None))
        }
        Ok(None) => html(StatusCode::NOT_FOUND, page::not_found()),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The KYC page's form: identity data and the ID document's front and back, accepted once.
#[utoipa::path(post, path = "/kyc/{token}/submit", tag = "contracting",
    params(("token" = String, Path, description = "the token of `verification_url`")),
    request_body(content = KycForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "the page again, submitted", content_type = "text/html"),
              (status = 400, description = "`missing_fields`, `invalid_<field>`, `unknown_field`, `invalid_form`", content_type = "text/html"),
              (status = 404, description = "a token that opens nothing", content_type = "text/html"),
              (status = 409, description = "`kyc_already_submitted`: one submission only", content_type = "text/html"),
              (status = 410, description = "`kyc_link_expired`", content_type = "text/html"),
              (status = 413, description = "`document_too_large`, `payload_too_large`", content_type = "text/html"),
              (status = 415, description = "`unsupported_document_type` (not JPEG, PNG or PDF), or not a multipart form", content_type = "text/html")))]
async fn submit(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let view = match s.services.kyc_page(&token).await {
        Ok(Some(view)) => view,
        Ok(None) => return html(StatusCode::NOT_FOUND, page::not_found()),
        Err(e) => return ApiError(e).into_response(),
    };
    let refuse = |e: Error| {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let text = match &e {
            Error::Refused { message, .. } => format!("{message} ({})", e.code()),
            Error::Internal(_) => "internal error".to_owned(),
        };
        html(status, page::render(&view, &token, Some(Err(&text))))
    };
    let form = match read_form(&headers, body, view.max_document_bytes).await {
        Ok(form) => form,
        Err(e) => return refuse(e),
    };
    match s.services.submit_kyc(&token, form).await {
        Ok(Some(_)) => match s.services.kyc_page(&token).await {
            Ok(Some(view)) => html(
                StatusCode::OK,
                page::render(
                    &view,
                    &token,
                    Some(Ok(
                        "Thank you: your details were received and will be reviewed.",
                    )),
                ),
            ),
            Ok(None) => html(StatusCode::NOT_FOUND, page::not_found()),
            Err(e) => ApiError(e).into_response(),
        },
        Ok(None) => html(StatusCode::NOT_FOUND, page::not_found()),
        Err(Error::Internal(e)) => ApiError(Error::Internal(e)).into_response(),
        Err(e) => match s.services.kyc_page(&token).await {
            Ok(Some(fresh)) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                let text = format!("{} ({})", refusal_text(&e), e.code());
                html(status, page::render(&fresh, &token, Some(Err(&text))))
            }
            _ => refuse(e),
        },
    }
}

fn refusal_text(e: &Error) -> String {
    match e {
        Error::Refused { message, .. } => message.clone(),
        Error::Internal(_) => "internal error".to_owned(),
    }
}

/// Reads the body within the form's limit and picks out the fields.
async fn read_form(
    headers: &HeaderMap,
    body: Body,
    max_document_bytes: usize,
) -> Result<KycSubmission, Error> {
    let limit = max_document_bytes * 2 + FORM_OVERHEAD;
    let too_large = || {
        Error::refused(
            413,
            "payload_too_large",
            format!("the form is larger than {limit} bytes"),
        )
        .with("max_bytes", limit)
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let not_multipart = || {
        Error::refused(
            415,
            "unsupported_media_type",
            "the form must be sent as multipart/form-data",
        )
    };
    multipart::boundary(content_type).map_err(|_| not_multipart())?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let parts = multipart::parse(content_type, &bytes).map_err(|e| match e {
        MultipartError::NotMultipart => not_multipart(),
        MultipartError::Malformed => {
            Error::bad_request("invalid_form", "the form could not be read")
        }
    })?;
    let mut form = KycSubmission::default();
    for part in parts {
        let text = |field: &str| -> Result<Option<String>, Error> {
            if part.data.len() > 1_000 {
                return Err(Error::invalid(field, format!("{field} is too long")));
            }
            String::from_utf8(part.data.to_vec())
                .map(Some)
                .map_err(|_| Error::invalid(field, format!("{field} is not UTF-8 text")))
        };
        let duplicate = |field: &str| {
            Error::bad_request("invalid_form", format!("{field} is sent more than once"))
                .with("field", field.to_owned())
        };
        macro_rules! once {
            ($slot:expr, $value:expr) => {{
                if $slot.is_some() {
                    return Err(duplicate(&part.name));
                }
                $slot = $value;
            }};
        }
        match part.name.as_str() {
            "full_name" => once!(form.full_name, text("full_name")?),
            "date_of_birth" => once!(form.date_of_birth, text("date_of_birth")?),
            "nationality" => once!(form.nationality, text("nationality")?),
            "document_type" => once!(form.document_type, text("document_type")?),
            "document_number" => once!(form.document_number, text("document_number")?),
            "document_front" => once!(
                form.document_front,
                Some(Upload {
                    content: part.data.to_vec()
                })
            ),
            "document_back" => once!(
                form.document_back,
                Some(Upload {
                    content: part.data.to_vec()
                })
            ),
            _ => {
                return Err(Error::bad_request(
                    "unknown_field",
                    "the form has a field this page does not ask for",
                ));
            }
        }
    }
    Ok(form)
}
