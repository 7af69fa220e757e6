//! OpenTelemetry traces (issue 24, observability): with `otlp_endpoint` set, the real binary
//! exports the spans of the requests it served over OTLP/HTTP (protobuf) to a collector,
//! here a small in-test receiver that keeps every POST to `/v1/traces`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{AmiProcess, Remote};

/// What the collector received: each POST's content type and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(r): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    r.lock().unwrap().push((kind, body.to_vec()));
                    StatusCode::OK
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_served_request_is_exported_as_a_span() {
    let (endpoint, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/ami.db", dir.path().display());
    let mut ami = AmiProcess::spawn(&database_url, &[("AMI_OTLP_ENDPOINT", &endpoint)], &[]);
    let api = Remote::new(&ami.ready().await);
    let (account, key) = api.customer("Traced").await;
    let (status, v) = api.get("/v1/sim-options", &key).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{v}");
    // A stop sends what is still buffered.
    let (exit, log) = ami.terminate().await;
    assert!(exit.success(), "{exit:?}\n{log}");

    let posts = received.lock().unwrap().clone();
    assert!(!posts.is_empty(), "no export reached the collector:\n{log}");
    for (kind, _) in &posts {
        assert_eq!(kind, "application/x-protobuf");
    }
    // The request's span: its name, its route, its account and the service that made it;
    // never the credential.
    let all: Vec<u8> = posts.into_iter().flat_map(|(_, body)| body).collect();
    assert!(!contains(&all, &key), "a credential in an exported span");
    for expected in ["request", "/v1/sim-options", account.as_str(), "ami"] {
        assert!(contains(&all, expected), "{expected} in no exported span");
    }
}
