//! The HTTP surface keeps the PROTOCOL §0/§2 shape everywhere, including where no handler
//! runs: unknown routes, wrong methods, malformed or oversized or mistyped bodies, slow
//! clients. Every response is JSON (except the documented pages) with an `X-Request-Id` and
//! `nosniff`; the discovery documents (§3.1) describe the live router and never a credential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, TestServer, engines};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Status, headers and body (parsed when JSON, else a string).
async fn send(req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let res = req.send().await.expect("response");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn content_type(h: &HeaderMap) -> &str {
    h.get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The §0/§2 envelope: JSON content type, a request id, nosniff, and (for errors) the code.
#[track_caller]
fn assert_json_error(
    what: &str,
    status: StatusCode,
    h: &HeaderMap,
    body: &Value,
    want: (u16, &str),
) {
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (want.0, Some(want.1)),
        "{what}: {body}"
    );
    assert_eq!(content_type(h), "application/json", "{what}");
    assert!(body["message"].is_string(), "{what}: {body}");
    assert!(h.contains_key("x-request-id"), "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let server = TestServer::start(engines()[0]).await;
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1/nope"),
        (Method::POST, "/v1/admin/nope"),
        (Method::GET, "/v1/mobile-identities/x/y/z"),
        (Method::GET, "/v1/health/"),
    ] {
        let (s, h, b) = send(
            server
                .http
                .request(method.clone(), format!("{}{path}", server.base))
                .bearer_auth(ADMIN_KEY),
        )
        .await;
        assert_json_error(
            &format!("{method} {path}"),
            s,
            &h,
            &b,
            (404, "unknown_route"),
        );
    }
    for (method, path, allowed) in [
        (Method::DELETE, "/v1/health", "GET"),
        (Method::GET, "/v1/admin/customers/x/suspend", "POST"),
        (Method::PUT, "/v1/sim-requests", "POST"),
        (Method::PATCH, "/v1/mobile-identities/x/limits", "POST"),
    ] {
        let (s, h, b) = send(
            server
                .http
                .request(method.clone(), format!("{}{path}", server.base)),
        )
        .await;
        assert_json_error(
            &format!("{method} {path}"),
            s,
            &h,
            &b,
            (405, "method_not_allowed"),
        );
        assert!(
            h["allow"].to_str().unwrap().contains(allowed),
            "{method} {path}: {:?}",
            h["allow"]
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bodies_are_refused_the_protocol_way() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Hygiene").await;
        let url = format!("{}/v1/sim-requests", server.base);
        let json_body = |body: &str| {
            server
                .http
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body.to_owned())
        };

        for malformed in [
            "{",
            "{\"country\": }",
            "nul",
            "{\"country\":\"ES\"} trailing",
        ] {
            let (s, h, b) = send(json_body(malformed)).await;
            assert_json_error(malformed, s, &h, &b, (400, "invalid_json"));
        }
        // Type errors are 400 too, never axum's 422 text.
        for mistyped in [
            r#"{"country": 5}"#,
            r#"{"capabilities": "sms"}"#,
            "[1,2]",
            r#"{"agent": {"name": []}}"#,
        ] {
            let (s, h, b) = send(json_body(mistyped)).await;
            assert_json_error(mistyped, s, &h, &b, (400, "invalid_json"));
        }
        let (s, h, b) = send(json_body(r#"{"country": "ES", "bogus": 1}"#)).await;
        assert_json_error("unknown field", s, &h, &b, (400, "unknown_field"));
        assert_eq!(b["field"], "bogus");
        let (s, h, b) = send(json_body(r#"{"agent": {"name": "a", "ssn": 1}}"#)).await;
        assert_json_error("nested unknown field", s, &h, &b, (400, "unknown_field"));
        assert_eq!(b["field"], "ssn");

        let (s, h, b) = send(json_body(&format!(
            "{}{}",
            "[".repeat(100),
            "]".repeat(100)
        )))
        .await;
        assert_json_error("deep", s, &h, &b, (400, "json_too_deep"));

        // The default cap is 1 MB: a padded valid body just under it is served, just over is 413.
        let under = pad(r#"{"country":"ES"}"#, (1 << 20) - 1);
        let (s, _, b) = send(json_body(&under)).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {b}");
        let over = pad(r#"{"country":"ES"}"#, (1 << 20) + 1);
        let (s, h, b) = send(json_body(&over)).await;
        assert_json_error("over 1 MB", s, &h, &b, (413, "payload_too_large"));
        assert_eq!(b["max_bytes"], 1 << 20);

        let (s, h, b) = send(
            server
                .http
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
        assert_json_error("text/plain", s, &h, &b, (415, "unsupported_media_type"));
        server.stop().await;
    }
}

/// `s` followed by spaces up to `len` bytes (whitespace is valid JSON padding).
fn pad(s: &str, len: usize) -> String {
    format!("{s}{}", " ".repeat(len - s.len()))
}

#[tokio::test]
async fn the_body_cap_is_configurable_and_holds_without_a_content_length() {
    let server = TestServer::start_with(engines()[0], &[("AMI_BODY_LIMIT_BYTES", "1024")]).await;
    let url = format!("{}/v1/admin/customers", server.base);
    let post = |body: String| {
        server
            .http
            .post(&url)
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(body)
    };
    let (s, _, b) = send(post(pad(r#"{"name":"Small"}"#, 1024))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, h, b) = send(post(pad(r#"{"name":"Big"}"#, 1025))).await;
    assert_json_error("1025 bytes", s, &h, &b, (413, "payload_too_large"));
    assert_eq!(b["max_bytes"], 1024);

    // Chunked: no declared size, the cap is hit while reading.
    let body = pad(r#"{"name":"Chunked"}"#, 4000);
    let request = format!(
        "POST /v1/admin/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (_, answer) = raw(&server, request.as_bytes(), Duration::from_secs(3))
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#""error":"payload_too_large""#),
        "{answer}"
    );
    server.stop().await;
}

/// A client that writes its whole request before reading (as most do) gets the 413 JSON body,
/// not a broken pipe: the server reads and discards the rest of a body it refused for its
/// size. Each try sends the rest of the body only once the answer is there, the moment at
/// which a server that closed without reading would reset the connection. Declared or
/// chunked, with or without an `Idempotency-Key`, on a customer or a public route.
#[tokio::test]
async fn an_oversized_body_sent_whole_gets_its_413_every_time() {
    const TRIES: usize = 20;
    let server = TestServer::start(engines()[0]).await;
    let (_, key) = server.customer("Uploader").await;
    let body = pad(r#"{"country":"ES"}"#, 2 << 20);
    let auth = format!("Authorization: Bearer {key}\r\n");
    // (what, the request up to the point where the server answers, the rest of it)
    let declared = |path: &str, extra: &str| {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        (head.into_bytes(), body.as_bytes().to_vec())
    };
    let chunked = {
        let mut r = format!(
            "POST /v1/sim-requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for piece in body.as_bytes().chunks(64 << 10) {
            r.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            r.extend_from_slice(piece);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        // The server answers once it has read past its 1 MiB limit.
        let rest = r.split_off(r.len() / 2 + (128 << 10));
        (r, rest)
    };
    let cases = [
        ("declared", declared("/v1/sim-requests", &auth)),
        (
            "declared, with a key",
            declared(
                "/v1/sim-requests",
                &format!("{auth}Idempotency-Key: big-1\r\n"),
            ),
        ),
        ("chunked", chunked),
        ("public route", declared("/v1/demo/quick", "")),
    ];
    for (what, (first, rest)) in &cases {
        for attempt in 0..TRIES {
            let mut stream = TcpStream::connect(server.running.addr).await.unwrap();
            stream.write_all(first).await.unwrap();
            let mut peek = [0u8; 1];
            let answered = tokio::time::timeout(Duration::from_secs(10), stream.peek(&mut peek))
                .await
                .expect("answered within 10 s");
            assert!(matches!(answered, Ok(1)), "{what}: {answered:?}");
            let written = stream.write_all(rest).await;
            assert!(
                written.is_ok(),
                "{what}, try {attempt}: writing the body failed: {written:?}"
            );
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
                    .await
                    .expect("closed within 10 s");
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                read.is_ok() && answer.starts_with("HTTP/1.1 413"),
                "{what}, try {attempt}: {read:?} {answer}"
            );
            assert!(
                answer.contains(r#""error":"payload_too_large""#),
                "{what}, try {attempt}: {answer}"
            );
        }
    }
    server.stop().await;
}

/// Writes `bytes` on a fresh connection and reads until the server closes it or `limit`
/// passes; returns how long the server took to close and what it sent.
async fn raw(server: &TestServer, bytes: &[u8], limit: Duration) -> Option<(Duration, String)> {
    let mut stream = TcpStream::connect(server.running.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => {
                return Some((
                    started.elapsed(),
                    String::from_utf8_lossy(&out).into_owned(),
                ));
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn every_response_carries_json_a_request_id_and_nosniff() {
    let server = TestServer::start(engines()[0]).await;
    let doc = serde_json::to_value(ami_server::app::api().1).unwrap();
    // Every operation, called bare (no credential, no body): 401s, 404s, pages, documents.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let non_json: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .values()
                .flat_map(|r| {
                    r["content"]
                        .as_object()
                        .into_iter()
                        .flat_map(|c| c.keys().map(String::as_str))
                })
                .filter(|ct| !ct.ends_with("json"))
                .collect();
            let uri = path.replace("{id}", "x").replace(['{', '}'], "");
            let (s, h, b) = send(
                server
                    .http
                    .request(method.clone(), format!("{}{uri}", server.base)),
            )
            .await;
            let what = format!("{method} {path} -> {s}");
            // The one documented 5xx: telco callbacks on a server without a telco key.
            let telco_disabled = s == StatusCode::SERVICE_UNAVAILABLE
                && path.starts_with("/v1/_telco/")
                && b["error"] == "telco_inbound_disabled";
            assert!(!s.is_server_error() || telco_disabled, "{what}: {b}");
            let ct = content_type(&h)
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_owned();
            assert!(
                ct == "application/json" || non_json.contains(&ct.as_str()),
                "{what}: content-type {ct}"
            );
            if ct == "application/json" && !s.is_success() {
                assert!(b["error"].is_string(), "{what}: {b}");
            }
            assert!(
                h.get("x-request-id").is_some_and(|v| !v.is_empty()),
                "{what}"
            );
            assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_only_when_safe() {
    let server = TestServer::start(engines()[0]).await;
    let health = |id: &str| {
        server
            .http
            .get(format!("{}/v1/health", server.base))
            .header("x-request-id", id)
    };
    for good in ["abc-123_X.y", "a", &"z".repeat(64)] {
        let (_, h, _) = send(health(good)).await;
        assert_eq!(h["x-request-id"], good);
    }
    for bad in [
        "has spaces in it",
        &"a".repeat(200),
        "semi;colon",
        "quote\"d",
        "slash/ed",
    ] {
        let (_, h, _) = send(health(bad)).await;
        let id = h["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(id.starts_with("req_") && id.len() <= 64, "{bad} -> {id}");
    }
    // Missing: one is made, and two requests never share it.
    let (_, a, _) = send(server.http.get(format!("{}/v1/health", server.base))).await;
    let (_, b, _) = send(server.http.get(format!("{}/v1/nope", server.base))).await;
    assert_ne!(a["x-request-id"], b["x-request-id"]);
    server.stop().await;
}

#[tokio::test]
async fn half_a_header_is_disconnected_within_the_header_read_timeout() {
    let server =
        TestServer::start_with(engines()[0], &[("AMI_HEADER_READ_TIMEOUT_MS", "300")]).await;
    let (took, sent) = raw(
        &server,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        Duration::from_secs(3),
    )
    .await
    .expect("the slow client was still connected after 3 s");
    assert!(
        took >= Duration::from_millis(200),
        "closed before the timeout: {took:?}"
    );
    assert!(!sent.contains("200 OK"), "{sent}");
    // A client that sends nothing at all is dropped the same way.
    raw(&server, b"", Duration::from_secs(3))
        .await
        .expect("a silent client was still connected after 3 s");
    // A prompt client is unaffected.
    let (_, answer) = raw(
        &server,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    )
    .await
    .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_answered_408_within_the_request_timeout() {
    let server = TestServer::start_with(engines()[0], &[("AMI_REQUEST_TIMEOUT_MS", "500")]).await;
    let before = server.event_count().await;
    let head = format!(
        "POST /v1/admin/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":\""
    );
    let mut stream = TcpStream::connect(server.running.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the answer is complete or the server closes.
    while !String::from_utf8_lossy(&out).contains("}") {
        match tokio::time::timeout(
            Duration::from_secs(3).saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => panic!(
                "no answer 3 s after a stalled body: {}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{answer}"
    );
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        server.event_count().await,
        before,
        "a timed-out request wrote to the audit log"
    );
    server.stop().await;
}

#[tokio::test]
async fn health_reports_service_version_time_storage_and_telco() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (s, h, b) = send(server.http.get(format!("{}/v1/health", server.base))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(content_type(&h), "application/json");
        assert_eq!(b["ok"], true);
        assert_eq!(b["service"], "ami");
        assert_eq!(b["version"], env!("CARGO_PKG_VERSION"));
        let time = b["time"].as_str().unwrap();
        assert!(
            time.ends_with('Z') && ami_core::time::parse_rfc3339(time).is_some(),
            "{time}"
        );
        let engine_name = match engine {
            common::Engine::Sqlite => "sqlite",
            common::Engine::Postgres => "postgres",
        };
        assert_eq!(b["storage"]["engine"], engine_name, "{b}");
        assert_eq!(b["storage"]["ok"], true, "{b}");
        assert!(b["telco"].is_object(), "{b}");
        server.stop().await;
    }
}

#[tokio::test]
async fn llms_txt_and_docs_describe_every_route_and_no_credential() {
    let telco = "telco-key-never-shown-0123456789";
    let api_key = "amik_live_0123456789abcdef0123456789abcdef0123456789abcdef";
    let server = TestServer::start_with(
        engines()[0],
        &[("AMI_TELCO_INBOUND_KEY", telco), ("AMI_API_KEY", api_key)],
    )
    .await;
    let (_, key) = server.customer("Docs").await;
    let flow = server.provision(&key).await;
    let secrets = [
        ADMIN_KEY,
        telco,
        api_key,
        key.as_str(),
        flow.agent_token.as_str(),
    ];

    let doc = serde_json::to_value(ami_server::app::api().1).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(routes.len() >= 20, "{routes:?}");

    let (s, h, llms) = send(server.http.get(format!("{}/llms.txt", server.base))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        content_type(&h).starts_with("text/plain"),
        "{:?}",
        content_type(&h)
    );
    let llms = llms.as_str().unwrap();
    assert!(llms.starts_with("# AMI"), "{}", &llms[..80.min(llms.len())]);
    for needle in ["/openapi.json", "Authorization: Bearer", "X-Telco-Key"] {
        assert!(llms.contains(needle), "llms.txt lacks {needle}");
    }
    for (method, path) in &routes {
        assert!(
            llms.contains(&format!("{method} {path}")),
            "llms.txt does not list {method} {path}"
        );
    }

    let (s, h, page) = send(server.http.get(format!("{}/docs", server.base))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        content_type(&h).starts_with("text/html"),
        "{:?}",
        content_type(&h)
    );
    let page = page.as_str().unwrap();
    assert!(page.contains("Quick start"), "no quick start in /docs");
    assert!(page.contains("/v1/sim-requests") && page.contains("/v1/mobile-identities/activate"));
    for (method, path) in &routes {
        let escaped = path.replace('&', "&amp;").replace('<', "&lt;");
        assert!(
            page.contains(&format!("{method} {escaped}")),
            "/docs does not list {method} {path}"
        );
    }

    for secret in secrets {
        assert!(!llms.contains(secret), "llms.txt names a credential");
        assert!(!page.contains(secret), "/docs names a credential");
    }
    for text in [llms, page] {
        assert!(
            !looks_like_key(text, "amik_live_", 48) && !looks_like_key(text, "amiagt_live_", 64),
            "a key-shaped value is published"
        );
    }
    server.stop().await;
}

/// True when `text` holds `prefix` followed by `hex_len` hex digits: a real credential.
fn looks_like_key(text: &str, prefix: &str, hex_len: usize) -> bool {
    text.match_indices(prefix).any(|(i, _)| {
        let rest = &text.as_bytes()[i + prefix.len()..];
        rest.len() >= hex_len && rest[..hex_len].iter().all(u8::is_ascii_hexdigit)
    })
}

#[tokio::test]
async fn errors_from_every_layer_share_the_envelope() {
    // A compact tour: auth (401), handler (404), extractor (400), router (404/405), all §2.
    let server = TestServer::start(engines()[0]).await;
    let (_, key) = server.customer("Envelope").await;
    let cases: Vec<(reqwest::RequestBuilder, (u16, &str))> = vec![
        (
            server
                .http
                .get(format!("{}/v1/mobile-identities", server.base)),
            (401, "unauthorized"),
        ),
        (
            server
                .http
                .get(format!("{}/v1/admin/customers", server.base))
                .bearer_auth(&key),
            (401, "unauthorized_admin"),
        ),
        (
            server
                .http
                .get(format!("{}/v1/offers/offer_x", server.base))
                .bearer_auth(&key),
            (404, "offer_not_found"),
        ),
        (
            server
                .http
                .get(format!("{}/v1/mobile-identities?limit=abc", server.base))
                .bearer_auth(&key),
            (400, "invalid_limit"),
        ),
        (
            server
                .http
                .get(format!("{}/v1/mobile-identities?sort=asc", server.base))
                .bearer_auth(&key),
            (400, "unknown_parameter"),
        ),
        (
            // A struct is never read from an array, even one whose items would fill it.
            server
                .http
                .post(format!("{}/v1/sim-requests", server.base))
                .bearer_auth(&key)
                .json(&json!(["ES", "eSIM"])),
            (400, "invalid_json"),
        ),
        (
            server
                .http
                .post(format!("{}/v1/sim-requests", server.base))
                .bearer_auth(&key)
                .json(&json!({"country": "ZZ"})),
            (400, "unsupported_country"),
        ),
    ];
    for (req, want) in cases {
        let (s, h, b) = send(req).await;
        assert_json_error(want.1, s, &h, &b, want);
    }
    server.stop().await;
}
