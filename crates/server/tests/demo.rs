//! The public demo (PROTOCOL §5) needs no credential, so it must not be able to hurt a
//! tenant: off unless the operator turns it on, a few runs per client address an hour, and
//! numbers from a pool of its own that it takes back after an hour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{TestServer, engines};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ONE_MAIN_NUMBER: &str = r#"[{country = "ES", from = "+34600000000", count = 1}]"#;
const ONE_DEMO_NUMBER: &str = r#"[{country = "ES", from = "+34600100000", count = 1}]"#;

async fn demo(server: &TestServer) -> (StatusCode, Value) {
    server
        .call(Method::POST, "/v1/demo/quick", None, Some(json!({})))
        .await
}

#[tokio::test]
async fn the_demo_is_off_unless_the_operator_turns_it_on() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (s, v) = demo(&server).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{engine:?} {v}");
        // Nothing was created for it.
        let mut conn = server.running.services.store.reader().await.unwrap();
        let accounts: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE id = 'cust_demo'")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!(accounts, 0, "{engine:?}");
        drop(conn);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_demo_runs_the_whole_flow_a_few_times_an_hour_per_address() {
    for engine in engines() {
        let server = TestServer::start_with(
            engine,
            &[
                ("AMI_DEMO_ENABLED", "true"),
                ("AMI_DEMO_PER_ADDRESS_PER_HOUR", "2"),
            ],
        )
        .await;
        for _ in 0..2 {
            let (s, v) = demo(&server).await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
            assert_eq!(v["ok"], true);
            assert_eq!(v["steps"].as_array().unwrap().len(), 6, "{v}");
            let mid = &v["mobile_identity"];
            assert_eq!(mid["status"], "active");
            let (s, me) = server
                .get("/v1/agent/self", mid["agent_token"].as_str().unwrap())
                .await;
            assert_eq!(s, StatusCode::OK, "{me}");
            assert_eq!(me["mobile_identity_id"], mid["id"], "{me}");
        }
        let res = server
            .http
            .post(format!("{}/v1/demo/quick", server.base))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{engine:?}");
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&wait), "{wait}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "demo_rate_limited", "{v}");
        // The next hour, the address may run it again.
        server.clock.0.fetch_add(3_600_000, Ordering::SeqCst);
        let (s, v) = demo(&server).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        server.stop().await;
    }
}

#[tokio::test]
async fn demos_never_take_a_tenants_number_and_give_theirs_back_after_an_hour() {
    for engine in engines() {
        let server = TestServer::start_with(
            engine,
            &[
                ("AMI_DEMO_ENABLED", "true"),
                ("AMI_SANDBOX_POOL", ONE_MAIN_NUMBER),
                ("AMI_DEMO_POOL", ONE_DEMO_NUMBER),
            ],
        )
        .await;
        // The real clock moves on while the test's stands still: the demo must judge its
        // MIDs' age by the server's clock alone.
        tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        let (s, first) = demo(&server).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {first}");
        assert_eq!(first["mobile_identity"]["phone_number"], "+34600100000");
        // The demo's pool is empty: the next demo is refused, not served from the tenants'.
        let (s, v) = demo(&server).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("no_number_available")),
            "{engine:?} {v}"
        );
        // A paying customer still gets the one number of the main inventory.
        let (_, key) = server.customer("Tenant").await;
        let flow = server.provision(&key).await;
        assert_eq!(flow.phone_number, "+34600000000", "{engine:?}");

        // An hour later the demo takes its number back for the next visitor.
        server
            .clock
            .0
            .fetch_add(3_600_000 + 1_000, Ordering::SeqCst);
        let (s, second) = demo(&server).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {second}");
        assert_eq!(second["mobile_identity"]["phone_number"], "+34600100000");
        let old_token = first["mobile_identity"]["agent_token"].as_str().unwrap();
        let (s, _) = server.get("/v1/agent/self", old_token).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{engine:?}: the old demo lives on"
        );
        // The tenant's number was never touched.
        let (s, me) = server.get("/v1/agent/self", &flow.agent_token).await;
        assert_eq!(
            (s, me["phone_number"].as_str()),
            (StatusCode::OK, Some("+34600000000"))
        );
        server.stop().await;
    }
}
