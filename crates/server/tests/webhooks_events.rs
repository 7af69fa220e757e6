//! Every webhook event (PROTOCOL §8) reaches a loopback receiver, caused by the real paths
//! that emit it, and every captured delivery verifies with code this project did not write
//! (Python's `standardwebhooks` for the Standard Webhooks scheme, Python's `hmac` for the
//! compatible `X-Ami-Signature` scheme) and with the shipped `ami webhook verify`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::receiver::{Captured, Receiver, Reply};
use common::verify::{cli_verdict, python_ready, python_verdict};
use common::{Hook, LOOPBACK, TestServer, engines, mid_webhooks, register_webhook};
use reqwest::StatusCode;
use serde_json::{Value, json};

const INBOUND_BODY: &str = "Your code is 731 — héllo";

/// Waits for a call to reach `status` (or `retry_count`), polling as the agent would.
async fn call_until(server: &TestServer, token: &str, id: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, call) = server.get(&format!("/v1/agent/calls/{id}"), token).await;
        if done(&call) {
            return;
        }
        assert!(Instant::now() < deadline, "call never got there: {call}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn place_call(server: &TestServer, token: &str, to: &str) -> (StatusCode, Value) {
    server
        .post(
            "/v1/agent/calls/place",
            token,
            json!({"to": to, "callback_sip_uri": "sip:agent@voice.example.com"}),
        )
        .await
}

/// Each event, with the MID webhook's count of it, once everything has been caused.
const EXPECTED: &[(&str, usize)] = &[
    ("sms.inbound", 1),
    ("sms.delivered", 1),
    ("sms.failed", 1),
    ("call.inbound", 1),
    // The inbound call and an outbound one.
    ("call.completed", 2),
    // One the network failed (after its retries), one the agent hung up before the answer.
    ("call.failed", 2),
    ("mid.suspended", 1),
    ("mid.resumed", 1),
    // An SMS and a call to a country the limits do not allow.
    ("limit.blocked", 2),
    ("webhook.test", 1),
];

