//! PROTOCOL §3.6, §4 and §7 for traffic from the network: the telco callbacks behind
//! `X-Telco-Key` (503 when none is configured, one 401 for a missing or wrong key), inbound
//! SMS to a MID's number, delivery reports as JSON or query string that never move a status
//! backwards, inbound traffic to a killed MID refused, the sandbox inject restricted to the
//! caller's own MIDs, and the carrier's event stream entering the same path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Flow, TestServer, engines};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use ami_carrier::CarrierEvent;

const TELCO_KEY: &str = "test-telco-key-0123456789";
/// Every telco route, an id standing in for the call of the status route.
const TELCO_PATHS: [&str; 4] = [
    "/v1/_telco/sms/inbound",
    "/v1/_telco/sms/dlr",
    "/v1/_telco/calls/inbound",
    "/v1/_telco/calls/call_01m8k1gmnkj22x0qq7541nn23gzgsb/status",
];

async fn start(engine: common::Engine) -> TestServer {
    TestServer::start_with(engine, &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY)]).await
}

/// A telco call: `key` goes in `X-Telco-Key`; `body` None sends no body at all. Returns the
/// status, the exact body bytes and the parsed body.
async fn telco(
    server: &TestServer,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Vec<u8>, Value) {
    let mut req = server.http.post(format!("{}{path}", server.base));
    if let Some(k) = key {
        req = req.header("x-telco-key", k);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let bytes = res.bytes().await.unwrap().to_vec();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, bytes, value)
}

async fn inbound(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = telco(
        server,
        "/v1/_telco/sms/inbound",
        Some(TELCO_KEY),
        Some(&body),
    )
    .await;
    (s, v)
}

async fn dlr_json(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = telco(server, "/v1/_telco/sms/dlr", Some(TELCO_KEY), Some(&body)).await;
    (s, v)
}

async fn dlr_query(server: &TestServer, query: &str) -> (StatusCode, Value) {
    let path = format!("/v1/_telco/sms/dlr?{query}");
    let (s, _, v) = telco(server, &path, Some(TELCO_KEY), None).await;
    (s, v)
}

async fn agent_inbox(server: &TestServer, flow: &Flow) -> Vec<Value> {
    let (s, v) = server
        .get(
            "/v1/agent/sms?direction=inbound&limit=200",
            &flow.agent_token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["messages"].as_array().unwrap().clone()
}

/// Events of the caller's account with this action.
async fn events(server: &TestServer, key: &str, action: &str) -> Vec<Value> {
    let (s, v) = server
        .get(&format!("/v1/events?action={action}&limit=1000"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

/// An outbound message in `queued`, written straight to the store (no outbox job), so that
/// the only reports it ever gets are the ones the test sends.
async fn queued_message(server: &TestServer, account: &str, flow: &Flow) -> String {
    let now = ami_core::time::now_ms();
    let m = ami_store::messages::Message {
        id: ami_core::id::new_id_at("msg", now),
        account_id: account.to_owned(),
        mid_id: flow.mid.clone(),
        direction: "outbound".into(),
        from_number: flow.phone_number.clone(),
        to_number: "+34600123456".into(),
        body: "dlr test".into(),
        segments: 1,
        encoding: "GSM-7".into(),
        cost: 70_000,
        status: "queued".into(),
        created_at: now,
        handed_at: Some(now),
        sent_at: None,
        delivered_at: None,
        telco_ref: Some("ref-1".into()),
        retry_count: 0,
        error: None,
        updated_at: now,
    };
    let mut tx = server.running.services.store.begin().await.unwrap();
    ami_store::messages::insert(&mut tx, &m).await.unwrap();
    ami_store::commit(tx).await.unwrap();
    m.id
}

#[tokio::test]
async fn telco_routes_answer_503_when_no_key_is_configured() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        for path in TELCO_PATHS {
            let mut bodies = Vec::new();
            for key in [None, Some(TELCO_KEY), Some("")] {
                let (s, bytes, v) = telco(&server, path, key, Some(&json!({}))).await;
                assert_eq!(
                    (s, v["error"].as_str()),
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Some("telco_inbound_disabled")
                    ),
                    "{engine:?} {path} {key:?}: {v}"
                );
                bodies.push(bytes);
            }
            assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{engine:?} {path}");
        }
        let (_, health) = server.call(Method::GET, "/v1/health", None, None).await;
        assert_eq!(health["telco"]["inbound_callbacks"], false, "{health}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_one_401() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Keys").await;
        let flow = server.provision(&key).await;
        let body = json!({"from": "+34611000001", "to": flow.phone_number, "body": "hi"});
        for path in TELCO_PATHS {
            let (s, expected, v) = telco(&server, path, None, Some(&body)).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("invalid_telco_key")),
                "{engine:?} {path}: {v}"
            );
            let near_miss = format!("{}0", &TELCO_KEY[..TELCO_KEY.len() - 1]);
            let longer = format!("{TELCO_KEY}0");
            for wrong in [
                "",
                "wrong",
                near_miss.as_str(),
                longer.as_str(),
                &TELCO_KEY[..5],
                ADMIN_KEY,
                key.as_str(),
                flow.agent_token.as_str(),
            ] {
                let (s, bytes, _) = telco(&server, path, Some(wrong), Some(&body)).await;
                assert_eq!(s, StatusCode::UNAUTHORIZED, "{engine:?} {path} {wrong}");
                assert_eq!(bytes, expected, "{engine:?} {path} {wrong}: bodies differ");
            }
            // The key is not a bearer credential.
            let res = server
                .http
                .post(format!("{}{path}", server.base))
                .bearer_auth(TELCO_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{engine:?} {path}");
            assert_eq!(res.bytes().await.unwrap().to_vec(), expected);
        }
        // Nothing reached the MID.
        assert!(agent_inbox(&server, &flow).await.is_empty(), "{engine:?}");
        let (_, health) = server.call(Method::GET, "/v1/health", None, None).await;
        assert_eq!(health["telco"]["inbound_callbacks"], true, "{health}");
        server.stop().await;
    }
}

