//! JSON request bodies, refused the PROTOCOL §2 way: 415, 413, `json_too_deep`,
//! `duplicate_key`, `invalid_json`, `unknown_field`. Messages never echo much of the input,
//! nor control characters.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use ami_core::json::{JsonRefusal, parse_strict};

use super::error::{ApiError, Error};

/// Request extension: the body cap for this request (default [`DEFAULT_BODY_LIMIT`]).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Request extension: the deepest JSON nesting accepted (default [`DEFAULT_MAX_DEPTH`]).
/// Defined beside the strict parser, so that `/mcp` reads the same setting.
pub use ami_core::json::MaxJsonDepth;

pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
pub use ami_core::json::DEFAULT_MAX_DEPTH;
/// Most characters of client input a message may repeat.
const MAX_ECHO: usize = 100;
/// Backstop for a whole message, whatever serde put in it.
const MAX_MESSAGE: usize = 240;

/// A JSON body deserialised into `T`. An empty body counts as `{}` so bodiless POSTs work.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        let max_depth = req
            .extensions()
            .get::<MaxJsonDepth>()
            .map_or(DEFAULT_MAX_DEPTH, |d| d.0);
        let is_json = is_json_content_type(req.headers());
        // A declared size settles both questions before a byte is read.
        if let Some(len) = content_length(req.headers()) {
            if len > limit as u64 {
                return Err(too_large(limit));
            }
            if len > 0 && !is_json {
                return Err(unsupported_media_type());
            }
        }
        let bytes = read_body(req.into_body(), limit).await?;
        if bytes.is_empty() {
            return from_value(Value::Object(serde_json::Map::new())).map(ApiJson);
        }
        if !is_json {
            return Err(unsupported_media_type());
        }
        from_value(object_only(parse_value(&bytes, max_depth)?)?).map(ApiJson)
    }
}

/// A body is one JSON object: serde would also fill a struct from an array, by position,
/// which no client means and no document describes.
fn object_only(value: Value) -> Result<Value, ApiError> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError(Error::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        )))
    }
}

/// Parses a JSON document in one pass, with §2 refusals: nesting deeper than `max_depth`
/// (`json_too_deep`) and an object with a key twice, at any depth (`duplicate_key`), are
/// refused on the way, before the parser goes further.
pub fn parse_value(bytes: &[u8], max_depth: usize) -> Result<Value, ApiError> {
    parse_strict(bytes, max_depth).map_err(|refusal| match refusal {
        JsonRefusal::Syntax(e) => ApiError(Error::bad_request(
            "invalid_json",
            format!("malformed JSON: {}", sanitise(&e.to_string())),
        )),
        JsonRefusal::TooDeep { max } => ApiError(
            Error::bad_request(
                "json_too_deep",
                format!("JSON nested deeper than {max} levels"),
            )
            .with("max_depth", max),
        ),
        JsonRefusal::DuplicateKey(key) => {
            let key = sanitise_echo(&key);
            ApiError(
                Error::bad_request(
                    "duplicate_key",
                    format!("an object of the body has the key `{key}` twice"),
                )
                .with("key", key),
            )
        }
    })
}

/// Deserialises an already parsed document into `T`, with §2 refusals.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    T::deserialize(value).map_err(|e| deserialize_error(&e.to_string()))
}

/// Maps a serde message to `unknown_field {field}` or `invalid_json`; shared with queries.
pub(crate) fn classify(
    message: &str,
    unknown_code: &str,
    unknown_key: &str,
    other_code: &str,
) -> ApiError {
    if let Some((name, rest)) = unknown_field(message) {
        let name = sanitise_echo(name);
        let message = format!("unknown {unknown_key} `{name}`{}", sanitise(rest));
        return ApiError(Error::bad_request(unknown_code, message).with(unknown_key, name));
    }
    ApiError(Error::bad_request(other_code, sanitise(message)))
}

fn deserialize_error(message: &str) -> ApiError {
    classify(message, "unknown_field", "field", "invalid_json")
}

/// serde's `unknown field `NAME`, expected …` / `…, there are no fields`.
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = ["`, expected", "`, there are no fields"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .or_else(|| rest.rfind('`'))?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Reads a body of at most `limit` bytes: 413 beyond, 400 `invalid_body` when it breaks off.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        if is_length_limit(&*inner) {
            too_large(limit)
        } else {
            ApiError(Error::bad_request(
                "invalid_body",
                "the request body could not be read",
            ))
        }
    })
}

/// Walks the source chain: a limit hit by an outer layer (tower-http's) arrives wrapped.
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError(
        Error::refused(
            413,
            "payload_too_large",
            format!("request body larger than {limit} bytes"),
        )
        .with("max_bytes", limit),
    )
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        415,
        "unsupported_media_type",
        "Content-Type must be application/json",
    )
}

