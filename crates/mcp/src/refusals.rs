//! What `/mcp` answers when it cannot take a message: always a JSON-RPC 2.0 error object
//! (`{"jsonrpc":"2.0","id":null,"error":{code,message}}`), never the SDK's plain text.
//!
//! The streamable HTTP transport says a server that cannot accept its input answers an HTTP
//! error status (e.g. 400) whose body may be a JSON-RPC error without an id. So:
//! - a body that is not JSON, has a key twice at any depth, or nests deeper than the
//!   configured maximum: 400, -32700 (parse error), before the SDK sees it;
//! - JSON that is no JSON-RPC message: 400, -32600 (invalid request);
//! - every other refusal of the transport (wrong `Content-Type`: 415; `Accept`: 406; body
//!   too large: 413; `Host` or `Origin`: 403; method: 405) keeps its status, with -32000,
//!   the server-defined code the official SDKs use for these. Messages are fixed texts:
//!   they never repeat a header or the body.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use ami_core::json::{DEFAULT_MAX_DEPTH, JsonRefusal, MaxJsonDepth, parse_strict};

/// JSON-RPC 2.0: invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON sent is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// Server-defined: the HTTP transport refused the request.
pub const TRANSPORT_ERROR: i64 = -32000;

/// The largest message accepted, in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyCap(pub usize);

/// Middleware of the `/mcp` route: checks a JSON POST body strictly, then lets the SDK answer
/// and gives any plain-text refusal of its a JSON-RPC body.
pub(crate) async fn json_rpc_refusals(
    State(cap): State<BodyCap>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST || !is_json(req.headers()) {
        return as_json_rpc(next.run(req).await, false);
    }
    let max_depth = req
        .extensions()
        .get::<MaxJsonDepth>()
        .map_or(DEFAULT_MAX_DEPTH, |d| d.0);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, cap.0).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return if is_length_limit(&*e.into_inner()) {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    TRANSPORT_ERROR,
                    &format!("Payload Too Large: a message has at most {} bytes", cap.0),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    TRANSPORT_ERROR,
                    "Bad Request: the body could not be read",
                )
            };
        }
    };
    if let Err(refusal) = parse_strict(&bytes, max_depth) {
        let why = match refusal {
            JsonRefusal::Syntax(e) => format!("Parse error: {e}"),
            JsonRefusal::TooDeep { max } => {
                format!("Parse error: JSON nested deeper than {max} levels")
            }
            JsonRefusal::DuplicateKey(_) => "Parse error: an object has a key twice".to_owned(),
        };
        return error(StatusCode::BAD_REQUEST, PARSE_ERROR, &why);
    }
    as_json_rpc(
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await,
        true,
    )
}

/// `application/json`, parameters allowed: what the SDK itself accepts.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

fn is_length_limit(err: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A refusal of the SDK in plain text becomes a JSON-RPC error object. `body_was_json`:
/// the body passed the strict parse, so an unsupported-media answer means the JSON is no
/// JSON-RPC message.
fn as_json_rpc(res: Response, body_was_json: bool) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) {
        return res;
    }
    let (status, code, message) = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE if body_was_json => (
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Invalid Request: the body must be one JSON-RPC 2.0 request, notification or response",
        ),
        s => (s, TRANSPORT_ERROR, fixed_message(s)),
    };
    let (mut parts, _plain) = res.into_parts();
    let fresh = error(status, code, message);
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, fresh.into_body())
}

fn fixed_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => {
            "Bad Request: the request cannot be accepted (check the MCP-Protocol-Version header)"
        }
        403 => "Forbidden: the Host or Origin header is not allowed",
        404 => "Not Found",
        405 => "Method Not Allowed: POST one JSON-RPC message to this endpoint",
        406 => "Not Acceptable: the Accept header must list application/json and text/event-stream",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type: Content-Type must be application/json",
        500..=599 => "Internal error",
        _ => "Request refused",
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
