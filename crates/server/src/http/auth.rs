//! Authentication, before anything else. A layer on every route (`authenticate`) checks the
//! credential of the route's level (PROTOCOL §1) from the headers alone: a request whose
//! credential fails is answered its 401 (or 503 `telco_inbound_disabled`) before any body is
//! read or anything is written. The level comes from the route's path template, the way
//! the protocol lays routes out (`/v1/admin/*`, `/v1/agent/*`, `/v1/_telco/*`, every other
//! route the customer's), with an explicit list of public routes: a new route needs a
//! credential unless it is added to that list. `GET /metrics` is the one route whose level
//! is configured: public, or the operator's with `metrics_public = false`.
//!
//! A method a documented route does not serve is answered 405 by the layer itself, before any
//! credential check (as a router answers it), and never reaches a handler: a handler added
//! beside the documented ones is unreachable rather than unauthenticated.
//!
//! The caller the layer authenticated travels in the request's extensions. The extractors
//! a handler takes (`Customer`, `Agent`, `Admin`, `Telco`) only read it back, so nothing is
//! looked up twice, and a handler whose extractor names another level than its route
//! answers 500 rather than serving anyone.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{ALLOW, AUTHORIZATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use ami_core::secret;
use ami_services::auth::{AdminCaller, AgentCaller, CustomerCaller};

use crate::app::AppState;
use crate::http::error::ApiError;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who may call a route (PROTOCOL §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Public,
    Customer,
    Agent,
    Admin,
    Telco,
}

impl Level {
    /// A stable name: idempotency keys are scoped by it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Public => "public",
            Level::Customer => "customer",
            Level::Agent => "agent",
            Level::Admin => "admin",
            Level::Telco => "telco",
        }
    }
}

/// The routes that answer without a credential, by path template. `/mcp` authenticates
/// each tool call itself, with the same credentials.
pub const PUBLIC_ROUTES: &[&str] = &[
    "/",
    "/index.html",
    "/favicon.ico",
    "/v1/health",
    "/openapi.json",
    "/llms.txt",
    "/docs",
    "/v1/demo/quick",
    "/v1/sign/{id}",
    "/v1/sign/{id}/confirm",
    "/kyc/{token}",
    "/kyc/{token}/submit",
    ami_mcp::MCP_PATH,
];

/// The route that is public or the operator's, as `metrics_public` says.
pub const METRICS_ROUTE: &str = "/metrics";

/// The sandbox injection routes: on a server that is not a sandbox they answer like a route
/// that does not exist, whoever asks.
const SANDBOX_ROUTES: &str = "/v1/mobile-identities/{id}/sandbox/";

/// The level of a route, from its path template and, for [`METRICS_ROUTE`], the
/// `metrics_public` setting.
pub fn route_level(template: &str, metrics_public: bool) -> Level {
    if PUBLIC_ROUTES.contains(&template) || (metrics_public && template == METRICS_ROUTE) {
        Level::Public
    } else if template.starts_with("/v1/admin/") || template == METRICS_ROUTE {
        Level::Admin
    } else if template.starts_with("/v1/agent/") {
        Level::Agent
    } else if template.starts_with("/v1/_telco/") {
        Level::Telco
    } else {
        Level::Customer
    }
}

/// The authenticated caller of a request, put in its extensions by `authenticate`.
#[derive(Debug, Clone)]
pub enum Caller {
    Customer(CustomerCaller),
    Agent(AgentCaller),
    Admin(AdminCaller),
    Telco,
}

/// The credential that authenticated a request, with its level: what idempotency keys and
/// seals stored responses by. Never printed.
#[derive(Clone)]
pub struct Credential {
    pub level: Level,
    secret: String,
}

impl Credential {
    pub(crate) fn new(level: Level, secret: impl Into<String>) -> Self {
        Credential {
            level,
            secret: secret.into(),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({:?}, <redacted>)", self.level)
    }
}

/// The state of [`authenticate`]: the application, the methods of every documented route
/// (path template → its `Allow` value), and whether `/metrics` is public.
#[derive(Clone)]
pub struct Gate {
    state: AppState,
    methods: Arc<HashMap<String, Vec<Method>>>,
    metrics_public: bool,
}

impl Gate {
    /// The gate of the routes `api` documents (the OpenAPI document of the same router).
    pub fn new(state: AppState, api: &utoipa::openapi::OpenApi, metrics_public: bool) -> Gate {
        let mut methods: HashMap<String, Vec<Method>> = HashMap::new();
        for (path, item) in &api.paths.paths {
            let served = methods.entry(path.clone()).or_default();
            let operations = [
                (Method::GET, item.get.is_some()),
                (Method::HEAD, item.get.is_some() || item.head.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::OPTIONS, item.options.is_some()),
                (Method::TRACE, item.trace.is_some()),
            ];
            served.extend(
                operations
                    .into_iter()
                    .filter_map(|(m, present)| present.then_some(m)),
            );
        }
        Gate {
            state,
            methods: Arc::new(methods),
            metrics_public,
        }
    }