/// `application/json`, parameters such as `; charset=utf-8` allowed.
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The declared `Content-Length`, when there is a readable one.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Makes a serde message safe to return: control and bidi characters escaped, every
/// quoted span of input cut to 100 characters, the whole bounded.
pub(crate) fn sanitise(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE + 8));
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '`' {
            // A quoted span: serde's echo of the input.
            let close = c;
            let mut span = String::new();
            let mut closed = false;
            let mut prev_backslash = false;
            for d in chars.by_ref() {
                if d == close && !(close == '"' && prev_backslash) {
                    closed = true;
                    break;
                }
                prev_backslash = d == '\\' && !prev_backslash;
                span.push(d);
            }
            out.push(close);
            out.push_str(&sanitise_echo(&span));
            if closed {
                out.push(close);
            }
        } else {
            push_safe(&mut out, c);
        }
        if out.chars().count() > MAX_MESSAGE {
            let cut: String = out.chars().take(MAX_MESSAGE).collect();
            return format!("{cut}…");
        }
    }
    out
}

/// A piece of client input for a message: safe characters, at most 100 of them.
pub(crate) fn sanitise_echo(input: &str) -> String {
    let mut out = String::new();
    for (i, c) in input.chars().enumerate() {
        if i == MAX_ECHO {
            out.push('…');
            break;
        }
        push_safe(&mut out, c);
    }
    out
}