#[tokio::test]
async fn an_inbound_sms_reaches_the_agent_and_is_audited_without_its_body() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Inbound").await;
        let flow = server.provision(&key).await;
        let (s, sms) = inbound(
            &server,
            json!({"from": "+34 611 22 33 44", "to": flow.phone_number,
                   "body": "your code is 4711\nbye", "telco_ref": "tr-1"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
        assert_eq!(sms["direction"], "inbound", "{sms}");
        assert_eq!(sms["status"], "received", "{sms}");
        assert_eq!(sms["from"], "+34611223344", "{sms}");
        assert_eq!(sms["to"], flow.phone_number.as_str(), "{sms}");
        assert_eq!(sms["mid"], flow.mid.as_str(), "{sms}");
        assert_eq!(sms["body"], "your code is 4711\nbye", "{sms}");
        assert_eq!(sms["telco_ref"], "tr-1", "{sms}");
        assert_eq!(
            (sms["segments"].as_i64(), sms["encoding"].as_str()),
            (Some(1), Some("GSM-7")),
            "{sms}"
        );
        assert_eq!(sms["cost_eur"].as_f64(), Some(0.0), "{sms}");
        let id = sms["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("msg_"), "{id}");

        let inbox = agent_inbox(&server, &flow).await;
        assert_eq!(inbox.len(), 1, "{engine:?} {inbox:?}");
        assert_eq!(inbox[0], sms, "{engine:?}: the agent sees the same record");
        let (s, one) = server
            .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
            .await;
        assert_eq!((s, &one), (StatusCode::OK, &sms), "{engine:?}");
        let (_, outbound) = server
            .get("/v1/agent/sms?direction=outbound", &flow.agent_token)
            .await;
        assert_eq!(outbound["count"], 0, "{engine:?} {outbound}");

        // The same callback again (a carrier retry) is the same record, not a second message.
        let (s, again) = inbound(
            &server,
            json!({"from": "+34611223344", "to": flow.phone_number,
                   "body": "your code is 4711\nbye", "telco_ref": "tr-1"}),
        )
        .await;
        assert_eq!(
            (s, &again["id"]),
            (StatusCode::CREATED, &sms["id"]),
            "{engine:?} {again}"
        );
        assert_eq!(agent_inbox(&server, &flow).await.len(), 1, "{engine:?}");

        let received = events(&server, &key, "sms_inbound").await;
        assert_eq!(received.len(), 1, "{engine:?} {received:?}");
        let e = &received[0];
        assert_eq!(
            (
                e["actor"]["type"].as_str(),
                e["entity_id"].as_str(),
                e["mid"].as_str()
            ),
            (Some("telco"), Some(id.as_str()), Some(flow.mid.as_str())),
            "{e}"
        );
        assert_eq!(e["data"]["from"], "+34*******44", "{e}");
        let (_, all) = server.get("/v1/events?limit=1000", &key).await;
        let all = all.to_string();
        assert!(
            !all.contains("4711"),
            "{engine:?}: an SMS body reached the audit log"
        );
        assert!(
            !all.contains("611223344"),
            "{engine:?}: an unmasked sender in the audit log"
        );
        // The operator's log has no body either.
        let (_, global) = server.get("/v1/admin/events?limit=1000", ADMIN_KEY).await;
        assert!(!global.to_string().contains("4711"), "{engine:?}");
        // Tenancy of what arrived: the event is on the MID's account only.
        assert_eq!(e["entity_type"], "sms", "{e}");
        server.stop().await;
    }
}

#[tokio::test]
async fn inbound_input_is_validated_and_an_unknown_number_is_not_found() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Validation").await;
        let flow = server.provision(&key).await;
        let to = flow.phone_number.as_str();
        let cases = [
            (
                json!({"from": "+34611000001", "to": "+34699999999", "body": "hi"}),
                404,
                "destination_not_found",
            ),
            (
                json!({"from": "+34611000001", "to": "not a number", "body": "hi"}),
                400,
                "invalid_to",
            ),
            (
                json!({"from": "611000001", "to": to, "body": "hi"}),
                400,
                "invalid_from",
            ),
            (
                json!({"from": "+34 611 abc", "to": to, "body": "hi"}),
                400,
                "invalid_from",
            ),
            (
                json!({"from": "+34611000001", "to": to, "body": ""}),
                400,
                "empty_body",
            ),
            (
                json!({"from": "+34611000001", "to": to, "body": "x".repeat(1601)}),
                400,
                "body_too_long",
            ),
            (
                json!({"from": "+34611000001", "to": to, "body": "a\u{0}b"}),
                400,
                "invalid_body",
            ),
            (
                json!({"from": "+34611000001", "to": to, "body": "hi", "telco_ref": "a\r\nb"}),
                400,
                "invalid_telco_ref",
            ),
            (json!({"to": to, "body": "hi"}), 400, "missing_fields"),
            (json!({}), 400, "missing_fields"),
            (
                json!({"from": "+34611000001", "to": to, "body": "hi", "cc": "x"}),
                400,
                "unknown_field",
            ),
        ];
        for (body, status, code) in cases {
            let (s, v) = inbound(&server, body.clone()).await;
            assert_eq!(
                (s.as_u16(), v["error"].as_str()),
                (status, Some(code)),
                "{engine:?} {body}: {v}"
            );
        }
        let (_, v) = inbound(&server, json!({"to": to})).await;
        assert_eq!(v["fields"], json!(["from", "body"]), "{v}");
        assert!(agent_inbox(&server, &flow).await.is_empty(), "{engine:?}");
        assert!(
            events(&server, &key, "sms_inbound").await.is_empty(),
            "{engine:?}"
        );

        // The longest body, in UCS-2, is accepted and counted.
        let (s, v) = inbound(
            &server,
            json!({"from": "+34611000001", "to": to, "body": "ñ€😀".repeat(400)}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_eq!(v["encoding"], "UCS-2", "{v}");
        assert_eq!(v["body"].as_str().unwrap().chars().count(), 1200);

        // A released MID's number no longer reaches it; the sandbox inject says why.
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/release", flow.mid),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let (s, v) = inbound(
            &server,
            json!({"from": "+34611000001", "to": to, "body": "late"}),
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("destination_not_found")),
            "{engine:?} {v}"
        );
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/sandbox/inbound-sms", flow.mid),
                &key,
                json!({"from": "+34611000001", "body": "late"}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("mobile_identity_not_active")),
            "{engine:?} {v}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn delivery_reports_by_json_and_by_query_string_for_every_spelling() {
    let spellings = [
        ("delivered", "delivered"),
        ("1", "delivered"),
        ("ok", "delivered"),
        ("OK", "delivered"),
        ("failed", "failed"),
        ("rejected", "failed"),
        ("expired", "failed"),
        ("2", "failed"),
        ("4", "failed"),
        ("8", "failed"),
        ("16", "failed"),
        ("sent", "sent"),
    ];
    for engine in engines() {
        let server = start(engine).await;
        let (account, key) = server.customer("Reports").await;
        let flow = server.provision(&key).await;
        for (spelling, expected) in spellings {
            let id = queued_message(&server, &account, &flow).await;
            let (s, v) = dlr_json(
                &server,
                json!({"msg_id": id, "status": spelling, "telco_ref": "ref-1"}),
            )
            .await;
            assert_eq!(
                (s, v["status"].as_str(), v["id"].as_str()),
                (StatusCode::OK, Some(expected), Some(id.as_str())),
                "{engine:?} JSON {spelling}: {v}"
            );
            if expected == "failed" {
                assert!(v["error"].is_string(), "{v}");
            }
            let id = queued_message(&server, &account, &flow).await;
            let (s, v) = dlr_query(
                &server,
                &format!("msg_id={id}&status={spelling}&telco_ref=ref-1"),
            )
            .await;
            assert_eq!(
                (s, v["status"].as_str(), v["id"].as_str()),
                (StatusCode::OK, Some(expected), Some(id.as_str())),
                "{engine:?} query {spelling}: {v}"
            );
            let (s, v) = server
                .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
                .await;
            assert_eq!(
                (s, v["status"].as_str()),
                (StatusCode::OK, Some(expected)),
                "{engine:?} {v}"
            );
        }
        // A JSON integer status, and a report split between query string and body.
        let id = queued_message(&server, &account, &flow).await;
        let (s, v) = dlr_json(&server, json!({"msg_id": id, "status": 1})).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("delivered")),
            "{engine:?} {v}"
        );
        let id = queued_message(&server, &account, &flow).await;
        let (s, _, v) = telco(
            &server,
            &format!("/v1/_telco/sms/dlr?msg_id={id}"),
            Some(TELCO_KEY),
            Some(&json!({"status": "sent"})),
        )
        .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("sent")),
            "{engine:?} {v}"
        );
        // Every report is audited under the telco actor.
        let delivered = events(&server, &key, "sms_delivered").await;
        // Four spellings of delivered, each by JSON and by query, and the integer one.
        assert_eq!(delivered.len(), 9, "{engine:?} {delivered:?}");
        assert!(
            delivered.iter().all(|e| e["actor"]["type"] == "telco"),
            "{delivered:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_late_sent_after_delivered_is_ignored_and_audited() {
    for engine in engines() {
        let server = start(engine).await;
        let (account, key) = server.customer("Late").await;
        let flow = server.provision(&key).await;
        let id = queued_message(&server, &account, &flow).await;
        let (s, v) = dlr_json(&server, json!({"msg_id": id, "status": "delivered"})).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("delivered")),
            "{engine:?} {v}"
        );
        let delivered_at = v["delivered_at"].clone();
        assert!(delivered_at.is_string(), "{v}");
        for late in [
            dlr_query(
                &server,
                &format!("msg_id={id}&status=sent&telco_ref=late-1"),
            )
            .await,
            dlr_json(&server, json!({"msg_id": id, "status": "failed"})).await,
        ] {
            let (s, v) = late;
            assert_eq!(
                (s, v["status"].as_str()),
                (StatusCode::OK, Some("delivered")),
                "{engine:?} {v}"
            );
            assert_eq!(v["delivered_at"], delivered_at, "{v}");
        }
        let (_, v) = server
            .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
            .await;
        assert_eq!(v["status"], "delivered", "{engine:?} {v}");
        let ignored = events(&server, &key, "sms_status_ignored").await;
        assert_eq!(ignored.len(), 2, "{engine:?} {ignored:?}");
        let sent = ignored
            .iter()
            .find(|e| e["data"]["reported"] == "sent")
            .expect("the late sent");
        assert_eq!(
            (
                sent["entity_id"].as_str(),
                sent["data"]["from"].as_str(),
                sent["data"]["telco_ref"].as_str(),
                sent["actor"]["type"].as_str()
            ),
            (
                Some(id.as_str()),
                Some("delivered"),
                Some("late-1"),
                Some("telco")
            ),
            "{sent}"
        );
        // A report about an inbound message changes nothing either.
        let (_, sms) = inbound(
            &server,
            json!({"from": "+34611000001", "to": flow.phone_number, "body": "hi"}),
        )
        .await;
        let (s, v) = dlr_json(&server, json!({"msg_id": sms["id"], "status": "failed"})).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("received")),
            "{engine:?} {v}"
        );
        server.stop().await;
    }
}

