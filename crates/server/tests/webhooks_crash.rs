//! Durable webhook deliveries (PROTOCOL §8: "a queued event is never lost"): a real `ami
//! serve` process is killed by SIGKILL while some deliveries are in flight (the receiver is
//! holding their requests) and others wait their turn; the next process on the same
//! database delivers every event at least once, and an event delivered twice carries the
//! same `webhook-id` both times, so the receiver can drop the duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use common::receiver::{Captured, Receiver, Reply};
use common::{
    AmiProcess, Engine, LOOPBACK, Remote, drop_pg_database, engines, fresh_pg_database,
    mid_webhooks, register_webhook,
};
use reqwest::StatusCode;
use serde_json::json;

const EVENTS: usize = 6;

/// Short enough for a test to wait out, longer than an attempt may take.
const SETTINGS: [(&str, &str); 3] = [
    ("AMI_WEBHOOK_TIMEOUT_MS", "4000"),
    ("AMI_WEBHOOK_CONNECT_TIMEOUT_MS", "1000"),
    ("AMI_WEBHOOK_LEASE_MS", "5000"),
];

/// The SMS id each delivery is about.
fn message_of(c: &Captured) -> String {
    c.json()["data"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn deliveries_survive_a_sigkill_in_flight_and_pending() {
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };
        let receiver = Receiver::start(Reply::Hang).await;

        // 1. Two deliveries at a time: the receiver holds both, the rest wait in the store.
        let mut env = vec![LOOPBACK, ("AMI_WEBHOOK_CONCURRENCY", "2")];
        env.extend(SETTINGS);
        let mut first = AmiProcess::spawn(&database_url, &env, &[]);
        let api = Remote::new(&first.ready().await);
        let (_, key) = api.customer("Crash").await;
        let flow = api.provision(&key).await;
        let hook = register_webhook(
            &api,
            &key,
            &mid_webhooks(&flow.mid),
            &receiver.url("/"),
            json!(["sms.inbound"]),
        )
        .await;
        let mut messages = Vec::new();
        for i in 0..EVENTS {
            let (s, sms) = api
                .post(
                    &format!("/v1/mobile-identities/{}/sandbox/inbound-sms", flow.mid),
                    &key,
                    json!({"from": "+34611000001", "body": format!("crash {i}")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
            messages.push(sms["id"].as_str().unwrap().to_owned());
        }
        receiver
            .wait_until(10, "two deliveries in flight", |seen| seen.len() >= 2)
            .await;
        let log = first.stderr();
        let status = first.kill_hard();
        assert_eq!(
            status.signal(),
            Some(9),
            "not a SIGKILL death: {status:?}\n{log}"
        );
        let before = receiver.requests();
        assert!(
            before.iter().all(|c| c.status.is_none()),
            "{engine:?}: the receiver answered before the kill"
        );
        assert!(
            (1..EVENTS).contains(&before.len()),
            "{engine:?}: {} in flight at the kill, the rest still waiting",
            before.len()
        );

        // 2. A new process on the same database, and a receiver that answers now.
        receiver.set_reply(Reply::ok());
        let mut env = vec![LOOPBACK];
        env.extend(SETTINGS);
        let mut second = AmiProcess::spawn(&database_url, &env, &[]);
        let api = Remote::new(&second.ready().await);
        // The leases of the killed process run out (5 s), then everything goes.
        receiver
            .wait_until(30, "every event delivered", |seen| {
                let answered: HashSet<String> = seen
                    .iter()
                    .filter(|c| c.status == Some(200))
                    .map(message_of)
                    .collect();
                answered.len() == EVENTS
            })
            .await;
        let seen = receiver.requests();
        let delivered: HashSet<String> = seen
            .iter()
            .filter(|c| c.status == Some(200))
            .map(message_of)
            .collect();
        assert_eq!(
            delivered,
            messages.iter().cloned().collect::<HashSet<_>>(),
            "{engine:?}: none lost, none invented"
        );
        // One message id per event, whichever process sent it.
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        for c in &seen {
            ids.entry(message_of(c))
                .or_default()
                .insert(c.header("webhook-id").unwrap().to_owned());
            assert_eq!(c.header("x-ami-webhook-id"), Some(hook.id.as_str()));
        }
        for (message, webhook_ids) in &ids {
            assert_eq!(
                webhook_ids.len(),
                1,
                "{engine:?} {message}: {webhook_ids:?}"
            );
        }
        for c in &before {
            let again = seen
                .iter()
                .filter(|d| d.status == Some(200) && message_of(d) == message_of(c))
                .count();
            assert!(again >= 1, "{engine:?}: an in-flight delivery was lost");
        }

        // The records agree, once the last answers are recorded: every delivery delivered.
        let path = format!(
            "{}/{}/deliveries?limit=200",
            mid_webhooks(&flow.mid),
            hook.id
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (s, list) = api.get(&path, &key).await;
            assert_eq!(s, StatusCode::OK, "{list}");
            let deliveries = list["deliveries"].as_array().unwrap();
            assert_eq!(deliveries.len(), EVENTS, "{engine:?} {list}");
            if deliveries.iter().all(|d| d["status"] == "delivered") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{engine:?}: not all recorded delivered: {list}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, log) = second.terminate().await;
        assert!(status.success(), "{status:?}\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        if engine == Engine::Postgres {
            drop_pg_database(&database_url).await;
        }
    }
}