fn push_safe(out: &mut String, c: char) {
    let bidi =
        matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if c.is_control() || bidi || c == '\u{2028}' || c == '\u{2029}' {
        out.push_str(&format!("\\u{{{:x}}}", c as u32));
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Send {
        to: String,
        #[serde(default)]
        count: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Bodiless {
        #[serde(default)]
        reason: Option<String>,
    }

    fn req(content_type: Option<&str>, body: impl Into<Body>) -> Request {
        let mut b = Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(body.into()).unwrap()
    }

    async fn extract<T: DeserializeOwned>(r: Request) -> Result<T, ApiError> {
        ApiJson::<T>::from_request(r, &()).await.map(|ApiJson(v)| v)
    }

    fn code(e: &ApiError) -> (u16, String) {
        (e.0.status(), e.0.code().to_owned())
    }

    #[tokio::test]
    async fn accepts_json_with_parameters() {
        let v: Send = extract(req(
            Some("application/json; charset=utf-8"),
            r#"{"to":"+34600000001","count":2}"#,
        ))
        .await
        .unwrap();
        assert_eq!(
            v,
            Send {
                to: "+34600000001".into(),
                count: Some(2)
            }
        );
        let v: Send = extract(req(Some("Application/JSON"), r#"{"to":"x"}"#))
            .await
            .unwrap();
        assert_eq!(v.to, "x");
    }

    #[tokio::test]
    async fn empty_body_is_an_empty_object_whatever_the_type() {
        for ct in [None, Some("text/plain"), Some("application/json")] {
            let v: Bodiless = extract(req(ct, Body::empty())).await.unwrap();
            assert_eq!(v, Bodiless { reason: None });
        }
        // A required field is still required.
        let e = extract::<Send>(req(None, Body::empty())).await.unwrap_err();
        assert_eq!(code(&e), (400, "invalid_json".into()));
        assert!(
            e.0.body()["message"]
                .as_str()
                .unwrap()
                .contains("missing field `to`")
        );
    }

    #[tokio::test]
    async fn wrong_content_type_is_415() {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/jsonx"),
        ] {
            let e = extract::<Send>(req(ct, r#"{"to":"x"}"#)).await.unwrap_err();
            assert_eq!(code(&e), (415, "unsupported_media_type".into()), "{ct:?}");
        }
    }

    #[tokio::test]
    async fn oversized_body_is_413_declared_or_streamed() {
        let big = format!(r#"{{"to":"{}"}}"#, "a".repeat(2 << 20));
        // No Content-Length: the limit is hit while reading.
        let e = extract::<Send>(req(Some("application/json"), big.clone()))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (413, "payload_too_large".into()));

        // Declared too large: refused before reading, under a per-request limit.
        let mut r = req(Some("application/json"), "{}");
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, "1001".parse().unwrap());
        r.extensions_mut().insert(BodyLimit(1000));
        let e = extract::<Send>(r).await.unwrap_err();
        assert_eq!(code(&e), (413, "payload_too_large".into()));
        assert_eq!(e.0.body()["max_bytes"], 1000);

        let mut r = req(Some("application/json"), r#"{"to":"12345"}"#);
        r.extensions_mut().insert(BodyLimit(10));
        assert_eq!(
            code(&extract::<Send>(r).await.unwrap_err()),
            (413, "payload_too_large".into())
        );
    }

    #[tokio::test]
    async fn deep_json_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        let e = parse_value(deep.as_bytes(), 32).unwrap_err();
        assert_eq!(code(&e), (400, "json_too_deep".into()));
        assert!(
            parse_value(
                format!("{}{}", "[".repeat(32), "]".repeat(32)).as_bytes(),
                32
            )
            .is_ok()
        );
        // Brackets inside strings, escaped quotes included, do not count.
        let tricky = format!(r#"{{"a":"\"{}"}}"#, "[".repeat(100));
        assert!(parse_value(tricky.as_bytes(), 2).is_ok());
        // Through the extractor, with a configured maximum.
        let mut r = req(Some("application/json"), r#"{"to":{"a":{"b":1}}}"#);
        r.extensions_mut().insert(MaxJsonDepth(2));
        assert_eq!(
            code(&extract::<Send>(r).await.unwrap_err()),
            (400, "json_too_deep".into())
        );
    }

    #[tokio::test]
    async fn duplicate_keys_are_refused_at_any_depth() {
        for body in [
            r#"{"to":"+34600000001","to":"+34600000002"}"#,
            r#"{"to":"x","count":1,"count":2}"#,
            r#"{"to":"x","\u0074o":"y"}"#,
        ] {
            let e = extract::<Send>(req(Some("application/json"), body))
                .await
                .unwrap_err();
            assert_eq!(code(&e), (400, "duplicate_key".into()), "{body}");
        }
        let e = extract::<Send>(req(
            Some("application/json"),
            r#"{"to":{"a":[{"b":1,"b":1}]}}"#,
        ))
        .await
        .unwrap_err();
        assert_eq!(code(&e), (400, "duplicate_key".into()));
        assert_eq!(e.0.body()["key"], "b");
        // A hostile key comes back bounded and without control characters.
        let key = format!("k\\r\\n{}", "z".repeat(300));
        let body = format!(r#"{{"{key}":1,"{key}":2}}"#);
        let e = extract::<Send>(req(Some("application/json"), body))
            .await
            .unwrap_err();
        let b = e.0.body();
        let echoed = b["key"].as_str().unwrap();
        assert!(
            echoed.starts_with("k\\u{d}\\u{a}z") && echoed.ends_with('…'),
            "{echoed}"
        );
        assert!(!b["message"].as_str().unwrap().chars().any(char::is_control));
        // The same key in two objects is no duplicate.
        let v: Send = extract(req(Some("application/json"), r#"{"to":"x","count":1}"#))
            .await
            .unwrap();
        assert_eq!(v.count, Some(1));
    }

    #[tokio::test]
    async fn syntax_errors_are_invalid_json_without_echo() {
        let input = format!("{{\"to\": \"{}\r\n\u{0}", "x".repeat(500));
        let e = extract::<Send>(req(Some("application/json"), input))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (400, "invalid_json".into()));
        let msg = e.0.body()["message"].as_str().unwrap().to_owned();
        assert!(!msg.contains("xxxxxxxxxx"), "{msg}");
        assert!(!msg.chars().any(char::is_control), "{msg}");
        assert!(msg.contains("line"), "{msg}");
    }

    #[tokio::test]
    async fn unknown_fields_are_named() {
        let e = extract::<Send>(req(Some("application/json"), r#"{"to":"x","bcc":"y"}"#))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (400, "unknown_field".into()));
        assert_eq!(e.0.body()["field"], "bcc");

        // A hostile field name comes back bounded and without control characters.
        let name = format!("a\r\nSet-Cookie: x{}", "z".repeat(300));
        let body = serde_json::json!({ "to": "x", name: 1 }).to_string();
        let e = extract::<Send>(req(Some("application/json"), body))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (400, "unknown_field".into()));
        let b = e.0.body();
        let field = b["field"].as_str().unwrap();
        assert!(
            field.starts_with("a\\u{d}\\u{a}Set-Cookie") && field.ends_with('…'),
            "{field}"
        );
        assert!(
            !field.chars().any(char::is_control) && !field.contains(&"z".repeat(100)),
            "{field}"
        );
        assert!(!b["message"].as_str().unwrap().chars().any(char::is_control));
    }

    #[tokio::test]
    async fn wrong_types_are_invalid_json_with_a_bounded_message() {
        let body =
            serde_json::json!({ "to": "x", "count": format!("{}\n", "9".repeat(400)) }).to_string();
        let e = extract::<Send>(req(Some("application/json"), body))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (400, "invalid_json".into()));
        let msg = e.0.body()["message"].as_str().unwrap().to_owned();
        assert!(msg.contains("invalid type"), "{msg}");
        assert!(
            msg.len() < 300 && !msg.contains(&"9".repeat(101)) && !msg.contains('\n'),
            "{msg}"
        );

        let e = extract::<Send>(req(Some("application/json"), "[1,2]"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (400, "invalid_json".into()));
    }

    #[tokio::test]
    async fn a_struct_is_never_read_from_an_array_or_a_scalar() {
        // Positionally, `["x", 2]` would be a valid `Send`.
        for body in [
            r#"["+34600000001", 2]"#,
            r#"["x"]"#,
            "[]",
            "\"x\"",
            "7",
            "null",
        ] {
            let e = extract::<Send>(req(Some("application/json"), body))
                .await
                .unwrap_err();
            assert_eq!(code(&e), (400, "invalid_json".into()), "{body}");
            assert_eq!(
                e.0.body()["message"],
                "the body must be a JSON object",
                "{body}"
            );
        }
        // Nor a free-form body.
        let e = extract::<Value>(req(Some("application/json"), "[1]"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), (400, "invalid_json".into()));
    }
}
