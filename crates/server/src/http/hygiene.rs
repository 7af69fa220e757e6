//! Router-wide hygiene: the 404 fallback, §2 bodies for errors produced outside handlers
//! (axum rejections, timeouts, panics caught by a layer), request timeout, security headers,
//! and the unread rest of a body refused for its size or type.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;
use tower_http::timeout::TimeoutLayer;

use super::error::ApiError;
use super::json;

/// `Router::fallback(fallback)`: unknown paths get a §2 body, with the protocol's code.
pub async fn fallback() -> ApiError {
    ApiError::new(404, UNKNOWN_ROUTE, "no such route")
}

/// The code of a path no route serves.
pub const UNKNOWN_ROUTE: &str = "unknown_route";

/// Middleware: any 4xx/5xx that is not already JSON (or an HTML page) is rewritten into
/// the §2 shape. Status and headers (`Allow`, `Retry-After`, …) are kept; the original
/// text is dropped, as it may echo input or internals.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || keeps_its_body(&res) {
        return res;
    }
    let (code, message) = code_for(status);
    let (mut parts, _original) = res.into_parts();
    let (fresh, body) = ApiError::new(status.as_u16(), &code, message)
        .into_response()
        .into_parts();
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
    ] {
        parts.headers.remove(name);
    }
    if let Some(ct) = fresh.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, ct.clone());
    }
    Response::from_parts(parts, body)
}

fn keeps_its_body(res: &Response) -> bool {
    let Some(essence) = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return false;
    };
    essence == "application/json" || essence == "text/html" || essence.ends_with("+json")
}

fn code_for(status: StatusCode) -> (String, &'static str) {
    match status.as_u16() {
        400 | 422 => (
            "invalid_request".into(),
            "the request could not be understood",
        ),
        404 => (UNKNOWN_ROUTE.into(), "no such route"),
        405 => (
            "method_not_allowed".into(),
            "method not allowed on this route",
        ),
        408 => ("request_timeout".into(), "the request took too long"),
        413 => ("payload_too_large".into(), "request body too large"),
        415 => ("unsupported_media_type".into(), "unsupported Content-Type"),
        500..=599 => ("internal_error".into(), "internal error"),
        other => (format!("http_{other}"), "request refused"),
    }
}

/// A request running longer than `d` is answered 408; `json_errors` gives it its body.
pub fn timeout_layer(d: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, d)
}

/// How much of a refused body is read and thrown away so that its client sees the answer.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub max_bytes: u64,
    pub max_time: Duration,
}

/// Bodies up to this many times the body limit are drained.
const DRAIN_FACTOR: u64 = 4;
/// For at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(5);

impl Drain {
    pub fn for_body_limit(limit: usize) -> Drain {
        Drain {
            max_bytes: (limit as u64).saturating_mul(DRAIN_FACTOR),
            max_time: DRAIN_TIME,
        }
    }
}

/// Middleware: a request refused for its body's size or type (413, 415) before the body was
/// read gets the rest of it read and discarded, up to [`Drain`]'s bounds, while its answer
/// goes out. Closing a socket with unread data resets it, and a client still writing its
/// body (most do, before they read) would see a broken pipe instead of the 413. Nothing is
/// kept, so this costs bandwidth, never memory. Other refusals, those of a credential above
/// all, read nothing more: hyper closes the connection after answering them.
pub async fn drain_refused_bodies(
    State(drain): State<Drain>,
    req: Request,
    next: Next,
) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    // A client waiting for `100 Continue` has not sent its body; reading would invite it.
    let waits = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let drainable =
        !waits && json::content_length(req.headers()).is_none_or(|n| n <= drain.max_bytes);
    let (back, mut returned) = oneshot::channel();
    let req = req.map(|body| {
        Body::new(Returning {
            inner: Some(body),
            back: Some(back),
        })
    });
    let res = next.run(req).await;
    let refused_for_body = matches!(
        res.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    if refused_for_body
        && drainable
        && let Ok(rest) = returned.try_recv()
    {
        tokio::spawn(discard(rest, drain));
    }
    res
}

