//! Query strings with §2 refusals: `invalid_query`, `unknown_parameter`, `invalid_limit`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::{ApiError, Error};
use super::json::classify;

/// The query string deserialised into `T` (use `#[serde(deny_unknown_fields)]` on `T` to
/// refuse unknown parameters). Keep `limit` as `Option<String>` and pass it to
/// [`clamp_limit`] so a bad value gets its own code.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Parses a raw query string (without `?`).
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query).map_err(|e| {
        classify(
            &e.to_string(),
            "unknown_parameter",
            "parameter",
            "invalid_query",
        )
    })
}

/// A list's `limit` (PROTOCOL §0): absent → `default`; not an integer (an empty value
/// included: `limit=` names no number) → 400 `invalid_limit`; otherwise clamped to
/// `1..=max`, huge values included.
pub fn clamp_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(default);
    };
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError(
            Error::invalid(
                "limit",
                format!("limit must be an integer between 1 and {max}"),
            )
            .with("max", max),
        ));
    }
    let value = raw.parse::<i64>().unwrap_or(if raw.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    });
    Ok(value.clamp(1, max.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct List {
        limit: Option<String>,
        direction: Option<String>,
        cursor: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct Typed {
        #[allow(dead_code)]
        since: i64,
    }

    async fn extract<T: DeserializeOwned>(uri: &str) -> Result<T, ApiError> {
        let (mut parts, ()) = Request::builder().uri(uri).body(()).unwrap().into_parts();
        ApiQuery::<T>::from_request_parts(&mut parts, &())
            .await
            .map(|ApiQuery(v)| v)
    }

    #[tokio::test]
    async fn parses_known_parameters() {
        let q: List = extract("/v1/agent/sms?limit=5&direction=inbound")
            .await
            .unwrap();
        assert_eq!(
            q,
            List {
                limit: Some("5".into()),
                direction: Some("inbound".into()),
                cursor: None
            }
        );
        let q: List = extract("/v1/agent/sms").await.unwrap();
        assert_eq!(q.limit, None);
    }

    #[tokio::test]
    async fn unknown_parameter_is_named() {
        let e = extract::<List>("/x?limit=5&sort=asc").await.unwrap_err();
        assert_eq!((e.0.status(), e.0.code()), (400, "unknown_parameter"));
        assert_eq!(e.0.body()["parameter"], "sort");

        let e = extract::<List>(&format!("/x?a%0D%0A{}=1", "b".repeat(300)))
            .await
            .unwrap_err();
        let p = e.0.body()["parameter"].as_str().unwrap().to_owned();
        assert!(
            !p.chars().any(char::is_control) && !p.contains(&"b".repeat(100)) && p.ends_with('…'),
            "{p}"
        );
    }

    #[tokio::test]
    async fn bad_values_are_invalid_query() {
        let e = extract::<Typed>("/x?since=yesterday").await.unwrap_err();
        assert_eq!((e.0.status(), e.0.code()), (400, "invalid_query"));
        let e = extract::<Typed>("/x").await.unwrap_err();
        assert_eq!(e.0.code(), "invalid_query");
    }

    #[test]
    fn limits_are_clamped_or_refused() {
        assert_eq!(clamp_limit(None, 20, 200).unwrap(), 20);
        assert_eq!(clamp_limit(Some("50"), 20, 200).unwrap(), 50);
        assert_eq!(clamp_limit(Some("0"), 20, 200).unwrap(), 1);
        assert_eq!(clamp_limit(Some("-7"), 20, 200).unwrap(), 1);
        assert_eq!(clamp_limit(Some("100000"), 20, 200).unwrap(), 200);
        assert_eq!(
            clamp_limit(Some("99999999999999999999999999"), 20, 200).unwrap(),
            200
        );
        assert_eq!(
            clamp_limit(Some("-99999999999999999999999999"), 20, 200).unwrap(),
            1
        );
        for bad in ["", " ", "abc", "1.5", "1e3", "-", "+", "0x10", "5 5"] {
            let e = clamp_limit(Some(bad), 20, 200).unwrap_err();
            assert_eq!((e.0.status(), e.0.code()), (400, "invalid_limit"), "{bad}");
        }
    }
}
