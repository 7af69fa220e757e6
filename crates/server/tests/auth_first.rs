//! Authentication before anything else: a request whose credential fails at its route's level
//! is answered from its headers alone. It reads no body (so a thousand made-up uploads cost no
//! memory) and writes nothing (no idempotency key, no WAL growth), whatever its
//! `Idempotency-Key`. Every documented route's level is the one its path gives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ami_server::http::auth::{Level, METRICS_ROUTE, PUBLIC_ROUTES, route_level};
use common::{ADMIN_KEY, AmiProcess, Engine, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TELCO_KEY: &str = "test-telco-key-0123456789";

/// A route of each level, and a credential that fails there (with how it travels).
fn refused_routes(customer_key: &str) -> Vec<(&'static str, (&'static str, String), &'static str)> {
    vec![
        (
            "/v1/sim-requests",
            bearer(&ami_core::secret::new_customer_key()),
            "unauthorized",
        ),
        (
            "/v1/agent/sms/send",
            bearer(&ami_core::secret::new_agent_token()),
            "invalid_agent_token",
        ),
        // A credential that is valid, at another level.
        (
            "/v1/agent/sms/send",
            bearer(customer_key),
            "invalid_agent_token",
        ),
        (
            "/v1/admin/customers",
            bearer(&format!("{ADMIN_KEY}-not")),
            "unauthorized_admin",
        ),
        (
            "/v1/admin/customers",
            bearer(customer_key),
            "unauthorized_admin",
        ),
        (
            "/v1/_telco/sms/inbound",
            ("x-telco-key", format!("{TELCO_KEY}-not")),
            "invalid_telco_key",
        ),
    ]
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

async fn idempotency_rows(server: &TestServer) -> i64 {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn data_version(conn: &mut sqlx::AnyConnection) -> i64 {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Copies the whole WAL into the database file, so that the background checkpointer has
/// nothing left to write there: the setup's pages would otherwise grow the file mid-flood.
async fn checkpoint(conn: &mut sqlx::AnyConnection) {
    let (busy, frames, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(FULL)")
        .fetch_one(conn)
        .await
        .unwrap();
    assert_eq!(
        (busy, frames),
        (0, copied),
        "the checkpoint did not complete"
    );
}

/// The sizes of the SQLite file and its WAL.
fn file_sizes(server: &TestServer) -> (u64, u64) {
    let size = |name: &str| {
        std::fs::metadata(server.dir().join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    (size("ami.db"), size("ami.db-wal"))
}

#[tokio::test]
async fn an_idempotency_flood_with_failing_credentials_writes_nothing() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY)]).await;
        let (_, customer_key) = server.customer("Flooded").await;
        let routes = refused_routes(&customer_key);
        // A connection of our own: SQLite's data_version on it moves when any other
        // connection commits.
        let mut watcher = server.running.services.store.reader().await.unwrap();
        let rows = idempotency_rows(&server).await;
        let events = server.event_count().await;
        if engine == Engine::Sqlite {
            checkpoint(&mut watcher).await;
        }
        let before = (engine == Engine::Sqlite).then(|| file_sizes(&server));
        let version_before = match engine {
            Engine::Sqlite => Some(data_version(&mut watcher).await),
            Engine::Postgres => None,
        };

        let mut tasks = tokio::task::JoinSet::new();
        let sent = Arc::new(AtomicUsize::new(0));
        for (r, (path, (header, value), code)) in routes.into_iter().enumerate() {
            let http = server.http.clone();
            let url = format!("{}{path}", server.base);
            let sent = sent.clone();
            tasks.spawn(async move {
                for i in 0..100 {
                    let res = http
                        .post(&url)
                        .header(header, &value)
                        .header("idempotency-key", format!("flood-{r}-{i}"))
                        .header("content-type", "application/json")
                        .body(json!({"country": "ES", "n": i}).to_string())
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(
                        (status, body["error"].as_str()),
                        (StatusCode::UNAUTHORIZED, Some(code)),
                        "{url}"
                    );
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(sent.load(Ordering::SeqCst), 600);

        assert_eq!(idempotency_rows(&server).await, rows, "{engine:?}");
        assert_eq!(server.event_count().await, events, "{engine:?}");
        if let Some(before) = before {
            assert_eq!(file_sizes(&server), before, "{engine:?}: the files grew");
            assert_eq!(
                Some(data_version(&mut watcher).await),
                version_before,
                "{engine:?}: something was committed"
            );
        }
        drop(watcher);
        server.stop().await;
    }
}

/// Sends a request head announcing `length` body bytes, and no body.
async fn head_only(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    length: usize,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads one response (head and `Content-Length` body): its status and JSON body.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())?;
            if buf.len() >= end + 4 + length {
                let body = serde_json::from_slice(&buf[end + 4..end + 4 + length]).ok()?;
                return Some((status, body));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_failing_credential_is_answered_without_its_body() {
    let engine = engines()[0];
    let server = TestServer::start_with(engine, &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY)]).await;
    let (_, customer_key) = server.customer("Headers").await;
    let addr = server.running.addr;
    for (path, credential, code) in refused_routes(&customer_key) {
        for with_key in [false, true] {
            let mut headers = vec![credential.clone()];
            if with_key {
                headers.push(("idempotency-key", "never-sent-body".to_owned()));
            }
            // A megabyte announced and never sent: waiting for it would end in the
            // request timeout's 408, not in the credential's 401.
            let mut stream = head_only(addr, path, &headers, 1 << 20).await;
            let answer = read_response(&mut stream).await;
            let (status, body) =
                answer.unwrap_or_else(|| panic!("{path}: no answer without the body"));
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some(code)),
                "{path} key={with_key}: {body}"
            );
        }
    }
    assert_eq!(idempotency_rows(&server).await, 0);
    server.stop().await;

    // Without a telco key configured, the telco routes refuse the same way: 503.
    let server = TestServer::start(engine).await;
    let mut stream = head_only(
        server.running.addr,
        "/v1/_telco/sms/inbound",
        &[
            ("x-telco-key", TELCO_KEY.to_owned()),
            ("idempotency-key", "k".to_owned()),
        ],
        1 << 20,
    )
    .await;
    let (status, body) = read_response(&mut stream)
        .await
        .expect("an answer without the body");
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("telco_inbound_disabled"))
    );
    server.stop().await;
}

