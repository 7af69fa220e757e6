//! When receivers misbehave (PROTOCOL §8 delivery rules): 410 disables the webhook, ten
//! failed deliveries in a row disable it too (audited `webhook_auto_disabled`), re-enabling
//! resumes what waited, 429/5xx are retried on the schedule and `Retry-After` is honoured
//! within its cap, a redirect is a failed attempt that is never followed, a hanging
//! receiver times out, and the guard judges the stored URL again at every attempt.
//!
//! The test servers' clock stands still unless a test moves it, so every retry below
//! happens exactly when the test says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::receiver::{Receiver, Reply};
use common::verify::{cli_verdict, python_ready, python_verdict};
use common::{Hook, LOOPBACK, TestServer, engines, mid_webhooks, register_webhook};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Polls `path` until `done` holds; panics after 15 s.
async fn until(server: &TestServer, key: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, v) = server.get(path, key).await;
        if s == StatusCode::OK && done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Pings a webhook; the new delivery's path.
async fn ping(server: &TestServer, key: &str, collection: &str, hook: &Hook) -> String {
    let (s, v) = server
        .post(&format!("{collection}/{}/test", hook.id), key, json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    format!(
        "{collection}/{}/deliveries/{}",
        hook.id,
        v["id"].as_str().unwrap()
    )
}

async fn webhook_of(server: &TestServer, key: &str, collection: &str, hook: &Hook) -> Value {
    let (_, list) = server.get(&format!("{collection}?limit=200"), key).await;
    list["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == hook.id.as_str())
        .cloned()
        .expect("the webhook is listed")
}

async fn audited(server: &TestServer, key: &str, action: &str) -> Vec<Value> {
    let (_, v) = server
        .get(&format!("/v1/events?action={action}&limit=1000"), key)
        .await;
    v["events"].as_array().unwrap().clone()
}

fn ms(rfc3339: &Value) -> i64 {
    ami_core::time::parse_rfc3339(rfc3339.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn gone_disables_parks_and_enabling_resumes() {
    for engine in engines() {
        let server = TestServer::start_with(
            engine,
            &[LOOPBACK, ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[60000]")],
        )
        .await;
        let receiver = Receiver::start(Reply::status(500)).await;
        let (_, key) = server.customer("Gone").await;
        let flow = server.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let hook = register_webhook(
            &server.remote(),
            &key,
            &collection,
            &receiver.url("/"),
            json!(["*"]),
        )
        .await;
        let deliveries = format!("{collection}/{}/deliveries", hook.id);
        let inbound = format!("/v1/mobile-identities/{}/sandbox/inbound-sms", flow.mid);
        let (s, _) = server
            .post(
                &inbound,
                &key,
                json!({"from": "+34611000001", "body": "one"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        // The first event fails with a 500 and waits for its retry a minute later.
        let list = until(&server, &key, &deliveries, |v| {
            v["deliveries"][0]["attempt_count"] == 1
        })
        .await;
        let waiting = list["deliveries"][0].clone();
        assert_eq!(waiting["status"], "pending", "{waiting}");
        let wait = ms(&waiting["next_attempt_at"]) - ms(&waiting["last_attempt_at"]);
        assert!(
            (48_000..=72_000).contains(&wait),
            "{engine:?}: a minute, ±20 % jitter: {waiting}"
        );

        // 410: the delivery fails for good and the webhook is disabled.
        receiver.set_reply(Reply::status(410));
        let gone = ping(&server, &key, &collection, &hook).await;
        let d = until(&server, &key, &gone, |v| v["status"] == "failed").await;
        assert_eq!(d["attempts"][0]["status_code"], 410, "{d}");
        let w = webhook_of(&server, &key, &collection, &hook).await;
        assert_eq!(
            (w["status"].as_str(), w["disabled_reason"].as_str()),
            (Some("disabled"), Some("gone")),
            "{engine:?} {w}"
        );
        let disabled = audited(&server, &key, "webhook_disabled").await;
        assert_eq!(disabled.len(), 1, "{disabled:?}");
        assert_eq!(disabled[0]["data"]["reason"], "gone");
        assert_eq!(disabled[0]["actor"]["type"], "system", "{disabled:?}");
        // What was waiting is parked: no next attempt while disabled.
        let (_, parked) = server
            .get(
                &format!("{deliveries}/{}", waiting["id"].as_str().unwrap()),
                &key,
            )
            .await;
        assert_eq!(
            (parked["status"].as_str(), &parked["next_attempt_at"]),
            (Some("pending"), &Value::Null),
            "{parked}"
        );

        // While disabled: no new deliveries, no ping, no redelivery.
        let (s, _) = server
            .post(
                &inbound,
                &key,
                json!({"from": "+34611000001", "body": "two"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (_, list) = server.get(&deliveries, &key).await;
        assert_eq!(
            list["count"], 2,
            "{engine:?}: an event for a disabled webhook: {list}"
        );
        let (s, v) = server
            .post(&format!("{collection}/{}/test", hook.id), &key, json!({}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("webhook_not_active"))
        );
        let (s, v) = server
            .post(&format!("{gone}/redeliver"), &key, json!({}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("webhook_not_active"))
        );

        // Enabled again: the parked delivery goes out at once, the failed one on request.
        receiver.set_reply(Reply::ok());
        let (s, w) = server
            .post(&format!("{collection}/{}/enable", hook.id), &key, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(
            (w["status"].as_str(), w["consecutive_failures"].as_i64()),
            (Some("active"), Some(0))
        );
        assert_eq!(audited(&server, &key, "webhook_enabled").await.len(), 1);
        until(
            &server,
            &key,
            &format!("{deliveries}/{}", waiting["id"].as_str().unwrap()),
            |v| v["status"] == "delivered",
        )
        .await;
        let (s, again) = server
            .post(&format!("{gone}/redeliver"), &key, json!({}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{again}");
        let original = gone.rsplit('/').next().unwrap();
        assert_eq!(again["redelivery_of"], original, "{again}");
        let (_, first) = server.get(&gone, &key).await;
        assert_eq!(again["event_id"], first["event_id"], "the same message");
        until(
            &server,
            &key,
            &format!("{deliveries}/{}", again["id"].as_str().unwrap()),
            |v| v["status"] == "delivered",
        )
        .await;
        let same_message: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|c| c.header("webhook-id") == first["event_id"].as_str())
            .collect();
        assert_eq!(same_message.len(), 2, "the 410 attempt and the redelivery");
        assert_eq!(same_message[0].body, same_message[1].body, "the same bytes");

        // A delivery still being attempted is not sent twice.
        receiver.set_reply(Reply::status(503));
        let busy = ping(&server, &key, &collection, &hook).await;
        until(&server, &key, &busy, |v| v["attempt_count"] == 1).await;
        let (s, v) = server
            .post(&format!("{busy}/redeliver"), &key, json!({}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("delivery_not_finished"))
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn ten_failed_deliveries_in_a_row_disable_the_webhook() {
    for engine in engines() {
        // One attempt per delivery: each failure is a failed delivery.
        let server =
            TestServer::start_with(engine, &[LOOPBACK, ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[]")])
                .await;
        let receiver = Receiver::start(Reply::status(500)).await;
        let (_, key) = server.customer("Flaky").await;
        let collection = "/v1/account/webhooks";
        let hook = register_webhook(
            &server.remote(),
            &key,
            collection,
            &receiver.url("/"),
            json!(["*"]),
        )
        .await;
        let fail = |n: usize| {
            let (server, key, hook) = (&server, key.clone(), hook.clone());
            async move {
                for _ in 0..n {
                    let d = ping(server, &key, collection, &hook).await;
                    until(server, &key, &d, |v| v["status"] == "failed").await;
                }
            }
        };
        fail(5).await;
        let w = webhook_of(&server, &key, collection, &hook).await;
        assert_eq!(w["consecutive_failures"], 5, "{engine:?} {w}");
        // A delivered one ends the run.
        receiver.set_reply(Reply::ok());
        let d = ping(&server, &key, collection, &hook).await;
        until(&server, &key, &d, |v| v["status"] == "delivered").await;
        assert_eq!(
            webhook_of(&server, &key, collection, &hook).await["consecutive_failures"],
            0
        );

        receiver.set_reply(Reply::status(500));
        fail(9).await;
        let w = webhook_of(&server, &key, collection, &hook).await;
        assert_eq!(
            (w["status"].as_str(), w["consecutive_failures"].as_i64()),
            (Some("active"), Some(9)),
            "{engine:?}: nine are not ten"
        );
        assert!(
            audited(&server, &key, "webhook_auto_disabled")
                .await
                .is_empty()
        );
        fail(1).await;
        let w = webhook_of(&server, &key, collection, &hook).await;
        assert_eq!(
            (w["status"].as_str(), w["disabled_reason"].as_str()),
            (Some("disabled"), Some("consecutive_failures")),
            "{engine:?} {w}"
        );
        let auto = audited(&server, &key, "webhook_auto_disabled").await;
        assert_eq!(auto.len(), 1, "{auto:?}");
        assert_eq!(auto[0]["entity_id"], hook.id.as_str());
        assert_eq!(auto[0]["data"]["reason"], "consecutive_failures");
        let failed = audited(&server, &key, "webhook_delivery_failed").await;
        assert_eq!(failed.len(), 15, "{engine:?}");
        let text = serde_json::to_string(&failed).unwrap();
        assert!(
            !text.contains("webhook.test\",\"delivered_at") && !text.contains("\"message\""),
            "payloads stay out of the audit log: {text}"
        );
        assert_eq!(audited(&server, &key, "webhook_delivered").await.len(), 1);

        let (s, w) = server
            .post(&format!("{collection}/{}/enable", hook.id), &key, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (w["status"].as_str(), w["consecutive_failures"].as_i64()),
            (Some("active"), Some(0))
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn retries_follow_the_schedule_and_honour_retry_after_within_its_cap() {
    let independent = python_ready();
    for engine in engines() {
        let server = TestServer::start_with(
            engine,
            &[
                LOOPBACK,
                ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[100, 100]"),
                ("AMI_WEBHOOK_RETRY_AFTER_CAP_MS", "3000"),
            ],
        )
        .await;
        let receiver =
            Receiver::start(Reply::Status(429, vec![("Retry-After".into(), "2".into())])).await;
        let (_, key) = server.customer("Busy").await;
        let flow = server.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let hook = register_webhook(
            &server.remote(),
            &key,
            &collection,
            &receiver.url("/"),
            json!(["*"]),
        )
        .await;

        // 429 with Retry-After: 2 s, longer than the schedule's 100 ms: 2 s it is.
        let d = ping(&server, &key, &collection, &hook).await;
        let first = until(&server, &key, &d, |v| v["attempt_count"] == 1).await;
        assert_eq!(first["attempts"][0]["status_code"], 429);
        assert_eq!(
            ms(&first["next_attempt_at"]) - ms(&first["last_attempt_at"]),
            2_000,
            "{engine:?} {first}"
        );
        receiver.set_reply(Reply::ok());
        server.clock.0.fetch_add(1_500, Ordering::SeqCst);
        server.webhook_worker_caught_up().await;
        let waiting = until(&server, &key, &d, |_| true).await;
        assert_eq!(
            (receiver.requests().len(), &waiting["attempt_count"]),
            (1, &json!(1)),
            "{engine:?}: retried too early: {waiting}"
        );
        server.clock.0.fetch_add(500, Ordering::SeqCst);
        let done = until(&server, &key, &d, |v| v["status"] == "delivered").await;
        assert_eq!(done["attempt_count"], 2);
        let seen = receiver.requests();
        assert_eq!(seen.len(), 2);
        // One message, two attempts, each signed for its own moment.
        assert_eq!(seen[0].header("webhook-id"), seen[1].header("webhook-id"));
        assert_eq!(seen[0].body, seen[1].body);
        let ts = |i: usize| -> u64 { seen[i].header("x-ami-timestamp").unwrap().parse().unwrap() };
        assert_eq!(ts(1), ts(0) + 2, "{engine:?}");
        assert_ne!(
            seen[0].header("webhook-signature"),
            seen[1].header("webhook-signature")
        );
        for c in &seen {
            assert!(cli_verdict(&hook.secret, c, Some(ts(1))).0);
            if independent {
                let (ok, out) = python_verdict(&hook.secret, c, &[]);
                assert!(ok, "{out}");
            }
        }

        // An absurd Retry-After is capped (3 s here).
        receiver.set_reply(Reply::Status(
            503,
            vec![("Retry-After".into(), "86400".into())],
        ));
        let d = ping(&server, &key, &collection, &hook).await;
        let v = until(&server, &key, &d, |v| v["attempt_count"] == 1).await;
        assert_eq!(
            ms(&v["next_attempt_at"]) - ms(&v["last_attempt_at"]),
            3_000,
            "{engine:?} {v}"
        );
        // Without one, the schedule's 100 ms, ±20 % jitter.
        receiver.set_reply(Reply::status(503));
        let d = ping(&server, &key, &collection, &hook).await;
        let v = until(&server, &key, &d, |v| v["attempt_count"] == 1).await;
        let wait = ms(&v["next_attempt_at"]) - ms(&v["last_attempt_at"]);
        assert!((80..=120).contains(&wait), "{engine:?}: {wait} ms");
        server.stop().await;
    }
}

#[tokio::test]
async fn redirects_fail_unfollowed_and_hanging_receivers_time_out() {
    for engine in engines() {
        let server = TestServer::start_with(
            engine,
            &[
                LOOPBACK,
                ("AMI_WEBHOOK_TIMEOUT_MS", "500"),
                ("AMI_WEBHOOK_CONNECT_TIMEOUT_MS", "200"),
                ("AMI_WEBHOOK_LEASE_MS", "5000"),
            ],
        )
        .await;
        let target = Receiver::start(Reply::ok()).await;
        let redirecting = Receiver::start(Reply::Status(
            302,
            vec![("Location".into(), target.url("/stolen"))],
        ))
        .await;
        let hanging = Receiver::start(Reply::Hang).await;
        let (_, key) = server.customer("Tricky").await;
        let flow = server.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let api = server.remote();

        let hook =
            register_webhook(&api, &key, &collection, &redirecting.url("/"), json!(["*"])).await;
        let d = ping(&server, &key, &collection, &hook).await;
        let v = until(&server, &key, &d, |v| v["attempt_count"] == 1).await;
        let attempt = &v["attempts"][0];
        assert_eq!(
            (
                attempt["status_code"].as_i64(),
                attempt["error_kind"].as_str()
            ),
            (Some(302), Some("redirect")),
            "{engine:?} {v}"
        );
        assert_eq!(
            v["status"], "pending",
            "a redirect is retried, not delivered"
        );
        // The attempt is over: had it followed the redirect, the target would have been
        // reached before it was recorded.
        assert_eq!(
            target.accepted(),
            0,
            "{engine:?}: the redirect was followed"
        );

        let hook = register_webhook(&api, &key, &collection, &hanging.url("/"), json!(["*"])).await;
        let started = Instant::now();
        let d = ping(&server, &key, &collection, &hook).await;
        let v = until(&server, &key, &d, |v| v["attempt_count"] == 1).await;
        let attempt = &v["attempts"][0];
        assert_eq!(attempt["error_kind"], "timeout", "{engine:?} {v}");
        assert!(attempt["status_code"].is_null());
        let latency = attempt["latency_ms"].as_i64().unwrap();
        assert!((450..3_000).contains(&latency), "{latency} ms");
        assert!(started.elapsed() < Duration::from_secs(5));
        server.stop().await;
    }
}

/// The URL stored at registration is judged again at every attempt: a replica whose guard
/// no longer allows it (no allowlist here) records a refused attempt and never connects,
/// whatever spelling of loopback the store holds.
#[tokio::test]
async fn a_stored_url_the_guard_now_refuses_fails_without_a_connection() {
    for engine in engines() {
        // The API replica allowed loopback when the webhook was registered; the replica that
        // delivers does not.
        let api =
            TestServer::start_with(engine, &[LOOPBACK, ("AMI_DISPATCH_ENABLED", "false")]).await;
        let worker = TestServer::start_on(engine, &api.database_url, &[]).await;
        let receiver = Receiver::start(Reply::ok()).await;
        let (_, key) = api.customer("Rebound").await;
        let flow = api.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let hook = register_webhook(
            &api.remote(),
            &key,
            &collection,
            &receiver.url("/x"),
            json!(["*"]),
        )
        .await;
        let p = receiver.port();
        let planted = [
            None,
            Some(format!("http://2130706433:{p}/x")),
            Some(format!("http://0x7f.1:{p}/x")),
            Some(format!("http://127.1:{p}/x")),
            Some(format!("http://[::ffff:127.0.0.1]:{p}/x")),
            Some(format!("http://0:{p}/x")),
            Some(format!("http://localhost:{p}/x")),
        ];
        for url in planted {
            if let Some(url) = &url {
                let mut tx = api.running.services.store.begin().await.unwrap();
                sqlx::query("UPDATE webhooks SET url = $1 WHERE id = $2")
                    .bind(url)
                    .bind(&hook.id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
            let d = ping(&api, &key, &collection, &hook).await;
            let v = until(&api, &key, &d, |v| v["attempt_count"] == 1).await;
            let attempt = &v["attempts"][0];
            assert_eq!(attempt["error_kind"], "refused", "{engine:?} {url:?}: {v}");
            let error = attempt["error"].as_str().unwrap();
            assert!(
                error.starts_with("refused: blocked_"),
                "{engine:?} {url:?}: {error}"
            );
            assert!(attempt["status_code"].is_null());
        }
        // Every attempt is recorded: a connection would have come before.
        assert_eq!(
            receiver.accepted(),
            0,
            "{engine:?}: a refused URL was connected to"
        );
        worker.stop_replica().await;
        api.stop().await;
    }
}
