//! PROTOCOL §3.6, §4 and §7 for calls from the network: inbound calls routed to the MID's
//! `inbound_sip_uri` (409 `no_inbound_sip_uri` without one), call statuses reported by the
//! telco that never move backwards (409 `invalid_call_transition`), inbound calls to a killed
//! MID refused, the sandbox inject that rings, answers and ends, and the capability a MID
//! was contracted with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Flow, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

use ami_carrier::CarrierEvent;

const TELCO_KEY: &str = "test-telco-key-0123456789";
const SIP: &str = "sip:agent@voice.example.org";

async fn start(engine: common::Engine) -> TestServer {
    TestServer::start_with(engine, &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY)]).await
}

async fn telco(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let res = server
        .http
        .post(format!("{}{path}", server.base))
        .header("x-telco-key", TELCO_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn set_inbound_sip(server: &TestServer, key: &str, flow: &Flow, uri: Value) {
    let (s, v) = server
        .post(
            &format!("/v1/mobile-identities/{}/inbound-config", flow.mid),
            key,
            json!({ "inbound_sip_uri": uri }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn inbound_calls(server: &TestServer, flow: &Flow) -> Vec<Value> {
    let (s, v) = server
        .get(
            "/v1/agent/calls?direction=inbound&limit=200",
            &flow.agent_token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["calls"].as_array().unwrap().clone()
}

async fn events(server: &TestServer, key: &str, action: &str) -> Vec<Value> {
    let (s, v) = server
        .get(&format!("/v1/events?action={action}&limit=1000"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

fn error_of(v: &Value) -> Option<&str> {
    v["error"].as_str()
}

#[tokio::test]
async fn an_inbound_call_is_routed_to_the_mids_sip_uri() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Voice").await;
        let flow = server.provision(&key).await;
        let call = json!({"from": "+34 611 000 001", "to": flow.phone_number, "telco_ref": "in-1"});

        // Nowhere to forward it yet: refused, audited, nothing stored.
        let (s, v) = telco(&server, "/v1/_telco/calls/inbound", call.clone()).await;
        assert_eq!(
            (s, error_of(&v)),
            (StatusCode::CONFLICT, Some("no_inbound_sip_uri")),
            "{engine:?} {v}"
        );
        assert!(inbound_calls(&server, &flow).await.is_empty());
        let blocked = events(&server, &key, "call_blocked").await;
        assert_eq!(blocked.len(), 1, "{blocked:?}");
        assert_eq!(blocked[0]["data"]["reason"], "no_inbound_sip_uri");

        set_inbound_sip(&server, &key, &flow, json!(SIP)).await;
        let (s, routed) = telco(&server, "/v1/_telco/calls/inbound", call.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {routed}");
        assert_eq!(routed["forward_sip_uri"], SIP, "{routed}");
        assert_eq!(routed["mid"], flow.mid.as_str(), "{routed}");
        let call_id = routed["call_id"].as_str().unwrap().to_owned();
        assert!(call_id.starts_with("call_"), "{routed}");

        // The carrier repeating its callback gets the same call.
        let (s, again) = telco(&server, "/v1/_telco/calls/inbound", call).await;
        assert_eq!((s, &again), (StatusCode::CREATED, &routed), "{engine:?}");

        let calls = inbound_calls(&server, &flow).await;
        assert_eq!(calls.len(), 1, "{engine:?} {calls:?}");
        let c = &calls[0];
        assert_eq!(
            (
                c["id"].as_str(),
                c["direction"].as_str(),
                c["status"].as_str(),
                c["from"].as_str(),
                c["to"].as_str(),
                c["callback_sip_uri"].as_str(),
                c["telco_ref"].as_str()
            ),
            (
                Some(call_id.as_str()),
                Some("inbound"),
                Some("ringing"),
                Some("+34611000001"),
                Some(flow.phone_number.as_str()),
                Some(SIP),
                Some("in-1")
            ),
            "{c}"
        );
        let received = events(&server, &key, "call_received").await;
        assert_eq!(received.len(), 1, "{received:?}");
        assert_eq!(received[0]["actor"]["type"], "telco");
        assert!(
            !received[0].to_string().contains("+34611000001"),
            "{received:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn inbound_call_input_is_validated() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Checks").await;
        let flow = server.provision(&key).await;
        set_inbound_sip(&server, &key, &flow, json!(SIP)).await;
        let cases = [
            (
                json!({"to": flow.phone_number}),
                StatusCode::BAD_REQUEST,
                "missing_fields",
            ),
            (
                json!({"from": "+34611000001"}),
                StatusCode::BAD_REQUEST,
                "missing_fields",
            ),
            (
                json!({"from": "nope", "to": flow.phone_number}),
                StatusCode::BAD_REQUEST,
                "invalid_from",
            ),
            (
                json!({"from": "+34611000001", "to": "12"}),
                StatusCode::BAD_REQUEST,
                "invalid_to",
            ),
            (
                json!({"from": "+34611000001", "to": "+34699999999"}),
                StatusCode::NOT_FOUND,
                "destination_not_found",
            ),
            (
                json!({"from": "+34611000001", "to": flow.phone_number, "telco_ref": "a\r\nb"}),
                StatusCode::BAD_REQUEST,
                "invalid_telco_ref",
            ),
            (
                json!({"from": "+34611000001", "to": flow.phone_number, "extra": 1}),
                StatusCode::BAD_REQUEST,
                "unknown_field",
            ),
        ];
        for (body, status, code) in cases {
            let (s, v) = telco(&server, "/v1/_telco/calls/inbound", body.clone()).await;
            assert_eq!(
                (s, error_of(&v)),
                (status, Some(code)),
                "{engine:?} {body}: {v}"
            );
        }
        assert!(inbound_calls(&server, &flow).await.is_empty(), "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn call_statuses_from_the_telco_only_move_forward() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Status").await;
        let flow = server.provision(&key).await;
        set_inbound_sip(&server, &key, &flow, json!(SIP)).await;
        let (_, routed) = telco(
            &server,
            "/v1/_telco/calls/inbound",
            json!({"from": "+34611000001", "to": flow.phone_number, "telco_ref": "st-1"}),
        )
        .await;
        let id = routed["call_id"].as_str().unwrap();
        let path = format!("/v1/_telco/calls/{id}/status");

        let (s, v) = telco(
            &server,
            &path,
            json!({"status": "in-progress", "telco_ref": "st-1"}),
        )
        .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("in_progress")),
            "{engine:?} {v}"
        );
        assert!(v["answered_at"].is_string(), "{v}");

        // Backwards: refused, audited, unchanged.
        let (s, v) = telco(&server, &path, json!({"status": "ringing"})).await;
        assert_eq!(
            (s, error_of(&v), v["from"].as_str(), v["to"].as_str()),
            (
                StatusCode::CONFLICT,
                Some("invalid_call_transition"),
                Some("in_progress"),
                Some("ringing")
            ),
            "{engine:?} {v}"
        );
        // A status about another attempt is not this call's.
        let (s, v) = telco(
            &server,
            &path,
            json!({"status": "completed", "telco_ref": "other"}),
        )
        .await;
        assert_eq!(
            (s, error_of(&v)),
            (StatusCode::CONFLICT, Some("invalid_call_transition")),
            "{v}"
        );

        for (body, status, code) in [
            (
                json!({"status": "exploded"}),
                StatusCode::BAD_REQUEST,
                "unknown_status",
            ),
            (
                json!({"status": "initiated"}),
                StatusCode::BAD_REQUEST,
                "unknown_status",
            ),
            (json!({}), StatusCode::BAD_REQUEST, "unknown_status"),
            (
                json!({"status": "completed", "hangup_cause": "x".repeat(1001)}),
                StatusCode::BAD_REQUEST,
                "invalid_hangup_cause",
            ),
        ] {
            let (s, v) = telco(&server, &path, body.clone()).await;
            assert_eq!(
                (s, error_of(&v)),
                (status, Some(code)),
                "{engine:?} {body}: {v}"
            );
        }
        for unknown in [ami_core::id::new_id("call"), "call_bad".to_owned()] {
            let (s, v) = telco(
                &server,
                &format!("/v1/_telco/calls/{unknown}/status"),
                json!({"status": "completed"}),
            )
            .await;
            assert_eq!(
                (s, error_of(&v)),
                (StatusCode::NOT_FOUND, Some("call_not_found")),
                "{engine:?} {v}"
            );
        }
        let (_, v) = server
            .get(&format!("/v1/agent/calls/{id}"), &flow.agent_token)
            .await;
        assert_eq!(v["status"], "in_progress", "{engine:?} {v}");

        let (s, v) = telco(
            &server,
            &path,
            json!({"status": "completed", "hangup_cause": "normal_clearing"}),
        )
        .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("completed")),
            "{engine:?} {v}"
        );
        assert_eq!(v["hangup_cause"], "normal_clearing");
        // Inbound calls cost the customer nothing.
        assert_eq!(v["cost_eur"], json!(0.0), "{v}");
        let ignored = events(&server, &key, "call_status_ignored").await;
        assert_eq!(ignored.len(), 2, "{engine:?} {ignored:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn inbound_calls_to_a_killed_mid_are_refused() {
    for engine in engines() {
        let server = start(engine).await;
        let (account, key) = server.customer("Killed").await;
        let flow = server.provision(&key).await;
        set_inbound_sip(&server, &key, &flow, json!(SIP)).await;
        let call = json!({"from": "+34611000001", "to": flow.phone_number});
        let sandbox = format!("/v1/mobile-identities/{}/sandbox/inbound-call", flow.mid);
        for (scope, engage) in [
            (
                "mid",
                json!({"scope": "mid", "target_id": flow.mid, "reason": "t"}),
            ),
            (
                "account",
                json!({"scope": "account", "target_id": account, "reason": "t"}),
            ),
            ("global", json!({"scope": "global", "reason": "t"})),
        ] {
            let (s, ks) = server
                .post("/v1/admin/kill-switch", ADMIN_KEY, engage)
                .await;
            assert_eq!(s, StatusCode::CREATED, "{ks}");
            let (s, v) = telco(&server, "/v1/_telco/calls/inbound", call.clone()).await;
            assert_eq!(
                (s, error_of(&v), v["scope"].as_str()),
                (StatusCode::FORBIDDEN, Some("kill_switch"), Some(scope)),
                "{engine:?} {v}"
            );
            let (s, v) = server
                .post(&sandbox, &key, json!({"from": "+34611000001"}))
                .await;
            assert_eq!(
                (s, error_of(&v)),
                (StatusCode::FORBIDDEN, Some("kill_switch")),
                "{v}"
            );
            server
                .running
                .services
                .apply_carrier_event(CarrierEvent::InboundCall {
                    from: "+34611000001".into(),
                    to: flow.phone_number.clone(),
                    telco_ref: format!("killed-{scope}"),
                })
                .await
                .unwrap();
            let release = format!(
                "/v1/admin/kill-switch/{}/release",
                ks["id"].as_str().unwrap()
            );
            let (s, _) = server
                .post(&release, ADMIN_KEY, json!({"reason": "done"}))
                .await;
            assert_eq!(s, StatusCode::OK);
        }
        assert!(inbound_calls(&server, &flow).await.is_empty(), "{engine:?}");
        let blocked = events(&server, &key, "call_blocked").await;
        assert_eq!(blocked.len(), 9, "{engine:?} {blocked:?}");
        assert!(
            blocked.iter().all(|e| e["data"]["reason"] == "kill_switch"),
            "{blocked:?}"
        );

        // Released: the carrier's stream reaches the MID again.
        server
            .running
            .services
            .apply_carrier_event(CarrierEvent::InboundCall {
                from: "+34611000001".into(),
                to: flow.phone_number.clone(),
                telco_ref: "after".into(),
            })
            .await
            .unwrap();
        assert_eq!(inbound_calls(&server, &flow).await.len(), 1, "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_sandbox_inbound_call_rings_answers_and_ends() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key_a) = server.customer("Tenant A").await;
        let (_, key_b) = server.customer("Tenant B").await;
        let a = server.provision(&key_a).await;
        let path = |mid: &str| format!("/v1/mobile-identities/{mid}/sandbox/inbound-call");

        let (s, v) = server
            .post(&path(&a.mid), &key_a, json!({"from": "+34611000009"}))
            .await;
        assert_eq!(
            (s, error_of(&v)),
            (StatusCode::CONFLICT, Some("no_inbound_sip_uri")),
            "{v}"
        );
        set_inbound_sip(&server, &key_a, &a, json!(SIP)).await;

        // Another tenant aiming at A's MID gets what a random id gets.
        let mut bodies = Vec::new();
        for mid in [a.mid.clone(), ami_core::id::new_id("mid")] {
            let res = server
                .http
                .post(format!("{}{}", server.base, path(&mid)))
                .bearer_auth(&key_b)
                .json(&json!({"from": "+34611000009"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{engine:?}");
            bodies.push(res.bytes().await.unwrap());
        }
        assert_eq!(bodies[0], bodies[1], "{engine:?}");

        let (s, routed) = server
            .post(&path(&a.mid), &key_a, json!({"from": "+34611000009"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {routed}");
        assert_eq!(routed["forward_sip_uri"], SIP);
        let id = routed["call_id"].as_str().unwrap();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let (_, c) = server
                .get(&format!("/v1/agent/calls/{id}"), &a.agent_token)
                .await;
            let status = c["status"].as_str().unwrap().to_owned();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            if status == "completed" {
                // The test clock stands still: the duration is whatever it measured, but measured.
                assert!(c["duration_sec"].is_i64(), "{c}");
                assert_eq!(c["cost_eur"], json!(0.0), "{c}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            seen.last().map(String::as_str),
            Some("completed"),
            "{engine:?} {seen:?}"
        );
        assert_eq!(seen[0], "ringing", "{seen:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_mid_without_voice_neither_places_nor_receives_calls() {
    for engine in engines() {
        let server = start(engine).await;
        let (account, _) = server.customer("Texts only").await;
        let (s, mid) = server
            .post(
                "/v1/admin/mobile-identities/manual",
                ADMIN_KEY,
                json!({"phone_number": "+34611223355", "account_id": account,
                       "capabilities": ["sms"], "inbound_sip_uri": SIP}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {mid}");
        let token = mid["agent_token"].as_str().unwrap();
        let (s, v) = server
            .post(
                "/v1/agent/calls/place",
                token,
                json!({"to": "+34600123456", "callback_sip_uri": SIP}),
            )
            .await;
        assert_eq!(
            (s, error_of(&v), v["capability"].as_str()),
            (
                StatusCode::FORBIDDEN,
                Some("capability_not_contracted"),
                Some("voice")
            ),
            "{engine:?} {v}"
        );
        let (s, v) = telco(
            &server,
            "/v1/_telco/calls/inbound",
            json!({"from": "+34611000001", "to": "+34611223355"}),
        )
        .await;
        assert_eq!(
            (s, error_of(&v)),
            (StatusCode::FORBIDDEN, Some("capability_not_contracted")),
            "{v}"
        );
        // SMS still work.
        let (s, v) = server
            .post(
                "/v1/agent/sms/send",
                token,
                json!({"to": "+34600123456", "body": "hi"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert!(
            server
                .running
                .carrier
                .submissions()
                .iter()
                .all(|s| !matches!(s, ami_carrier::Submission::Call { .. })),
            "{engine:?}"
        );
        server.stop().await;
    }
}