/// `sent` and `delivered` for one message at the same instant (the hand-off's report and an
/// early receipt do this on PostgreSQL): whatever the order, the message ends delivered.
#[tokio::test]
async fn sent_and_delivered_at_once_always_end_delivered() {
    for engine in engines() {
        let server = start(engine).await;
        let (account, key) = server.customer("Race").await;
        let flow = server.provision(&key).await;
        let mut ids = Vec::new();
        for _ in 0..30 {
            ids.push(queued_message(&server, &account, &flow).await);
        }
        let mut races = tokio::task::JoinSet::new();
        for id in &ids {
            for status in ["sent", "delivered"] {
                let report = server
                    .http
                    .post(format!("{}/v1/_telco/sms/dlr", server.base))
                    .header("x-telco-key", TELCO_KEY)
                    .json(&json!({"msg_id": id, "status": status}));
                races.spawn(async move { report.send().await.expect("report").status() });
            }
        }
        while let Some(status) = races.join_next().await {
            assert_eq!(status.unwrap(), StatusCode::OK, "{engine:?}");
        }
        for id in &ids {
            let (_, v) = server
                .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
                .await;
            assert_eq!(v["status"], "delivered", "{engine:?} {v}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_delivery_reports_are_refused() {
    for engine in engines() {
        let server = start(engine).await;
        let (account, key) = server.customer("Bad reports").await;
        let flow = server.provision(&key).await;
        let id = queued_message(&server, &account, &flow).await;
        let before = server.event_count().await;
        for (what, (s, v), status, code) in [
            (
                "no msg_id",
                dlr_json(&server, json!({"status": "delivered"})).await,
                400,
                "missing_msg_id",
            ),
            (
                "empty msg_id",
                dlr_query(&server, "msg_id=&status=delivered").await,
                400,
                "missing_msg_id",
            ),
            (
                "nothing",
                dlr_query(&server, "").await,
                400,
                "missing_msg_id",
            ),
            (
                "unknown status",
                dlr_json(&server, json!({"msg_id": id, "status": "bounced"})).await,
                400,
                "unknown_status",
            ),
            (
                "unknown status by query",
                dlr_query(&server, &format!("msg_id={id}&status=3")).await,
                400,
                "unknown_status",
            ),
            (
                "no status",
                dlr_json(&server, json!({"msg_id": id})).await,
                400,
                "unknown_status",
            ),
            (
                "unknown parameter",
                dlr_query(&server, &format!("msg_id={id}&status=ok&zz=1")).await,
                400,
                "unknown_parameter",
            ),
        ] {
            assert_eq!(
                (s.as_u16(), v["error"].as_str()),
                (status, Some(code)),
                "{engine:?} {what}: {v}"
            );
        }
        // Unknown and malformed ids are the same 404.
        let unknown = ami_core::id::new_id("msg");
        let (s, _, not_found) = telco(
            &server,
            "/v1/_telco/sms/dlr",
            Some(TELCO_KEY),
            Some(&json!({"msg_id": unknown, "status": "delivered"})),
        )
        .await;
        assert_eq!(
            (s, not_found["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("sms_not_found")),
            "{engine:?} {not_found}"
        );
        for malformed in ["msg_1", "garbage", &flow.mid] {
            let (s, v) =
                dlr_json(&server, json!({"msg_id": malformed, "status": "delivered"})).await;
            assert_eq!(
                (s, &v),
                (StatusCode::NOT_FOUND, &not_found),
                "{engine:?} {malformed}"
            );
            let (s, v) = dlr_query(&server, &format!("msg_id={malformed}&status=delivered")).await;
            assert_eq!(
                (s, &v),
                (StatusCode::NOT_FOUND, &not_found),
                "{engine:?} {malformed}"
            );
        }
        // A form body is not one of the two accepted forms.
        let res = server
            .http
            .post(format!("{}/v1/_telco/sms/dlr", server.base))
            .header("x-telco-key", TELCO_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("msg_id={id}&status=ok"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{engine:?}"
        );
        // Nothing changed.
        assert_eq!(server.event_count().await, before, "{engine:?}");
        let (_, v) = server
            .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
            .await;
        assert_eq!(v["status"], "queued", "{engine:?} {v}");
        server.stop().await;
    }
}

#[tokio::test]
async fn inbound_traffic_to_a_killed_mid_is_refused() {
    for engine in engines() {
        let server = start(engine).await;
        let (account, key) = server.customer("Killed").await;
        let flow = server.provision(&key).await;
        let sms = json!({"from": "+34611000001", "to": flow.phone_number, "body": "hello"});
        let sandbox_path = format!("/v1/mobile-identities/{}/sandbox/inbound-sms", flow.mid);
        let sandbox_body = json!({"from": "+34611000001", "body": "hello"});
        let engagements = [
            (
                "mid",
                json!({"scope": "mid", "target_id": flow.mid, "reason": "test"}),
            ),
            (
                "account",
                json!({"scope": "account", "target_id": account, "reason": "test"}),
            ),
            ("global", json!({"scope": "global", "reason": "test"})),
        ];
        for (scope, engage) in engagements {
            let (s, ks) = server
                .post("/v1/admin/kill-switch", ADMIN_KEY, engage)
                .await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {ks}");
            let (s, v) = inbound(&server, sms.clone()).await;
            assert_eq!(
                (s, v["error"].as_str(), v["scope"].as_str()),
                (StatusCode::FORBIDDEN, Some("kill_switch"), Some(scope)),
                "{engine:?} {v}"
            );
            let (s, v) = server.post(&sandbox_path, &key, sandbox_body.clone()).await;
            assert_eq!(
                (s, v["error"].as_str(), v["scope"].as_str()),
                (StatusCode::FORBIDDEN, Some("kill_switch"), Some(scope)),
                "{engine:?} {v}"
            );
            // The carrier's own stream is refused the same way.
            server
                .running
                .services
                .apply_carrier_event(CarrierEvent::InboundSms {
                    from: "+34611000001".into(),
                    to: flow.phone_number.clone(),
                    body: "hello".into(),
                    telco_ref: format!("killed-{scope}"),
                })
                .await
                .unwrap();
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
            assert_eq!(s, StatusCode::OK, "{engine:?}");
        }
        // The customer's own stop button stops inbound traffic too.
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/suspend", flow.mid),
                &key,
                json!({"reason": "pause"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        let (s, v) = inbound(&server, sms.clone()).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("kill_switch")),
            "{engine:?} {v}"
        );
        assert!(agent_inbox(&server, &flow).await.is_empty(), "{engine:?}");
        let blocked = events(&server, &key, "sms_blocked").await;
        assert!(
            blocked.iter().all(|e| e["data"]["direction"] == "inbound"
                && e["data"]["reason"] == "kill_switch"
                && !e.to_string().contains("hello")),
            "{blocked:?}"
        );
        assert_eq!(blocked.len(), 10, "{engine:?} {blocked:?}");
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/resume", flow.mid),
                &key,
                json!({"reason": "go"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let (s, v) = inbound(&server, sms).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_eq!(agent_inbox(&server, &flow).await.len(), 1, "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn the_sandbox_inject_serves_only_the_callers_own_mids() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key_a) = server.customer("Tenant A").await;
        let (_, key_b) = server.customer("Tenant B").await;
        let a = server.provision(&key_a).await;
        let b = server.provision(&key_b).await;
        let body = json!({"from": "+34 611 000 001", "body": "sandbox says hi"});
        let path = |mid: &str| format!("/v1/mobile-identities/{mid}/sandbox/inbound-sms");

        let (s, sms) = server.post(&path(&a.mid), &key_a, body.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
        assert_eq!(
            (
                sms["direction"].as_str(),
                sms["status"].as_str(),
                sms["from"].as_str(),
                sms["to"].as_str(),
                sms["mid"].as_str()
            ),
            (
                Some("inbound"),
                Some("received"),
                Some("+34611000001"),
                Some(a.phone_number.as_str()),
                Some(a.mid.as_str())
            ),
            "{sms}"
        );
        let inbox = agent_inbox(&server, &a).await;
        assert_eq!(inbox, vec![sms.clone()], "{engine:?}");
        let received = events(&server, &key_a, "sms_inbound").await;
        assert_eq!(received.len(), 1, "{engine:?} {received:?}");
        assert_eq!(received[0]["actor"]["type"], "customer", "{received:?}");
        assert!(
            !received[0].to_string().contains("sandbox says"),
            "{received:?}"
        );

        // B aiming at A's MID gets exactly what a random id gets.
        let mut bodies = Vec::new();
        for mid in [a.mid.clone(), ami_core::id::new_id("mid"), "mid_bad".into()] {
            let res = server
                .http
                .post(format!("{}{}", server.base, path(&mid)))
                .bearer_auth(&key_b)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{engine:?} {mid}");
            bodies.push(res.bytes().await.unwrap().to_vec());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{engine:?}");
        let v: Value = serde_json::from_slice(&bodies[0]).unwrap();
        assert_eq!(v["error"], "mobile_identity_not_found", "{v}");
        assert_eq!(agent_inbox(&server, &a).await.len(), 1, "{engine:?}");
        assert!(agent_inbox(&server, &b).await.is_empty(), "{engine:?}");

        // Other credentials are not customer keys.
        for credential in [a.agent_token.as_str(), ADMIN_KEY] {
            let (s, v) = server.post(&path(&a.mid), credential, body.clone()).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{engine:?} {v}"
            );
        }
        let (s, v) = server
            .post(&path(&a.mid), &key_a, json!({"body": "no sender"}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("missing_fields")),
            "{engine:?} {v}"
        );
        server.stop().await;
    }
}

/// A server that is not a sandbox must speak to a real network: with none configured it
/// refuses to start, instead of quietly running the sandbox carrier.
#[tokio::test]
async fn a_server_that_is_not_a_sandbox_refuses_to_start_without_a_real_carrier() {
    let dir = tempfile::tempdir().unwrap();
    let env: std::collections::HashMap<String, String> = [
        ("AMI_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/ami.db", dir.path().display()),
        ),
        ("AMI_ADMIN_KEY", ADMIN_KEY.to_owned()),
        ("AMI_SANDBOX", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = ami_server::config::Config::load_from(&env).unwrap();
    let refused = ami_server::app::start(config).await.err().expect("refused");
    assert!(
        refused.to_string().contains("needs a real carrier"),
        "{refused}"
    );
    assert!(
        !dir.path().join("ami.db").exists(),
        "nothing was created before the refusal"
    );
}

#[tokio::test]
async fn carrier_events_enter_the_same_path() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Stream").await;
        let flow = server.provision(&key).await;
        let services = &server.running.services;
        let event = CarrierEvent::InboundSms {
            from: "+34611000002".into(),
            to: flow.phone_number.clone(),
            body: "from the stream".into(),
            telco_ref: "stream-1".into(),
        };
        services.apply_carrier_event(event.clone()).await.unwrap();
        // Delivered twice by the network: one message.
        services.apply_carrier_event(event).await.unwrap();
        // A number nobody holds is refused without failing the worker.
        services
            .apply_carrier_event(CarrierEvent::InboundSms {
                from: "+34611000002".into(),
                to: "+34699999999".into(),
                body: "nobody".into(),
                telco_ref: "stream-2".into(),
            })
            .await
            .unwrap();
        let inbox = agent_inbox(&server, &flow).await;
        assert_eq!(inbox.len(), 1, "{engine:?} {inbox:?}");
        assert_eq!(
            (
                inbox[0]["body"].as_str(),
                inbox[0]["from"].as_str(),
                inbox[0]["telco_ref"].as_str(),
                inbox[0]["status"].as_str()
            ),
            (
                Some("from the stream"),
                Some("+34611000002"),
                Some("stream-1"),
                Some("received")
            ),
            "{inbox:?}"
        );
        let received = events(&server, &key, "sms_inbound").await;
        assert_eq!(received.len(), 1, "{engine:?} {received:?}");
        assert_eq!(received[0]["actor"]["type"], "telco", "{received:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_telco_retry_with_an_idempotency_key_is_replayed() {
    for engine in engines() {
        let server = start(engine).await;
        let (_, key) = server.customer("Retry").await;
        let flow = server.provision(&key).await;
        let body = json!({"from": "+34611000003", "to": flow.phone_number, "body": "once"});
        let send = |telco_key: &'static str| {
            server
                .http
                .post(format!("{}/v1/_telco/sms/inbound", server.base))
                .header("x-telco-key", telco_key)
                .header("idempotency-key", "carrier-retry-1")
                .json(&body)
                .send()
        };
        let first = send(TELCO_KEY).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED, "{engine:?}");
        let first: Value = first.json().await.unwrap();
        let again = send(TELCO_KEY).await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED, "{engine:?}");
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(again.json::<Value>().await.unwrap(), first, "{engine:?}");
        let wrong = send("not-the-key").await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{engine:?}");
        assert_eq!(agent_inbox(&server, &flow).await.len(), 1, "{engine:?}");
        server.stop().await;
    }
}
