//! `POST /v1/agent/policy/check` against the send itself, on every engine: for random
//! limits, counters, destinations, channels and kill-switches, the check made at an instant
//! answers exactly what the send (or call) made at the same instant answers (the same
//! status and the same body), and the check itself changes no counter. Also: input errors
//! are the send's own, `max_price_eur` is refused `422 over_max_price` by both and is free,
//! and every check is audited.
//!
//! Time is the harness's test clock (the server reads it; it does not move by itself), so
//! "the same instant" is exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{Flow, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A deterministic generator (SplitMix64): a failing case is replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Destinations: three Spanish mobiles and a French one (outside some allowlists).
const DESTINATIONS: [&str; 4] = [
    "+34611015678",
    "+34611025678",
    "+34611035678",
    "+33612345678",
];

fn random_limits(rng: &mut Rng) -> Value {
    let small = |rng: &mut Rng| rng.below(6) as i64;
    json!({
        "rate_per_second": *rng.pick(&[0.5, 1.0, 2.0, 1000.0]),
        "sms_per_hour": small(rng) + 1,
        "sms_per_day": small(rng) + 2,
        "calls_per_hour": small(rng),
        "calls_per_day": small(rng) + 1,
        "sms_per_destination_per_hour": small(rng),
        "sms_per_destination_per_day": small(rng) + 1,
        "calls_per_destination_per_hour": small(rng) + 1,
        "calls_per_destination_per_day": small(rng) + 1,
        "monthly_budget_eur": *rng.pick(&[0.0, 0.05, 0.1, 0.3, 1.0, 100.0]),
        "allowed_country_prefixes": if rng.below(4) == 0 { json!(["+34", "+33"]) } else { json!(["+34"]) },
    })
}

/// A text of one to three segments, GSM-7 or UCS-2.
fn random_body(rng: &mut Rng) -> String {
    let n = *rng.pick(&[10usize, 160, 161, 320]);
    if rng.below(2) == 0 {
        "a".repeat(n)
    } else {
        "á".repeat(n / 2)
    }
}

async fn send_or_place(
    server: &TestServer,
    flow: &Flow,
    channel: &str,
    to: &str,
    body: &str,
) -> (StatusCode, Value) {
    if channel == "sms" {
        server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": to, "body": body}),
            )
            .await
    } else {
        server
            .post(
                "/v1/agent/calls/place",
                &flow.agent_token,
                json!({"to": to, "callback_sip_uri": "sip:agent@voice.example.com"}),
            )
            .await
    }
}

