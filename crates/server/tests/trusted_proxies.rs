//! Per-address limits count the client behind a trusted reverse proxy, and only there:
//! `X-Forwarded-For` from a peer outside `trusted_proxies` changes nothing, so a client
//! cannot escape the demo's per-address limit by naming another address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, engines};
use reqwest::StatusCode;
use serde_json::json;

async fn demo_from(server: &TestServer, forwarded_for: &str) -> StatusCode {
    server
        .http
        .post(format!("{}/v1/demo/quick", server.base))
        .header("X-Forwarded-For", forwarded_for)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    for engine in engines() {
        let demo = [
            ("AMI_DEMO_ENABLED", "true"),
            ("AMI_DEMO_PER_ADDRESS_PER_HOUR", "1"),
        ];
        // The test client is 127.0.0.1: here a trusted proxy.
        let mut env = demo.to_vec();
        env.push(("AMI_TRUSTED_PROXIES", "127.0.0.1/32, ::1"));
        let server = TestServer::start_with(engine, &env).await;
        assert_eq!(demo_from(&server, "203.0.113.1").await, StatusCode::CREATED);
        assert_eq!(demo_from(&server, "203.0.113.2").await, StatusCode::CREATED);
        assert_eq!(
            demo_from(&server, "203.0.113.1").await,
            StatusCode::TOO_MANY_REQUESTS,
            "{engine:?}: the same client behind the proxy"
        );
        // A forged entry in front of the proxy's own is not the client.
        assert_eq!(
            demo_from(&server, "198.51.100.9, 203.0.113.2").await,
            StatusCode::TOO_MANY_REQUESTS,
            "{engine:?}"
        );
        server.stop().await;

        // No trusted proxy: the header is ignored, the peer is the client.
        let server = TestServer::start_with(engine, &demo).await;
        assert_eq!(demo_from(&server, "203.0.113.1").await, StatusCode::CREATED);
        assert_eq!(
            demo_from(&server, "203.0.113.2").await,
            StatusCode::TOO_MANY_REQUESTS,
            "{engine:?}: an untrusted peer named another address"
        );
        server.stop().await;
    }
}
