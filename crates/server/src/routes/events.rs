//! The audit log (PROTOCOL §9): the tenant's own view and the operator's global one.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::views::EventList;
use ami_store::audit::Filter;
use ami_store::page::PageRequest;

use super::{ApiResult, ErrorBody};
use crate::app::AppState;
use crate::http::auth::{Admin, Customer};
use crate::http::error::ApiError;
use crate::http::query::ApiQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(list_all_events))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    #[param(pattern = "^[A-Za-z0-9_.]{0,100}$")]
    action: Option<String>,
    #[param(pattern = "^[A-Za-z0-9_.]{0,100}$")]
    entity_type: Option<String>,
    #[param(pattern = "^[A-Za-z0-9_.]{0,100}$")]
    entity_id: Option<String>,
    #[param(pattern = "^[A-Za-z0-9_.]{0,100}$")]
    mid: Option<String>,
    /// RFC 3339; events at or after.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339; events at or before.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Default 100; clamped to 1..1000.
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

impl EventsQuery {
    fn parse(self) -> Result<(Filter, PageRequest), ApiError> {
        let page = super::page(self.limit.as_deref(), self.cursor.as_deref(), 100, 1000)?;
        let time = |field: &str, v: Option<String>| -> Result<Option<i64>, ApiError> {
            v.map(|s| {
                ami_core::time::parse_rfc3339(&s).ok_or_else(|| {
                    ApiError::new(
                        400,
                        &format!("invalid_{field}"),
                        format!("{field} must be an RFC 3339 time"),
                    )
                })
            })
            .transpose()
        };
        let word = |field: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
            match v {
                Some(s)
                    if s.len() > 100
                        || s.bytes()
                            .any(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.')) =>
                {
                    Err(ApiError::new(
                        400,
                        &format!("invalid_{field}"),
                        format!("{field} is not a valid value"),
                    ))
                }
                other => Ok(other.filter(|s| !s.is_empty())),
            }
        };
        Ok((
            Filter {
                since: time("since", self.since)?,
                until: time("until", self.until)?,
                action: word("action", self.action)?,
                entity_type: word("entity_type", self.entity_type)?,
                entity_id: word("entity_id", self.entity_id)?,
                mid: word("mid", self.mid)?,
            },
            page,
        ))
    }
}

#[utoipa::path(get, path = "/v1/events", tag = "audit", security(("bearerAuth" = [])), params(EventsQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_events(
    State(s): State<AppState>,
    Customer(c): Customer,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<EventList> {
    let (filter, page) = q.parse()?;
    Ok(Json(s.services.list_events(&c, &filter, &page).await?))
}

#[utoipa::path(get, path = "/v1/admin/events", tag = "admin", security(("adminKey" = [])), params(EventsQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_all_events(
    State(s): State<AppState>,
    Admin(a): Admin,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<EventList> {
    let (filter, page) = q.parse()?;
    Ok(Json(s.services.list_all_events(&a, &filter, &page).await?))
}
