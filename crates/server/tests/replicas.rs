//! Two replicas on one PostgreSQL database (PROTOCOL §6: "concurrent requests can never
//! overshoot a budget"; §7: a kill-switch is "effective immediately and across every server
//! replica"). Each replica is a whole server: its own listener, clock, dispatcher and
//! sandbox carrier; only the database is shared. PostgreSQL only: SQLite is one process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Engine, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

use ami_carrier::Submission;

/// Replica A (owns a fresh database) and replica B on the same database; None without
/// PostgreSQL.
async fn two_replicas() -> Option<(TestServer, TestServer)> {
    if !std::env::var("AMI_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        common::require_postgres("replicas");
        return None;
    }
    let a = TestServer::start(Engine::Postgres).await;
    // A slow start must not leave the replicas' clocks a second apart.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let b = TestServer::start_beside(&a, &[]).await;
    assert_ne!(a.base, b.base);
    Some((a, b))
}

async fn send(server: &TestServer, token: &str, to: &str) -> (StatusCode, Value) {
    server
        .post(
            "/v1/agent/sms/send",
            token,
            json!({"to": to, "body": "replica"}),
        )
        .await
}

fn sms_submissions(server: &TestServer) -> Vec<String> {
    server
        .running
        .carrier
        .submissions()
        .into_iter()
        .filter_map(|s| match s {
            Submission::Sms { msg_id, .. } => Some(msg_id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn fifty_racers_on_two_replicas_for_a_budget_of_ten() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (_, key) = a.customer("Racer").await;
    let flow = a.provision(&key).await;
    // 10 SMS of 0.07 EUR fit in 0.70 EUR; every other limit out of the way.
    let limits = json!({"monthly_budget_eur": 0.7, "rate_per_second": 1000, "sms_per_hour": 100000, "sms_per_day": 100000,
                        "sms_per_destination_per_hour": 100000, "sms_per_destination_per_day": 100000});
    let (s, v) = b
        .post(
            &format!("/v1/mobile-identities/{}/limits", flow.mid),
            &key,
            limits,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let mut tasks = Vec::new();
    for i in 0..50 {
        let target = if i % 2 == 0 { &a } else { &b };
        let (http, url, token) = (
            target.http.clone(),
            format!("{}/v1/agent/sms/send", target.base),
            flow.agent_token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"to": format!("+34611{i:02}5678"), "body": "race"}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            (i, status, res.json::<Value>().await.unwrap())
        }));
    }
    let mut accepted = HashSet::new();
    let mut accepted_by = [0, 0];
    let mut refused = 0;
    for t in tasks {
        let (i, s, v) = t.await.unwrap();
        match s {
            StatusCode::CREATED => {
                accepted.insert(v["id"].as_str().unwrap().to_owned());
                accepted_by[i % 2] += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(
                    (v["error"].as_str(), v["reason"].as_str()),
                    (Some("monthly_budget"), Some("monthly_budget")),
                    "{v}"
                );
                refused += 1;
            }
            other => panic!("{other} {v}"),
        }
    }
    assert_eq!(
        (accepted.len(), refused),
        (10, 40),
        "by replica {accepted_by:?}"
    );
    for server in [&a, &b] {
        let (_, usage) = server
            .get(&format!("/v1/mobile-identities/{}/usage", flow.mid), &key)
            .await;
        assert_eq!(
            usage["usage"]["spend_this_month_eur"],
            json!(0.7),
            "{usage}"
        );
        assert_eq!(usage["usage"]["sms_count_this_hour"], 10, "{usage}");
        assert_eq!(
            usage["consumed_pct"]["monthly_budget"],
            json!(100.0),
            "{usage}"
        );
    }
    let (_, blocked) = a
        .get("/v1/events?action=sms_blocked&limit=1000", &key)
        .await;
    assert_eq!(blocked["count"], 40, "{blocked}");

    // Both dispatchers poll the one outbox: every accepted SMS reaches the network exactly
    // once, whichever replica took it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = a
            .get(
                "/v1/agent/sms?direction=outbound&limit=200",
                &flow.agent_token,
            )
            .await;
        let msgs = list["messages"].as_array().unwrap();
        if msgs.len() == 10 && msgs.iter().all(|m| m["status"] == "delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut handed: Vec<String> = sms_submissions(&a);
    handed.extend(sms_submissions(&b));
    handed.sort();
    let distinct: HashSet<String> = handed.iter().cloned().collect();
    assert_eq!(
        handed.len(),
        10,
        "a message was handed off twice: {handed:?}"
    );
    assert_eq!(distinct, accepted);

    b.stop_replica().await;
    a.stop().await;
}

#[tokio::test]
async fn a_kill_switch_engaged_on_one_replica_stops_the_other_at_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (_, key) = a.customer("Switch").await;
    let flow = a.provision(&key).await;
    a.set_limits(&key, &flow.mid, json!({"rate_per_second": 1000}))
        .await;
    let (s, v) = send(&b, &flow.agent_token, "+34611005678").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    for scope in ["mid", "account", "global"] {
        let target = match scope {
            "mid" => json!(flow.mid),
            "account" => {
                let (_, me) = a.get("/v1/agent/self", &flow.agent_token).await;
                me["customer_id"].clone()
            }
            _ => Value::Null,
        };
        let (s, ks) = a
            .post(
                "/v1/admin/kill-switch",
                ADMIN_KEY,
                json!({"scope": scope, "target_id": target, "reason": "replica test"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{scope}: {ks}");
        // The very next send, through the other replica.
        let (s, v) = send(&b, &flow.agent_token, "+34611015678").await;
        assert_eq!(
            (s, v["error"].as_str(), v["scope"].as_str()),
            (StatusCode::FORBIDDEN, Some("kill_switch"), Some(scope)),
            "{v}"
        );
        let (s, listed) = b.get("/v1/admin/kill-switch", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK, "{listed}");
        assert!(
            listed.to_string().contains(ks["id"].as_str().unwrap()),
            "{listed}"
        );

        // Released through B: A accepts on its very next send.
        let (s, v) = b
            .post(
                &format!(
                    "/v1/admin/kill-switch/{}/release",
                    ks["id"].as_str().unwrap()
                ),
                ADMIN_KEY,
                json!({"reason": "done"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = send(&a, &flow.agent_token, "+34611025678").await;
        assert_eq!(s, StatusCode::CREATED, "{scope}: {v}");
    }

    // The customer's own switch (suspend on A) binds B too, and resume on B frees A.
    let (s, v) = a
        .post(
            &format!("/v1/mobile-identities/{}/suspend", flow.mid),
            &key,
            json!({"reason": "customer stop"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = send(&b, &flow.agent_token, "+34611035678").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("kill_switch")),
        "{v}"
    );
    let (s, v) = b
        .post(
            &format!("/v1/mobile-identities/{}/resume", flow.mid),
            &key,
            json!({"reason": "go"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = send(&a, &flow.agent_token, "+34611045678").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    b.stop_replica().await;
    a.stop().await;
}