    /// 405 with `Allow` when `template` is documented without `method`.
    fn refuse_method(&self, template: &str, method: &Method) -> Option<Response> {
        let served = self.methods.get(template)?;
        if served.contains(method) {
            return None;
        }
        let allow = served
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let mut res = StatusCode::METHOD_NOT_ALLOWED.into_response();
        if let Ok(v) = HeaderValue::from_str(&allow) {
            res.headers_mut().insert(ALLOW, v);
        }
        Some(res)
    }
}

/// Route layer: the credential of the route's level, or its refusal. Runs before the body is
/// read and before any other layer that could write.
pub async fn authenticate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let Some(template) = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    else {
        // Every route has a template; without one, refuse rather than guess.
        tracing::error!("a route without a matched path reached authentication");
        return internal();
    };
    if let Some(refused) = gate.refuse_method(template, req.method()) {
        return refused;
    }
    let state = &gate.state;
    if template.starts_with(SANDBOX_ROUTES) && !state.services.settings.sandbox {
        return crate::http::hygiene::fallback().await.into_response();
    }
    let level = route_level(template, gate.metrics_public);
    let headers = req.headers();
    let authenticated = match level {
        Level::Public => {
            if template == ami_mcp::MCP_PATH
                && let Some(refused) =
                    crate::http::mcp_gate::refusal(state, req.method(), req.headers()).await
            {
                return refused;
            }
            return next.run(req).await;
        }
        Level::Customer => {
            let token = bearer_of(headers);
            state
                .services
                .authenticate_customer(token)
                .await
                .map(|c| (Caller::Customer(c), token))
        }
        Level::Agent => {
            let token = bearer_of(headers);
            state
                .services
                .authenticate_agent(token)
                .await
                .map(|a| (Caller::Agent(a), token))
        }
        Level::Admin => {
            let token = bearer_of(headers);
            state
                .services
                .authenticate_admin(token)
                .map(|a| (Caller::Admin(a), token))
        }
        Level::Telco => check_telco_key(headers, state)
            .map_err(|e| e.0)
            .map(|()| (Caller::Telco, telco_key(headers))),
    };
    match authenticated {
        Ok((caller, secret)) => {
            // The request's log line names the account it acted for (never the credential).
            let account = match &caller {
                Caller::Customer(c) => Some(c.account_id.as_str()),
                Caller::Agent(a) => Some(a.account_id.as_str()),
                _ => None,
            };
            if let Some(account) = account {
                tracing::Span::current().record("account", account);
            }
            let credential = Credential::new(level, secret.unwrap_or_default());
            req.extensions_mut().insert(caller);
            req.extensions_mut().insert(credential);
            next.run(req).await
        }
        Err(e) => ApiError(e).into_response(),
    }
}

fn internal() -> Response {
    internal_error().into_response()
}

fn internal_error() -> ApiError {
    ApiError::new(500, "internal_error", "internal error")
}

/// The caller `authenticate` left for this request, when it is of the wanted kind.
fn caller<T>(parts: &Parts, pick: impl FnOnce(&Caller) -> Option<T>) -> Result<T, ApiError> {
    parts
        .extensions
        .get::<Caller>()
        .and_then(pick)
        .ok_or_else(|| {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map(MatchedPath::as_str);
            tracing::error!(
                route,
                "the handler takes another credential level than its route"
            );
            internal_error()
        })
}

/// Level 1: a customer API key.
pub struct Customer(pub CustomerCaller);
/// Level 2: an agent token, bound to one MID.
pub struct Agent(pub AgentCaller);
/// The operator master key.
pub struct Admin(pub AdminCaller);
/// The carrier partner: header `X-Telco-Key` equal to `AMI_TELCO_INBOUND_KEY`.
pub struct Telco;
/// Sandbox servers only: elsewhere the route answers like a route that does not exist.
pub struct SandboxOnly;

pub const TELCO_KEY_HEADER: &str = "x-telco-key";

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        caller(parts, |c| match c {
            Caller::Customer(c) => Some(Customer(c.clone())),
            _ => None,
        })
    }
}

impl FromRequestParts<AppState> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        caller(parts, |c| match c {
            Caller::Agent(a) => Some(Agent(a.clone())),
            _ => None,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        caller(parts, |c| match c {
            Caller::Admin(a) => Some(Admin(a.clone())),
            _ => None,
        })
    }
}

impl FromRequestParts<AppState> for Telco {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        caller(parts, |c| matches!(c, Caller::Telco).then_some(Telco))
    }
}

fn telco_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(TELCO_KEY_HEADER).and_then(|v| v.to_str().ok())
}

/// The telco key check: 503 `telco_inbound_disabled` when no key is configured; otherwise a
/// missing, unreadable or wrong key is the same 401 `invalid_telco_key`. The comparison is
/// of SHA-256 digests in constant time, so neither the key nor its length leaks by timing.
pub fn check_telco_key(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = state.telco_key_hash.as_deref() else {
        return Err(ApiError::new(
            503,
            "telco_inbound_disabled",
            "telco callbacks are not enabled on this server",
        ));
    };
    let given = telco_key(headers);
    let digest = secret::hash(given.unwrap_or_default());
    if given.is_some() && secret::ct_eq(digest.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError(ami_services::Error::unauthorized(
            "invalid_telco_key",
        )))
    }
}

impl FromRequestParts<AppState> for SandboxOnly {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.services.settings.sandbox {
            Ok(SandboxOnly)
        } else {
            Err(crate::http::hygiene::fallback().await)
        }
    }
}