async fn discard(mut body: Body, drain: Drain) {
    let read = async move {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > drain.max_bytes {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(drain.max_time, read).await;
}

/// A request body that, dropped before its end, hands what is left back to
/// `drain_refused_bodies`.
struct Returning {
    inner: Option<Body>,
    back: Option<oneshot::Sender<Body>>,
}

impl HttpBody for Returning {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.get_mut().inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let (Some(body), Some(back)) = (self.inner.take(), self.back.take())
            && !body.is_end_stream()
        {
            let _ = back.send(body);
        }
    }
}

/// Middleware: conservative security headers on every response, unless a handler set its own.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let headers = res.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    // Every page is static HTML with inline style and no script; a page with its own needs
    // (the signing form) sets its own policy.
    if html {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(PAGE_CSP));
    }
    res
}

/// The Content-Security-Policy of HTML responses that set none themselves.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Path;
    use axum::middleware::from_fn;
    use axum::routing::{get, post};
    use serde_json::Value;
    use tower::ServiceExt;

    /// An empty error response, as some layers produce.
    fn bare(status: StatusCode) -> Response {
        (status, Body::empty()).into_response()
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/items/{n}",
                get(|Path(n): Path<u32>| async move { n.to_string() }),
            )
            .route(
                "/boom",
                get(|| async {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "db password=hunter2 at 10.0.0.3",
                    )
                }),
            )
            .route(
                "/json",
                get(|| async { ApiError::new(409, "already_signed", "x") }),
            )
            .route(
                "/html",
                get(|| async { (StatusCode::NOT_FOUND, axum::response::Html("<p>nope</p>")) }),
            )
            .route("/teapot", get(|| async { bare(StatusCode::IM_A_TEAPOT) }))
            .route(
                "/own-cache",
                get(|| async { ([(header::CACHE_CONTROL, "max-age=60")], "ok") }),
            )
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "late"
                }),
            )
            .fallback(fallback)
            .layer(timeout_layer(Duration::from_millis(50)))
            .layer(from_fn(json_errors))
            .layer(from_fn(security_headers))
    }

    async fn call(method: &str, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        (
            parts.status,
            parts.headers,
            axum::body::to_bytes(body, 1 << 16).await.unwrap().to_vec(),
        )
    }

    async fn json(method: &str, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let (s, h, b) = call(method, uri).await;
        assert_eq!(h[header::CONTENT_TYPE], "application/json", "{uri}");
        (s, h, serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn unknown_route_is_not_found_json() {
        let (s, _, b) = json("GET", "/nope").await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_route"))
        );
    }

    #[tokio::test]
    async fn method_not_allowed_keeps_allow() {
        let (s, h, b) = json("DELETE", "/items/1").await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
        );
        assert!(h[header::ALLOW].to_str().unwrap().contains("GET"));
    }

    #[tokio::test]
    async fn rejections_and_internal_errors_are_reshaped_without_leaks() {
        let (s, _, b) = json("GET", "/items/abc").await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        let (s, _, b) = json("GET", "/boom").await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error"))
        );
        assert!(!b.to_string().contains("hunter2"));
        let (s, _, b) = json("GET", "/teapot").await;
        assert_eq!((s.as_u16(), b["error"].as_str()), (418, Some("http_418")));
    }

    #[tokio::test]
    async fn json_and_html_errors_pass_untouched() {
        let (s, _, b) = json("GET", "/json").await;
        assert_eq!(
            (s.as_u16(), b["error"].as_str()),
            (409, Some("already_signed"))
        );
        let (s, h, b) = call("GET", "/html").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(b, b"<p>nope</p>");
    }

    #[tokio::test]
    async fn slow_requests_time_out_as_json() {
        let (s, _, b) = json("POST", "/slow").await;
        assert_eq!(
            (s, b["error"].as_str()),
            (StatusCode::REQUEST_TIMEOUT, Some("request_timeout"))
        );
    }

    #[tokio::test]
    async fn security_headers_everywhere_without_overriding() {
        for uri in ["/items/1", "/nope", "/boom"] {
            let (_, h, _) = call("GET", uri).await;
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(h[header::CACHE_CONTROL], "no-store");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        }
        let (_, h, _) = call("GET", "/own-cache").await;
        assert_eq!(h[header::CACHE_CONTROL], "max-age=60");
    }
}