/// `/mcp` serves discovery without a credential, so it bounds what it reads before one holds:
/// a made-up credential is refused before the body, and a body without one must declare a
/// small length.
#[tokio::test]
async fn mcp_reads_no_large_body_before_a_credential_holds() {
    let engine = engines()[0];
    let server = TestServer::start(engine).await;
    let addr = server.running.addr;
    let cases = [
        (
            vec![bearer(
                "amik_live_000000000000000000000000000000000000000000000000",
            )],
            401,
            "unauthorized",
        ),
        (vec![bearer("amiagt_live_made-up")], 401, "unauthorized"),
        (vec![], 413, "payload_too_large"),
    ];
    for (headers, status, code) in cases {
        let mut stream = head_only(addr, "/mcp", &headers, 1 << 20).await;
        let answer = read_response(&mut stream).await;
        let (s, body) = answer.unwrap_or_else(|| panic!("{headers:?}: no answer without the body"));
        assert_eq!((s, body["error"].as_str()), (status, Some(code)), "{body}");
    }
    // A discovery message without a credential is served.
    let res = server
        .http
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
    assert!(
        body["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    server.stop().await;
}

/// `VmRSS` and `VmHWM` (peak) of a process, in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_thousand_made_up_uploads_cost_no_memory() {
    const UPLOADS: usize = 1000;
    const BODY: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ami.db", dir.path().display());
    let mut ami = AmiProcess::spawn(&url, &[], &[]);
    let base = ami.ready().await;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let pid = ami.child.id();
    let (rss_before, _) = memory_kb(pid);

    // Each upload announces a megabyte with a made-up key and sends all of it but the last
    // byte, then holds the connection: a server that buffered bodies before checking the
    // credential would hold nearly a megabyte per upload until its request timeout.
    let body: Arc<Vec<u8>> = Arc::new(vec![b' '; BODY - 1]);
    let written = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..UPLOADS {
        let (body, written, release) = (body.clone(), written.clone(), release.clone());
        uploads.spawn(async move {
            let headers = [
                (
                    "authorization",
                    format!("Bearer {}", ami_core::secret::new_customer_key()),
                ),
                ("idempotency-key", format!("upload-{i}")),
            ];
            let mut stream = head_only(addr, "/v1/sim-requests", &headers, BODY).await;
            let write = tokio::time::timeout(Duration::from_secs(30), stream.write_all(&body));
            let _ = write.await;
            let released = release.notified();
            written.fetch_add(1, Ordering::SeqCst);
            released.await;
            drop(stream);
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while written.load(Ordering::SeqCst) < UPLOADS {
        assert!(
            Instant::now() < deadline,
            "the uploads never finished writing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, peak) = memory_kb(pid);
    release.notify_waiters();
    while let Some(done) = uploads.join_next().await {
        done.unwrap();
    }
    let grown_mb = peak.saturating_sub(rss_before) / 1024;
    // Buffering would take up to UPLOADS × BODY (1000 MB); an eighth of that is still far
    // above what a thousand connections cost without their bodies.
    assert!(
        grown_mb < (UPLOADS * BODY / 8 / (1 << 20)) as u64,
        "the server grew by {grown_mb} MB during {UPLOADS} made-up uploads"
    );
    // And it still serves.
    let res = reqwest::get(format!("{base}/v1/health")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = ami.terminate().await;
    assert!(status.success());
}

/// Every documented operation is secured by the scheme of the level its path gives, and only
/// the listed public routes take no credential: the authentication layer and the document
/// describe the same router. A route whose credential is optional in the document (an empty
/// requirement beside `adminKey`) is public or the operator's as `metrics_public` says.
#[test]
fn every_documented_route_has_the_level_its_path_gives() {
    let (_, api) = ami_server::app::api();
    let doc = serde_json::to_value(&api).unwrap();
    let mut public = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let requirements: Vec<&serde_json::Map<String, Value>> = op["security"]
                .as_array()
                .map(|reqs| reqs.iter().filter_map(Value::as_object).collect())
                .unwrap_or_default();
            let optional = requirements.iter().any(|r| r.is_empty());
            let schemes: Vec<&str> = requirements
                .iter()
                .flat_map(|r| r.keys().map(String::as_str))
                .collect();
            // The level with `metrics_public` true, then false.
            let documented = match (schemes.as_slice(), optional) {
                ([], _) => (Level::Public, Level::Public),
                (["bearerAuth"], false) => (Level::Customer, Level::Customer),
                (["agentBearer"], false) => (Level::Agent, Level::Agent),
                (["adminKey"], false) => (Level::Admin, Level::Admin),
                (["adminKey"], true) => (Level::Public, Level::Admin),
                (["telcoKey"], false) => (Level::Telco, Level::Telco),
                other => panic!("{method} {path}: unexpected security {other:?}"),
            };
            assert_eq!(
                (route_level(path, true), route_level(path, false)),
                documented,
                "{method} {path}"
            );
            if documented == (Level::Public, Level::Public) {
                public.push(path.clone());
            }
        }
    }
    public.sort();
    public.dedup();
    let mut listed: Vec<String> = PUBLIC_ROUTES
        .iter()
        .filter(|p| **p != ami_mcp::MCP_PATH)
        .map(|p| (*p).to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        public, listed,
        "public routes and the documented ones differ"
    );
    // A route nobody listed needs a credential.
    assert_eq!(route_level("/v1/something-new", true), Level::Customer);
    assert_eq!(route_level(ami_mcp::MCP_PATH, false), Level::Public);
    let metrics = &doc["paths"][METRICS_ROUTE]["get"];
    assert!(metrics.is_object(), "{METRICS_ROUTE} is not documented");
    assert_eq!(
        (
            route_level(METRICS_ROUTE, true),
            route_level(METRICS_ROUTE, false)
        ),
        (Level::Public, Level::Admin)
    );
}
