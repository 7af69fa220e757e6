//! Agent SMS through the sandbox carrier: accepted, handed off, delivered; refusals reach no
//! carrier; the kill-switch stops an agent at once, and releasing one switch resumes only
//! the MIDs no other switch still covers.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, TestServer, engines};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_sms_is_queued_handed_off_and_delivered() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Sender").await;
        let flow = server.provision(&key).await;
        let (s, sms) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+34 600 123 456", "body": "hello €"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
        assert_eq!(
            (sms["status"].as_str(), sms["to"].as_str()),
            (Some("queued"), Some("+34600123456"))
        );
        assert_eq!(
            (sms["segments"].as_i64(), sms["encoding"].as_str()),
            (Some(1), Some("GSM-7"))
        );
        assert_eq!(sms["cost_eur"], json!(0.07));
        let id = sms["id"].as_str().unwrap().to_owned();
        let mut status = String::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (_, m) = server
                .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
                .await;
            status = m["status"].as_str().unwrap_or_default().to_owned();
            if status == "delivered" {
                assert!(
                    m["telco_ref"].is_string()
                        && m["delivered_at"].is_string()
                        && m["sent_at"].is_string(),
                    "{m}"
                );
                break;
            }
        }
        assert_eq!(status, "delivered", "{engine:?}");
        let (s, list) = server
            .get("/v1/agent/sms?direction=outbound", &flow.agent_token)
            .await;
        assert_eq!((s, list["count"].as_u64()), (StatusCode::OK, Some(1)));
        let (_, events) = server.get("/v1/events?limit=1000", &key).await;
        assert!(
            !events.to_string().contains("hello"),
            "an SMS body reached the audit log"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_refused_send_reaches_no_carrier() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Refused").await;
        let flow = server.provision(&key).await;
        let (s, v) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+573001234567", "body": "hi"}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str(), v["reason"].as_str()),
            (
                StatusCode::TOO_MANY_REQUESTS,
                Some("country_not_allowed"),
                Some("country_not_allowed")
            ),
            "{v}"
        );
        assert_eq!(v["mid"], flow.mid.as_str());
        let (s, ks) = server
            .post(
                "/v1/admin/kill-switch",
                ADMIN_KEY,
                json!({"scope": "mid", "target_id": flow.mid, "reason": "test"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{ks}");
        let (s, v) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+34600123456", "body": "hi"}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str(), v["scope"].as_str()),
            (StatusCode::FORBIDDEN, Some("kill_switch"), Some("mid")),
            "{v}"
        );
        server.dispatcher_caught_up().await;
        assert!(
            server.running.carrier.submissions().is_empty(),
            "{:?}",
            server.running.carrier.submissions()
        );
        let (s, _) = server
            .post(
                &format!(
                    "/v1/admin/kill-switch/{}/release",
                    ks["id"].as_str().unwrap()
                ),
                ADMIN_KEY,
                json!({"reason": "done"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+34600123456", "body": "hi"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_release_resumes_only_mids_no_other_switch_covers() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Overlap").await;
        let [own, other] = [server.provision(&key).await, server.provision(&key).await];
        let engage = |scope: &'static str, target: String| {
            let server = &server;
            async move {
                let (s, v) = server
                    .post(
                        "/v1/admin/kill-switch",
                        ADMIN_KEY,
                        json!({"scope": scope, "target_id": target, "reason": "test"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{v}");
                v["id"].as_str().unwrap().to_owned()
            }
        };
        let release = |id: String| {
            let server = &server;
            async move {
                let (s, v) = server
                    .post(
                        &format!("/v1/admin/kill-switch/{id}/release"),
                        ADMIN_KEY,
                        json!({"reason": "done"}),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
        };
        let resumed = |mid: String| {
            let server = &server;
            async move {
                let mut conn = server.running.services.store.reader().await.unwrap();
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'mid_resumed' AND mid = $1",
                )
                .bind(mid)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
                n
            }
        };
        let send = |token: String| {
            let server = &server;
            async move {
                let (s, v) = server
                    .post(
                        "/v1/agent/sms/send",
                        &token,
                        json!({"to": "+34600123456", "body": "hi"}),
                    )
                    .await;
                (s, v["scope"].as_str().map(str::to_owned))
            }
        };
        let on_mid = engage("mid", own.mid.clone()).await;
        let on_account = engage("account", account).await;
        release(on_account).await;
        assert_eq!(
            (
                resumed(own.mid.clone()).await,
                resumed(other.mid.clone()).await
            ),
            (0, 1),
            "{engine:?}: only the MID without a switch of its own resumes"
        );
        assert_eq!(
            send(own.agent_token.clone()).await,
            (StatusCode::FORBIDDEN, Some("mid".to_owned()))
        );
        assert_eq!(send(other.agent_token.clone()).await.0, StatusCode::CREATED);
        release(on_mid).await;
        assert_eq!(resumed(own.mid.clone()).await, 1, "{engine:?}");
        assert_eq!(send(own.agent_token.clone()).await.0, StatusCode::CREATED);
        server.stop().await;
    }
}

#[tokio::test]
async fn fifty_racers_for_a_budget_of_ten() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Racer").await;
        let flow = server.provision(&key).await;
        // 10 SMS of 0.07 EUR fit in 0.70 EUR; every other limit raised out of the way.
        let limits = json!({"monthly_budget_eur": 0.7, "rate_per_second": 1000, "sms_per_hour": 100000, "sms_per_day": 100000,
                            "sms_per_destination_per_hour": 100000, "sms_per_destination_per_day": 100000});
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/limits", flow.mid),
                &key,
                limits,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (http, url, token) = (
                server.http.clone(),
                format!("{}/v1/agent/sms/send", server.base),
                flow.agent_token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let res = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"to": format!("+346001{i:05}"), "body": "race"}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                (status, res.json::<serde_json::Value>().await.unwrap())
            }));
        }
        let mut accepted = 0;
        for t in tasks {
            let (s, v) = t.await.unwrap();
            match s {
                StatusCode::CREATED => accepted += 1,
                StatusCode::TOO_MANY_REQUESTS => assert_eq!(v["reason"], "monthly_budget", "{v}"),
                other => panic!("{engine:?} {other} {v}"),
            }
        }
        assert_eq!(accepted, 10, "{engine:?}");
        let (_, usage) = server
            .get(&format!("/v1/mobile-identities/{}/usage", flow.mid), &key)
            .await;
        assert_eq!(
            usage["usage"]["spend_this_month_eur"],
            json!(0.7),
            "{usage}"
        );
        server.stop().await;
    }
}

