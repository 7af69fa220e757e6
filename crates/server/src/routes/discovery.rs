//! Public discovery (PROTOCOL §3.1), the country catalogue and the sandbox demo (§5).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use ami_services::demo::DemoResult;

use super::{Empty, ErrorBody};
use crate::app::AppState;
use crate::http::auth::Customer;
use crate::http::json::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        .routes(routes!(llms_txt))
        .routes(routes!(docs))
        .routes(routes!(landing))
        .routes(routes!(landing_index))
        .routes(routes!(favicon))
        .routes(routes!(sim_options))
        .routes(routes!(demo_quick))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    ok: bool,
    service: &'static str,
    version: &'static str,
    time: String,
    /// `sqlite` or `postgres`, with `ok` or `down`.
    storage: Value,
    telco: Value,
}

#[utoipa::path(get, path = "/v1/health", tag = "discovery",
    description = "Public. `telco.adapter` names the carrier adapter of SMS (`sandbox` or `smpp`). With the operator key, `telco.binds` also lists each SMPP session: its connection, role, whether it is bound, its window use and its counters. With calls over SIP, `telco.calls` gives the call carrier, its live calls and, for the operator, each registering trunk and whether it is registered.",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(s): State<AppState>, headers: HeaderMap) -> (StatusCode, Json<Health>) {
    let storage_ok = s.services.store.ping().await;
    let operator = s
        .services
        .authenticate_admin(crate::http::auth::bearer_of(&headers))
        .is_ok();
    // `adapter` is the protocol's name for the carrier adapter; `carrier` the earlier one.
    let mut telco = serde_json::json!({"adapter": carrier_name(&s), "carrier": carrier_name(&s), "inbound_callbacks": s.telco_inbound_enabled});
    if let Some(smpp) = &s.smpp {
        let sessions = smpp.sessions();
        telco["binds_up"] = sessions.iter().filter(|b| b.is_up()).count().into();
        telco["binds"] = sessions.len().into();
        if operator {
            telco["sessions"] = sessions.iter().map(|b| bind_health(b)).collect();
        }
    }
    if let Some(sip) = &s.sip {
        let mut calls = serde_json::json!({"carrier": ami_carrier::Carrier::name(sip), "live": sip.live_calls()});
        if operator {
            calls["registrations"] = sip
                .registrations()
                .into_iter()
                .map(|(trunk, registered)| serde_json::json!({"trunk": trunk, "registered": registered}))
                .collect();
        }
        telco["calls"] = calls;
    }
    let body = Health {
        ok: storage_ok,
        service: "ami",
        version: env!("CARGO_PKG_VERSION"),
        time: ami_core::time::rfc3339(s.services.now()),
        storage: serde_json::json!({"engine": s.services.store.engine().name(), "ok": storage_ok}),
        telco,
    };
    let status = if storage_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

fn carrier_name(s: &AppState) -> &'static str {
    match &s.smpp {
        Some(smpp) => ami_carrier::Carrier::name(smpp),
        None => ami_carrier::Carrier::name(&s.sandbox),
    }
}

/// One SMPP session as the operator sees it.
fn bind_health(b: &ami_smpp::Session) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &b.counters;
    serde_json::json!({
        "connection": b.name(),
        "role": b.role.as_str(),
        "bound": b.is_up(),
        "window": {"in_use": b.in_flight(), "size": b.connection.window},
        "last_error": b.last_error(),
        "counts": {
            "binds": c.binds.load(Relaxed),
            "bind_failures": c.bind_failures.load(Relaxed),
            "disconnects": c.disconnects.load(Relaxed),
            "submitted": c.submitted.load(Relaxed),
            "throttled": c.throttled.load(Relaxed),
            "refused": c.refused.load(Relaxed),
            "unknown": c.unknown.load(Relaxed),
            "received": c.received.load(Relaxed),
        },
    })
}

#[utoipa::path(get, path = "/openapi.json", tag = "discovery",
    responses((status = 200, description = "the OpenAPI 3.1 document of this server", body = Object, content_type = "application/json")))]
async fn openapi_json(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.pages.openapi_json.clone(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/llms.txt", tag = "discovery",
    responses((status = 200, description = "llmstxt.org index for agents", content_type = "text/plain")))]
async fn llms_txt(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        s.pages.llms_txt.clone(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/docs", tag = "discovery",
    responses((status = 200, description = "documentation for people", content_type = "text/html")))]
async fn docs(State(s): State<AppState>) -> Html<String> {
    Html(s.pages.docs_html.to_string())
}

#[utoipa::path(get, path = "/", tag = "discovery",
    responses((status = 200, description = "a short landing page linking `/docs`, `/llms.txt` and `/openapi.json`", content_type = "text/html")))]
async fn landing() -> Html<String> {
    Html(crate::pages::landing::html())
}

#[utoipa::path(get, path = "/index.html", tag = "discovery",
    responses((status = 200, description = "the landing page, as at `/`", content_type = "text/html")))]
async fn landing_index() -> Html<String> {
    Html(crate::pages::landing::html())
}

#[utoipa::path(get, path = "/favicon.ico", tag = "discovery",
    responses((status = 200, description = "a small icon (SVG)", content_type = "image/svg+xml")))]
async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        crate::pages::landing::FAVICON_SVG,
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/sim-options", tag = "contracting", security(("bearerAuth" = [])),
    responses((status = 200, description = "`{countries: {\"ES\": {code, name, msisdn_prefix, sim_types, capabilities, price: {monthly, setup, currency}, usage_eur: {sms, call_per_min}}, ...}}`: the catalogue, keyed by country code", body = Object),
              (status = 401, body = ErrorBody)))]
async fn sim_options(State(s): State<AppState>, Customer(_caller): Customer) -> Json<Value> {
    Json(s.services.sim_options())
}

#[utoipa::path(post, path = "/v1/demo/quick", tag = "discovery", request_body = Empty,
    description = "The whole contracting flow for a demo account, on sandbox servers whose operator enabled it (`demo_enabled`). A few runs per client address an hour; the numbers come from the demo's own pool and are taken back after an hour.",
    responses((status = 201, body = DemoResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn demo_quick(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    ApiJson(_empty): ApiJson<Empty>,
) -> Result<(StatusCode, Json<DemoResult>), crate::http::error::ApiError> {
    let client = crate::http::client_addr::client_ip(peer.ip(), &headers, &s.trusted_proxies);
    Ok((
        StatusCode::CREATED,
        Json(s.services.demo_quick(client).await?),
    ))
}