#[tokio::test]
async fn every_event_is_delivered_signed_and_verifies_independently() {
    let independent = python_ready();
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let api = server.remote();
        let receiver = Receiver::start(Reply::ok()).await;
        let (account, key) = server.customer("Hooked").await;
        let flow = server.provision(&key).await;
        let token = flow.agent_token.clone();
        let mid = flow.mid.clone();
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{mid}/limits"),
                &key,
                json!({"rate_per_second": 100}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{mid}/inbound-config"),
                &key,
                json!({"inbound_sip_uri": "sip:agent@voice.example.com"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let on_mid = register_webhook(
            &api,
            &key,
            &mid_webhooks(&mid),
            &receiver.url("/mid"),
            json!(["*"]),
        )
        .await;
        let on_account = register_webhook(
            &api,
            &key,
            "/v1/account/webhooks",
            &receiver.url("/account"),
            json!(["sms.inbound", "mid.suspended"]),
        )
        .await;

        // sms.inbound
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{mid}/sandbox/inbound-sms"),
                &key,
                json!({"from": "+34611000001", "body": INBOUND_BODY}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // sms.delivered, sms.failed (the sandbox fails destinations ending 0001)
        for to in ["+34600123456", "+34600120001"] {
            let (s, v) = server
                .post(
                    "/v1/agent/sms/send",
                    &token,
                    json!({"to": to, "body": "outbound words"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        // call.inbound, then call.completed when the sandbox ends it
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{mid}/sandbox/inbound-call"),
                &key,
                json!({"from": "+34611000002"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // call.completed
        let (s, v) = place_call(&server, &token, "+34600123457").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // call.failed (cancelled): hung up before the answer
        let (s, v) = place_call(&server, &token, "+34600123458").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, v) = server
            .post(
                &format!("/v1/agent/calls/{}/hangup", v["id"].as_str().unwrap()),
                &token,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("cancelled")),
            "{v}"
        );
        // call.failed (failed): the network fails it, and its two retries (3 s, 15 s later)
        let (s, v) = place_call(&server, &token, "+34600120001").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let failing = v["id"].as_str().unwrap().to_owned();
        for (retry, wait_ms) in [(1, 3_000), (2, 15_000)] {
            call_until(&server, &token, &failing, |c| c["retry_count"] == retry).await;
            server
                .clock
                .0
                .fetch_add(wait_ms, std::sync::atomic::Ordering::SeqCst);
        }
        call_until(&server, &token, &failing, |c| c["status"] == "failed").await;
        // limit.blocked, for an SMS and for a call
        let (s, v) = server
            .post(
                "/v1/agent/sms/send",
                &token,
                json!({"to": "+573001234567", "body": "abroad"}),
            )
            .await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("country_not_allowed"))
        );
        let (s, v) = place_call(&server, &token, "+573001234567").await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("country_not_allowed"))
        );
        // mid.suspended, mid.resumed
        for action in ["suspend", "resume"] {
            let (s, v) = server
                .post(
                    &format!("/v1/mobile-identities/{mid}/{action}"),
                    &key,
                    json!({"reason": "webhook test"}),
                )
                .await;
            assert!(s.is_success(), "{action}: {v}");
        }
        // webhook.test
        let (s, v) = server
            .post(
                &format!("{}/{}/test", mid_webhooks(&mid), on_mid.id),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["event"].as_str()),
            (StatusCode::ACCEPTED, Some("webhook.test")),
            "{v}"
        );

        let total: usize = EXPECTED.iter().map(|(_, n)| n).sum();
        receiver
            .wait_until(30, "every event", |seen| {
                seen.iter().filter(|c| c.path == "/mid").count() >= total
                    && seen.iter().filter(|c| c.path == "/account").count() >= 2
            })
            .await;
        // Nothing more trickles in: each event once.
        server.network_quiet().await;
        server.deliveries_settled().await;
        let seen = receiver.requests();
        let mid_deliveries: Vec<&Captured> = seen.iter().filter(|c| c.path == "/mid").collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for c in &mid_deliveries {
            *counts.entry(c.event()).or_default() += 1;
        }
        let want: HashMap<String, usize> = EXPECTED
            .iter()
            .map(|(e, n)| ((*e).to_owned(), *n))
            .collect();
        assert_eq!(counts, want, "{engine:?}");
        let account_events: BTreeSet<String> = seen
            .iter()
            .filter(|c| c.path == "/account")
            .map(Captured::event)
            .collect();
        assert_eq!(
            account_events,
            ["mid.suspended", "sms.inbound"]
                .map(str::to_owned)
                .into_iter()
                .collect(),
            "{engine:?}: the account webhook hears its filter only"
        );

        check_payloads(engine, &seen, &mid, &account, &on_mid, &on_account);
        if independent {
            for c in &seen {
                let secret = if c.path == "/mid" {
                    &on_mid.secret
                } else {
                    &on_account.secret
                };
                let (ok, out) = python_verdict(secret, c, &[]);
                assert!(ok, "{engine:?} {}: {out}", c.event());
                assert!(
                    out.contains("standard-webhooks: OK") && out.contains("compat: OK"),
                    "{out}"
                );
            }
        }
        for c in &seen {
            let secret = if c.path == "/mid" {
                &on_mid.secret
            } else {
                &on_account.secret
            };
            let (ok, out) = cli_verdict(secret, c, None);
            assert!(ok, "{engine:?} ami webhook verify {}: {out}", c.event());
        }
        check_refusals(
            independent,
            &mid_deliveries[0].clone(),
            &on_mid,
            &on_account,
        );
        check_delivery_records(&server, &key, &mid, &on_mid, mid_deliveries.len()).await;

        // The audit log knows what was delivered, never what the payload said.
        let (s, events) = server.get("/v1/events?limit=1000", &key).await;
        assert_eq!(s, StatusCode::OK);
        let text = events.to_string();
        assert!(
            !text.contains("Your code") && !text.contains("héllo"),
            "{engine:?}: an SMS body in the audit log"
        );
        assert!(
            !text.contains(&on_mid.secret),
            "{engine:?}: a secret in the audit log"
        );
        let delivered = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "webhook_delivered")
            .count();
        assert_eq!(delivered, seen.len(), "{engine:?}");
        server.stop().await;
    }
}

/// The payload of every delivery: the §8 shape, the headers that go with it, the data.
fn check_payloads(
    engine: common::Engine,
    seen: &[Captured],
    mid: &str,
    account: &str,
    on_mid: &Hook,
    on_account: &Hook,
) {
    let mut sequences = BTreeSet::new();
    let mut by_event_id: HashMap<String, Value> = HashMap::new();
    for c in seen {
        let p = c.json();
        let keys: BTreeSet<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "event", "delivered_at", "mid", "sequence", "data"]),
            "{engine:?}: {p}"
        );
        // In the protocol's order: the id first, the data last.
        let raw = String::from_utf8(c.body.clone()).unwrap();
        assert!(
            raw.starts_with("{\"id\":\"evt_") && raw.contains(",\"data\":{"),
            "{raw}"
        );
        assert_eq!(p["mid"], mid, "{p}");
        assert_eq!(c.header("content-type"), Some("application/json"));
        assert_eq!(c.header("webhook-id"), p["id"].as_str(), "{p}");
        assert!(p["id"].as_str().unwrap().starts_with("evt_"), "{p}");
        let hook = if c.path == "/mid" { on_mid } else { on_account };
        assert_eq!(c.header("x-ami-webhook-id"), Some(hook.id.as_str()));
        assert_eq!(c.header("x-ami-timestamp"), c.header("webhook-timestamp"));
        assert!(
            c.header("x-ami-signature")
                .is_some_and(|s| s.starts_with("sha256="))
        );
        assert!(
            c.header("webhook-signature")
                .is_some_and(|s| s.starts_with("v1,"))
        );
        // The same event to two webhooks is the same message: same id, same sequence.
        if let Some(other) = by_event_id.insert(p["id"].as_str().unwrap().to_owned(), p.clone()) {
            assert_eq!(other, p, "{engine:?}: one event, two payloads");
            continue;
        }
        let event = p["event"].as_str().unwrap();
        let data = &p["data"];
        if event == "webhook.test" {
            assert_eq!(p["sequence"], 0);
            assert_eq!(data["webhook_id"], on_mid.id.as_str());
            continue;
        }
        assert!(
            sequences.insert(p["sequence"].as_i64().unwrap()),
            "{engine:?}: sequence repeated: {p}"
        );
        match event {
            "sms.inbound" => {
                assert_eq!(data["body"], INBOUND_BODY, "{p}");
                assert_eq!(data["direction"], "inbound");
            }
            "sms.delivered" | "sms.failed" => {
                assert!(data.get("body").is_none(), "{engine:?}: {p}");
                assert_eq!(data["status"], &event[4..], "{p}");
            }
            "call.inbound" => assert_eq!(data["direction"], "inbound"),
            "call.completed" => assert_eq!(data["status"], "completed", "{p}"),
            "call.failed" => assert!(
                ["failed", "cancelled"].contains(&data["status"].as_str().unwrap()),
                "{p}"
            ),
            "limit.blocked" => {
                assert_eq!(data["reason"], "country_not_allowed", "{p}");
                assert!(["sms", "call"].contains(&data["kind"].as_str().unwrap()));
                assert!(data["to"].as_str().unwrap().contains('*'), "{p}");
            }
            "mid.suspended" | "mid.resumed" => {
                assert_eq!(data["scope"], "mid", "{p}");
                assert_eq!(data["reason"], "webhook test");
            }
            other => panic!("unexpected event {other}"),
        }
    }
    // Per MID, the sequence counts the events heard: 1, 2, 3, ... without gaps here.
    let n = sequences.len() as i64;
    assert_eq!(sequences, (1..=n).collect(), "{engine:?} account {account}");
}

