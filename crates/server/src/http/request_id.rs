//! `X-Request-Id` on every response (PROTOCOL §0) and a `request` tracing span per request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 64;
/// Paths are logged for orientation only; a long one is cut.
const MAX_LOGGED_PATH: usize = 200;

/// The id of the current request, as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// How loud the one line each request ends with is: `info` for structured logs, whose
/// readers want every request; `debug` for readable ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLog {
    pub at_info: bool,
}

/// Middleware (`axum::middleware::from_fn_with_state(RequestLog, request_id)`): keeps a
/// well-formed incoming id, else makes one, and echoes it in the response. The request ends
/// with one log line: its id, method, path, route, account, status and latency; never a
/// query string, a header or a body.
pub async fn request_id(State(log): State<RequestLog>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| is_acceptable(s))
        .map_or_else(|| ami_core::id::new_id("req"), str::to_owned);
    let value = HeaderValue::from_str(&id).ok();
    // Handlers that read the header see the same, safe value.
    match &value {
        Some(v) => req.headers_mut().insert(X_REQUEST_ID, v.clone()),
        None => req.headers_mut().remove(X_REQUEST_ID),
    };
    req.extensions_mut().insert(RequestId(id.clone()));

    // The query string never reaches the logs: signing tokens travel in it.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let path = match &route {
        Some(route) => route.clone(),
        None => req.uri().path().chars().take(MAX_LOGGED_PATH).collect(),
    };
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %path,
        route = tracing::field::Empty,
        account = tracing::field::Empty,
        id = %id,
    );
    if let Some(route) = &route {
        span.record("route", route.as_str());
    }
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        let status = res.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        if log.at_info {
            tracing::info!(status, latency_ms, "request finished");
        } else {
            tracing::debug!(status, latency_ms, "request finished");
        }
    });
    if let Some(v) = value {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    res
}

/// Route-level middleware (`Router::route_layer(from_fn(record_route))`): adds the matched
/// path template to the `request` span, which the outer middleware runs too early to see.
pub async fn record_route(req: Request, next: Next) -> Response {
    if let Some(matched) = req.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("route", matched.as_str());
    }
    next.run(req).await
}

/// 1..=64 characters of `[A-Za-z0-9._-]`: safe to reflect in a header and a log line.
fn is_acceptable(s: &str) -> bool {
    (1..=MAX_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/echo",
                get(|Extension(RequestId(id)): Extension<RequestId>| async move { id }),
            )
            .layer(axum::middleware::from_fn_with_state(
                RequestLog::default(),
                request_id,
            ))
    }

    async fn call(header: Option<&[u8]>) -> (String, String) {
        let mut b = axum::http::Request::builder().uri("/echo?t=secret");
        if let Some(h) = header {
            b = b.header("x-request-id", HeaderValue::from_bytes(h).unwrap());
        }
        let res = app().oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        let header = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        (header, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn keeps_a_good_incoming_id() {
        let (h, seen) = call(Some(b"abc-123_X.y")).await;
        assert_eq!((h.as_str(), seen.as_str()), ("abc-123_X.y", "abc-123_X.y"));
    }

    #[tokio::test]
    async fn replaces_a_bad_or_missing_id() {
        let long = "a".repeat(65);
        for bad in [
            None,
            Some(&b""[..]),
            Some(b"has space"),
            Some(b"semi;colon"),
            Some(long.as_bytes()),
            Some(b"caf\xc3\xa9"),
        ] {
            let (h, seen) = call(bad).await;
            assert!(h.starts_with("req_") && h.len() > 20, "{bad:?} -> {h}");
            assert_eq!(h, seen);
        }
    }

    #[test]
    fn acceptance_rule() {
        assert!(is_acceptable("a"));
        assert!(is_acceptable(&"a".repeat(64)));
        assert!(!is_acceptable("a\r\nSet-Cookie: x"));
        assert!(!is_acceptable("a/b"));
    }
}