/// Destinations the numbering plan does not accept (too long, too short, a range no operator
/// has) are `400 invalid_to` like a malformed one: nothing is reserved, audited, queued or
/// handed to the carrier, even for a number whose country code is right.
#[tokio::test]
async fn numbers_the_plan_refuses_are_invalid_to_and_change_nothing() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Planned").await;
        let flow = server.provision(&key).await;
        let events_before = server.event_count().await;
        for to in [
            "+346000000001234",
            "+34 600 000 000 1234",
            "+3461100000",
            "+34500000001",
            "+5730012345",
        ] {
            // Twice: the second answer comes from the memo of the plan's answers.
            for _ in 0..2 {
                let (s, v) = server
                    .post(
                        "/v1/agent/sms/send",
                        &flow.agent_token,
                        json!({"to": to, "body": "hi"}),
                    )
                    .await;
                assert_eq!(
                    (s, v["error"].as_str()),
                    (StatusCode::BAD_REQUEST, Some("invalid_to")),
                    "{engine:?} {to} {v}"
                );
            }
        }
        assert_eq!(server.event_count().await, events_before, "{engine:?}");
        let (_, list) = server.get("/v1/agent/sms", &flow.agent_token).await;
        assert_eq!(list["count"], 0, "{list}");
        let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
        assert_eq!(usage["usage"]["sms_count_this_hour"], 0, "{usage}");
        assert_eq!(
            usage["usage"]["spend_this_month_eur"],
            json!(0.0),
            "{usage}"
        );

        // A valid number still goes through; once it reached the carrier, nothing else had.
        let (s, sms) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+34 600 123 456", "body": "hi"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sms}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while server.running.carrier.submissions().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{engine:?} never handed off"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tos: Vec<String> = server
            .running
            .carrier
            .submissions()
            .into_iter()
            .filter_map(|s| match s {
                ami_carrier::Submission::Sms { to, .. } => Some(to),
                _ => None,
            })
            .collect();
        assert_eq!(tos, vec!["+34600123456".to_owned()], "{engine:?}");
        server.stop().await;
    }
}
