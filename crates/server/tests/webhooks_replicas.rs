//! Two replicas on one PostgreSQL database deliver webhooks together and never the same
//! delivery twice: each claims due deliveries under a lease (`FOR UPDATE SKIP LOCKED`), so
//! a delivery another replica holds is passed over. PostgreSQL only: SQLite is one process.
//!
//! Each replica's clock stands still at its own start time, so the attempt time recorded
//! with a delivery tells which replica made the attempt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::receiver::{Receiver, Reply};
use common::{Engine, LOOPBACK, TestServer, mid_webhooks, register_webhook};
use reqwest::StatusCode;
use serde_json::json;

const EVENTS: usize = 24;

#[tokio::test]
async fn two_replicas_share_the_deliveries_and_never_send_one_twice() {
    if !std::env::var("AMI_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        common::require_postgres("webhook replicas");
        return;
    }
    // Two attempts at a time each, to a slow receiver: neither replica can take it all.
    let env = [LOOPBACK, ("AMI_WEBHOOK_CONCURRENCY", "2")];
    let a = TestServer::start_with(Engine::Postgres, &env).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = TestServer::start_on(Engine::Postgres, &a.database_url, &env).await;
    let (clock_a, clock_b) = (
        a.clock.0.load(Ordering::SeqCst),
        b.clock.0.load(Ordering::SeqCst),
    );
    assert_ne!(clock_a, clock_b);
    let receiver = Receiver::start(Reply::Slow(Duration::from_millis(150))).await;
    let (_, key) = a.customer("Shared").await;
    let flow = a.provision(&key).await;
    let hook = register_webhook(
        &a.remote(),
        &key,
        &mid_webhooks(&flow.mid),
        &receiver.url("/"),
        json!(["sms.inbound"]),
    )
    .await;
    for i in 0..EVENTS {
        let replica = if i % 2 == 0 { &a } else { &b };
        let (s, v) = replica
            .post(
                &format!("/v1/mobile-identities/{}/sandbox/inbound-sms", flow.mid),
                &key,
                json!({"from": "+34611000001", "body": format!("shared {i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    receiver
        .wait_until(30, "every event answered", |seen| {
            seen.iter().filter(|c| c.status == Some(200)).count() >= EVENTS
        })
        .await;
    a.deliveries_settled().await;

    // Each message once, and never two requests of one message at the same time.
    let seen = receiver.requests();
    let mut per_message: HashMap<String, usize> = HashMap::new();
    for c in &seen {
        *per_message
            .entry(c.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_message.len(), EVENTS, "{per_message:?}");
    assert!(
        per_message.values().all(|n| *n == 1),
        "a delivery was sent twice: {per_message:?}"
    );
    assert!(seen.iter().all(|c| c.status == Some(200)));

    // Both replicas delivered: the attempt times are the two frozen clocks.
    let path = format!(
        "{}/{}/deliveries?limit=200",
        mid_webhooks(&flow.mid),
        hook.id
    );
    // The receiver has answered; the last answers may still be on their way to the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let (s, list) = a.get(&path, &key).await;
        assert_eq!(s, StatusCode::OK);
        if list["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
        {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all recorded: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut by_replica: HashMap<&str, usize> = HashMap::new();
    for d in list["deliveries"].as_array().unwrap() {
        assert_eq!(
            (d["status"].as_str(), d["attempt_count"].as_i64()),
            (Some("delivered"), Some(1)),
            "{d}"
        );
        let at = ami_core::time::parse_rfc3339(d["last_attempt_at"].as_str().unwrap()).unwrap();
        let replica = match at {
            t if t == clock_a => "a",
            t if t == clock_b => "b",
            other => panic!("an attempt at {other}, neither replica's clock"),
        };
        *by_replica.entry(replica).or_default() += 1;
    }
    assert_eq!(by_replica.values().sum::<usize>(), EVENTS);
    assert!(
        by_replica.len() == 2,
        "one replica did all the work: {by_replica:?}"
    );
    b.stop_replica().await;
    a.stop().await;
}