async fn check(server: &TestServer, flow: &Flow, input: Value) -> Value {
    let (s, v) = server
        .post("/v1/agent/policy/check", &flow.agent_token, input)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn a_check_and_a_send_at_the_same_instant_agree() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Policy").await;
        let mids = [server.provision(&key).await, server.provision(&key).await];
        let mut rng = Rng(0x5eed_0022);
        let (mut allowed, mut refused) = (0, 0);
        for case in 0..40 {
            let flow = rng.pick(&mids).clone();
            if rng.below(3) == 0 {
                server
                    .set_limits(&key, &flow.mid, random_limits(&mut rng))
                    .await;
            }
            if rng.below(4) == 0 {
                let secs = *rng.pick(&[1i64, 30, 1800, 3600, 86_400]);
                server.clock.0.fetch_add(secs * 1000, Ordering::SeqCst);
            }
            let suspended = rng.below(8) == 0;
            if suspended {
                let (s, v) = server
                    .post(
                        &format!("/v1/mobile-identities/{}/suspend", flow.mid),
                        &key,
                        json!({"reason": "test"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{v}");
            }
            let channel = *rng.pick(&["sms", "sms", "call"]);
            let to = *rng.pick(&DESTINATIONS);
            let body = random_body(&mut rng);
            let mut input = json!({"channel": channel, "to": to});
            if channel == "sms" {
                input["body"] = json!(body);
            }
            // Work still running from earlier cases (calls ending) could move the
            // counters between the check and the send: let it finish first.
            server.dispatcher_caught_up().await;
            let (_, before) = server.get("/v1/agent/usage", &flow.agent_token).await;
            let verdict = check(&server, &flow, input.clone()).await;
            let (_, after) = server.get("/v1/agent/usage", &flow.agent_token).await;
            assert_eq!(
                before["usage"], after["usage"],
                "{engine:?} case {case}: the check moved a counter"
            );
            let (status, reply) = send_or_place(&server, &flow, channel, to, &body).await;
            let context =
                format!("{engine:?} case {case}: {input} -> {verdict} vs {status} {reply}");
            assert_eq!(verdict["channel"], channel, "{context}");
            if status == StatusCode::CREATED {
                allowed += 1;
                assert_eq!(verdict["verdict"], "allow", "{context}");
                assert!(verdict.get("refusal").is_none(), "{context}");
                if channel == "sms" {
                    assert_eq!(
                        verdict["estimated_cost_eur"], reply["cost_eur"],
                        "{context}"
                    );
                    assert_eq!(verdict["segments"], reply["segments"], "{context}");
                }
            } else {
                refused += 1;
                assert_eq!(verdict["verdict"], "refuse", "{context}");
                assert_eq!(verdict["refusal"]["status"], status.as_u16(), "{context}");
                assert_eq!(verdict["refusal"]["body"], reply, "{context}");
            }
            if suspended {
                let (s, v) = server
                    .post(
                        &format!("/v1/mobile-identities/{}/resume", flow.mid),
                        &key,
                        json!({"reason": "test"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
        }
        // The cases reached both answers.
        assert!(
            allowed > 3 && refused > 3,
            "{engine:?}: {allowed} allowed, {refused} refused"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn the_check_reports_counters_and_is_audited_and_input_errors_are_the_sends() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Policy").await;
        let flow = server.provision(&key).await;
        server
            .set_limits(
                &key,
                &flow.mid,
                json!({"rate_per_second": 1000, "sms_per_hour": 3, "sms_per_destination_per_hour": 2,
                       "monthly_budget_eur": 1}),
            )
            .await;
        let to = DESTINATIONS[0];
        let (s, v) = send_or_place(&server, &flow, "sms", to, "hola").await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let v = check(
            &server,
            &flow,
            json!({"channel": "sms", "to": to, "body": "hola"}),
        )
        .await;
        assert_eq!(v["verdict"], "allow", "{v}");
        assert_eq!(v["encoding"], "GSM-7");
        assert_eq!(v["segments"], 1);
        let c = &v["counters"];
        assert_eq!(
            c["sms_this_hour"],
            json!({"used": 1, "limit": 3, "remaining": 2}),
            "{v}"
        );
        assert_eq!(
            c["to_this_hour"],
            json!({"used": 1, "limit": 2, "remaining": 1}),
            "{v}"
        );
        assert_eq!(c["monthly_budget_eur"], 1.0, "{v}");
        assert_eq!(c["spent_this_month_eur"], v["estimated_cost_eur"], "{v}");

        // The cap: refused by the check and by the send alike, and free.
        let capped = json!({"channel": "sms", "to": to, "body": "hola", "max_price_eur": 0.01});
        let v = check(&server, &flow, capped).await;
        assert_eq!(v["verdict"], "refuse", "{v}");
        assert_eq!(v["refusal"]["status"], 422, "{v}");
        assert_eq!(v["refusal"]["body"]["error"], "over_max_price", "{v}");
        let (s, sent) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": to, "body": "hola", "max_price_eur": 0.01}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{sent}");
        assert_eq!(sent, v["refusal"]["body"]);
        assert_eq!(sent["max_price_eur"], 0.01, "{sent}");
        let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
        assert_eq!(usage["usage"]["sms_count_this_hour"], 1, "{usage}");
        // A cap at the price itself is enough.
        let (s, sent) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": to, "body": "hola", "max_price_eur": sent["cost_eur"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sent}");

        // Input errors are the send's, answered as errors, and audit nothing.
        let audited = |action: &'static str| {
            let path = format!("/v1/events?action={action}&mid={}&limit=1000", flow.mid);
            let server = &server;
            let key = &key;
            async move { server.get(&path, key).await.1["count"].clone() }
        };
        let events_before = (
            audited("policy_checked").await,
            audited("sms_blocked").await,
        );
        for (input, code) in [
            (json!({"channel": "fax", "to": to}), "invalid_channel"),
            (json!({"to": to, "body": "x"}), "invalid_channel"),
            (
                json!({"channel": "sms", "to": "12", "body": "x"}),
                "invalid_to",
            ),
            (
                json!({"channel": "sms", "to": to, "body": " "}),
                "empty_body",
            ),
            (json!({"channel": "sms", "to": to}), "empty_body"),
            (
                json!({"channel": "call", "to": to, "body": "x"}),
                "invalid_channel",
            ),
            (
                json!({"channel": "sms", "to": to, "body": "x", "max_price_eur": -1}),
                "invalid_max_price_eur",
            ),
            (
                json!({"channel": "sms", "to": to, "body": "x", "extra": 1}),
                "unknown_field",
            ),
        ] {
            let (s, v) = server
                .post("/v1/agent/policy/check", &flow.agent_token, input.clone())
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{input}: {v}");
            assert_eq!(v["error"], code, "{input}: {v}");
        }
        let (s, v) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": to, "body": "x", "max_price_eur": "1"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let events_after = (
            audited("policy_checked").await,
            audited("sms_blocked").await,
        );
        assert_eq!(events_after, events_before);

        // Every check is audited by the agent, with its verdict and a masked destination.
        let (s, v) = server
            .get(
                &format!("/v1/events?action=policy_checked&mid={}", flow.mid),
                &key,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{v}");
        assert_eq!(events[0]["data"]["verdict"], "refuse", "{v}");
        assert_eq!(events[0]["data"]["error"], "over_max_price", "{v}");
        assert_eq!(events[1]["data"]["verdict"], "allow", "{v}");
        assert_eq!(events[0]["actor"]["type"], "agent", "{v}");
        assert!(!v.to_string().contains("611015678"), "{v}");
        // The refused cap is audited as the send's refusal.
        let (_, v) = server
            .get(
                &format!("/v1/events?action=sms_blocked&mid={}", flow.mid),
                &key,
            )
            .await;
        assert_eq!(v["events"][0]["data"]["reason"], "over_max_price", "{v}");

        // Another agent's token reads its own MID only: the check is scoped by the token.
        let other = server.provision(&key).await;
        let v = check(&server, &other, json!({"channel": "call", "to": to})).await;
        assert_eq!(v["counters"]["sms_this_hour"]["used"], 0, "{v}");
        server.stop().await;
    }
}