/// Both verifiers refuse what they must: another body, another secret, a stale clock.
fn check_refusals(independent: bool, good: &Captured, on_mid: &Hook, on_account: &Hook) {
    let mut tampered = good.clone();
    tampered.body.push(b' ');
    let (ok, out) = cli_verdict(&on_mid.secret, &tampered, None);
    assert!(!ok && out.contains("FAIL"), "{out}");
    let (ok, _) = cli_verdict(&on_account.secret, good, None);
    assert!(!ok, "another webhook's secret verified");
    let ts: u64 = good.header("x-ami-timestamp").unwrap().parse().unwrap();
    for (now, fine) in [(ts + 300, true), (ts + 301, false), (ts - 301, false)] {
        let (ok, out) = cli_verdict(&on_mid.secret, good, Some(now));
        assert_eq!(ok, fine, "--now {now}: {out}");
    }
    if independent {
        assert!(!python_verdict(&on_mid.secret, &tampered, &[]).0);
        assert!(!python_verdict(&on_account.secret, good, &[]).0);
        let late = (ts + 400).to_string();
        assert!(!python_verdict(&on_mid.secret, good, &["--now", &late]).0);
    }
}

/// What the customer sees: every delivery delivered at the first attempt, with its attempt.
async fn check_delivery_records(server: &TestServer, key: &str, mid: &str, hook: &Hook, n: usize) {
    let base = format!("{}/{}/deliveries", mid_webhooks(mid), hook.id);
    // The receiver has answered; the last answers may still be on their way to the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    let list = loop {
        let (s, list) = server.get(&format!("{base}?limit=200"), key).await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let all = list["deliveries"].as_array().unwrap();
        if all.len() == n && all.iter().all(|d| d["status"] == "delivered") {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "not all recorded delivered: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let deliveries = list["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), n, "{list}");
    for d in deliveries {
        assert_eq!(
            (d["status"].as_str(), d["attempt_count"].as_i64()),
            (Some("delivered"), Some(1)),
            "{d}"
        );
    }
    let (s, pending) = server.get(&format!("{base}?status=pending"), key).await;
    assert_eq!((s, pending["count"].as_u64()), (StatusCode::OK, Some(0)));
    let id = deliveries[0]["id"].as_str().unwrap();
    let (s, one) = server.get(&format!("{base}/{id}"), key).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["attempts"][0]["status_code"], 200, "{one}");
    assert_eq!(one["attempts"][0]["response_excerpt"], "answer\\n", "{one}");
    assert_eq!(one["payload"]["id"], one["event_id"], "{one}");
}
