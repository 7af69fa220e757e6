//! The SMPP carrier against the project's SMSC simulator: what reaches the SMSC, receipts and
//! mobile-originated messages back through the API, and the faults a real SMSC shows
//! (throttling, a connection dropped with a full window, late and out-of-order responses,
//! receipts before responses, unbinds, garbage). Nothing accepted is lost, nothing is
//! submitted twice, the server never stops answering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use ami_smsc_sim::{Faults, MoCoding, SimConfig, Smsc, SubmitAnswer, Trigger};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{ADMIN_KEY, Engine, Flow, TestServer};

const SYSTEM_ID: &str = "ami";
const PASSWORD: &str = "secret";

async fn smsc() -> Smsc {
    Smsc::start(SimConfig::with_credentials(SYSTEM_ID, PASSWORD))
        .await
        .unwrap()
}

/// `[[smpp]]` for connections to the given SMSCs, named `c0`, `c1`, ...
fn connections(smscs: &[&Smsc], extra: &str) -> String {
    let entries: Vec<String> = smscs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                r#"{{name = "c{i}", host = "127.0.0.1", port = {}, system_id = "{SYSTEM_ID}", password = "{PASSWORD}", reconnect_min_ms = 50, reconnect_max_ms = 200, response_timeout_ms = 2000{extra}}}"#,
                s.addr().port()
            )
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

async fn server(smscs: &[&Smsc], extra: &str, env: &[(&str, &str)]) -> TestServer {
    let smpp = connections(smscs, extra);
    let mut all = vec![("AMI_CARRIER", "smpp"), ("AMI_SMPP", smpp.as_str())];
    all.extend_from_slice(env);
    TestServer::start_with(Engine::Sqlite, &all).await
}

/// A customer with one MID whose limits let a test send freely.
async fn agent(server: &TestServer) -> (String, Flow) {
    let (_, key) = server.customer("smpp").await;
    let flow = server.provision(&key).await;
    server
        .set_limits(
            &key,
            &flow.mid,
            json!({"rate_per_second": 1000, "sms_per_hour": 100_000,
                   "sms_per_day": 100_000, "sms_per_destination_per_hour": 1000,
                   "sms_per_destination_per_day": 1000, "monthly_budget_eur": 1000,
                   "allowed_country_prefixes": ["+34", "+57"]}),
        )
        .await;
    (key, flow)
}

async fn send(server: &TestServer, flow: &Flow, to: &str, body: &str) -> Value {
    let (s, v) = server
        .post(
            "/v1/agent/sms/send",
            &flow.agent_token,
            json!({"to": to, "body": body}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

fn id(sent: &Value) -> String {
    sent["id"].as_str().unwrap().to_owned()
}

async fn status_of(server: &TestServer, flow: &Flow, id: &str) -> Value {
    let (s, v) = server
        .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Waits until every message has one of `statuses`; returns their final views. The server's
/// clock (a test clock) moves a second per look, so that messages waiting for a connection
/// are offered again.
async fn settled(
    server: &TestServer,
    flow: &Flow,
    ids: &[String],
    statuses: &[&str],
    secs: u64,
) -> Vec<Value> {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let mut views = Vec::new();
        for id in ids {
            views.push(status_of(server, flow, id).await);
        }
        if views
            .iter()
            .all(|v| statuses.contains(&v["status"].as_str().unwrap_or_default()))
        {
            return views;
        }
        assert!(
            std::time::Instant::now() < until,
            "not settled in {secs} s: {views:?}"
        );
        server
            .clock
            .0
            .fetch_add(1000, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SMSC's accepted submissions per destination: each message's destination is unique in
/// these tests, so a count above its part count is a duplicate.
fn accepted_per_destination(smsc: &Smsc) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for s in smsc.submits() {
        if matches!(s.answer, SubmitAnswer::Accepted { .. }) {
            *counts.entry(s.destination_addr).or_default() += 1;
        }
    }
    counts
}

fn destination(i: usize) -> String {
    format!("+3461{:07}", i)
}

#[tokio::test]
async fn texts_reach_the_smsc_in_their_coding_and_receipts_deliver_them() {
    let smsc = smsc().await;
    let server = server(&[&smsc], "", &[]).await;
    let (_, flow) = agent(&server).await;
    let gsm = send(&server, &flow, "+34612000001", "Hola {amigo} [1] ~ €").await;
    let ucs2 = send(&server, &flow, "+34612000002", "Привет, мир 👋").await;
    let long_body = "Long message part text. ".repeat(17);
    let long = send(&server, &flow, "+34612000003", &long_body).await;
    assert_eq!(long["segments"], 3, "{long}");
    let ids: Vec<String> = [&gsm, &ucs2, &long].iter().map(|v| id(v)).collect();
    let views = settled(&server, &flow, &ids, &["delivered"], 20).await;
    for v in &views {
        assert!(
            v["telco_ref"].as_str().is_some_and(|r| !r.is_empty()),
            "{v}"
        );
    }
    let submits = smsc.submits();
    let to = |n: &str| -> Vec<_> {
        submits
            .iter()
            .filter(|s| s.destination_addr == n)
            .cloned()
            .collect()
    };
    let gsm_parts = to("34612000001");
    assert_eq!(gsm_parts.len(), 1);
    assert_eq!(gsm_parts[0].data_coding, 0);
    assert_eq!(gsm_parts[0].registered_delivery & 1, 1);
    assert_eq!(gsm_parts[0].dest_addr_ton, 1);
    assert_eq!(
        gsm_parts[0].source_addr,
        flow.phone_number.trim_start_matches('+')
    );
    // `{`, `}`, `[`, `]`, `~` and `€` are escapes of the extension table: two septets each.
    assert_eq!(gsm_parts[0].short_message.len(), 20 + 6);
    let ucs2_parts = to("34612000002");
    assert_eq!(ucs2_parts.len(), 1);
    assert_eq!(ucs2_parts[0].data_coding, 8);
    let text: Vec<u16> = ucs2_parts[0]
        .short_message
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(String::from_utf16(&text).unwrap(), "Привет, мир 👋");
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"ami_smpp_bound{connection="c0",role="transceiver"} 1"#,
        r#"ami_smpp_window_size{connection="c0",role="transceiver"} 10"#,
        r#"ami_smpp_submits_total{connection="c0",role="transceiver"} 5"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    let long_parts = to("34612000003");
    assert_eq!(
        long_parts.len(),
        3,
        "the parts agree with the segments charged"
    );
    for (i, part) in long_parts.iter().enumerate() {
        assert_eq!(part.esm_class & 0x40, 0x40, "UDH indicator");
        assert_eq!(&part.short_message[..3], &[5, 0, 3]);
        assert_eq!(part.short_message[4], 3);
        assert_eq!(usize::from(part.short_message[5]), i + 1);
    }
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn a_receipt_reaches_the_webhook_as_sms_delivered() {
    let smsc = smsc().await;
    let server = server(&[&smsc], "", &[common::LOOPBACK]).await;
    let (key, flow) = agent(&server).await;
    let receiver = common::receiver::Receiver::start(common::receiver::Reply::ok()).await;
    common::register_webhook(
        &server.remote(),
        &key,
        &common::mid_webhooks(&flow.mid),
        &receiver.url("/hook"),
        json!(["sms.delivered"]),
    )
    .await;
    let sent = send(&server, &flow, "+34612000009", "receipt please").await;
    let sent = id(&sent);
    receiver
        .wait_until(20, "sms.delivered", |seen| {
            seen.iter().any(|c| {
                c.event() == "sms.delivered"
                    && c.json()["data"]["id"].as_str() == Some(sent.as_str())
            })
        })
        .await;
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn mobile_originated_messages_reach_the_agent_whole_and_are_answered_after_commit() {
    let smsc = smsc().await;
    let server = server(&[&smsc], "", &[]).await;
    let (_, flow) = agent(&server).await;
    assert!(
        smsc.wait_until(Duration::from_secs(10), |s| !s.binds().is_empty())
            .await
    );
    let long_text = "Ответ агенту: ".repeat(12);
    let parts = smsc
        .send_mo(
            "+34699000001",
            &flow.phone_number,
            &long_text,
            MoCoding::Ucs2,
        )
        .unwrap();
    assert!(parts > 1);
    smsc.send_mo(
        "+34699000002",
        &flow.phone_number,
        "short [gsm]",
        MoCoding::Gsm7,
    )
    .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    let inbox = loop {
        let (s, v) = server
            .get("/v1/agent/sms?direction=inbound", &flow.agent_token)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let items = v["messages"].as_array().cloned().unwrap_or_default();
        if items.len() >= 2 || std::time::Instant::now() > until {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bodies: Vec<&str> = inbox.iter().filter_map(|m| m["body"].as_str()).collect();
    assert!(bodies.contains(&long_text.as_str()), "{inbox:?}");
    assert!(bodies.contains(&"short [gsm]"), "{inbox:?}");
    assert_eq!(inbox.len(), 2, "each message once: {inbox:?}");
    assert!(
        smsc.wait_until(Duration::from_secs(10), |s| {
            s.counters().deliver_sm_acknowledged > parts as u64
        })
        .await,
        "every part and the short message answered: {:?}",
        smsc.counters()
    );
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn a_destination_without_a_route_is_refused_before_anything_is_reserved() {
    let smsc = smsc().await;
    let routes = r#"[{prefix = "+57", connections = ["c0"]}]"#;
    let server = server(&[&smsc], "", &[("AMI_SMPP_ROUTES", routes)]).await;
    let (key, flow) = agent(&server).await;
    let before = server
        .get(&format!("/v1/mobile-identities/{}/usage", flow.mid), &key)
        .await;
    let (s, v) = server
        .post(
            "/v1/agent/sms/send",
            &flow.agent_token,
            json!({"to": "+34612000001", "body": "nowhere"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "destination_not_routable", "{v}");
    let after = server
        .get(&format!("/v1/mobile-identities/{}/usage", flow.mid), &key)
        .await;
    assert_eq!(before, after, "nothing reserved or counted");
    let routed = send(&server, &flow, "+573001234567", "routed").await;
    settled(&server, &flow, &[id(&routed)], &["delivered"], 20).await;
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn throttling_waits_and_nothing_is_sent_twice_or_lost() {
    let smsc = smsc().await;
    smsc.set_faults(Faults {
        throttle: Some(Trigger::EveryKth(3)),
        queue_full: Some(Trigger::Next(2)),
        ..Faults::default()
    });
    let server = server(&[&smsc], ", window = 4, max_per_second = 200", &[]).await;
    let (_, flow) = agent(&server).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let v = send(&server, &flow, &destination(i), "throttled").await;
        ids.push(id(&v));
    }
    settled(&server, &flow, &ids, &["delivered"], 60).await;
    let counts = accepted_per_destination(&smsc);
    for i in 0..40 {
        assert_eq!(counts.get(&destination(i)[1..]), Some(&1), "{counts:?}");
    }
    let c = smsc.counters();
    assert!(
        c.responses_with(0x58) > 0 && c.responses_with(0x14) > 0,
        "{c:?}"
    );
    assert!(c.max_outstanding <= 4, "window exceeded: {c:?}");
    assert!(c.max_submits_per_second <= 200, "cap exceeded: {c:?}");
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn a_connection_dropped_with_a_full_window_loses_nothing_and_sends_nothing_twice() {
    let smsc = smsc().await;
    smsc.set_faults(Faults {
        drop_connection_at_submit: Some(6),
        response_delay: Some(ami_smsc_sim::ResponseDelay::Fixed(Duration::from_millis(
            200,
        ))),
        ..Faults::default()
    });
    let server = server(&[&smsc], ", window = 5", &[]).await;
    let (_, flow) = agent(&server).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let v = send(&server, &flow, &destination(100 + i), "dropped").await;
        ids.push(id(&v));
    }
    let views = settled(&server, &flow, &ids, &["delivered", "unknown"], 60).await;
    let counts = accepted_per_destination(&smsc);
    let submitted: HashMap<String, usize> =
        smsc.submits().into_iter().fold(HashMap::new(), |mut m, s| {
            *m.entry(s.destination_addr).or_default() += 1;
            m
        });
    for (i, v) in views.iter().enumerate() {
        let to = destination(100 + i)[1..].to_owned();
        assert!(
            submitted.get(&to).copied().unwrap_or(0) <= 1,
            "submitted at most once: {v}"
        );
        // An `unknown` one was in the window when the link dropped: it may have arrived
        // (its response was lost) or not; either way it was sent once.
        if v["status"] == "delivered" {
            assert_eq!(counts.get(&to), Some(&1), "{v}");
        }
    }
    assert!(
        views.iter().any(|v| v["status"] == "unknown"),
        "the drop caught some in flight: {views:?}"
    );
    assert!(smsc.counters().binds >= 2, "bound again");
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn late_reordered_responses_and_receipts_before_responses_all_land() {
    let smsc = smsc().await;
    smsc.set_faults(Faults {
        reverse_order_window: Some(3),
        receipt_before_response: true,
        response_delay: Some(ami_smsc_sim::ResponseDelay::Random(
            Duration::from_millis(10)..Duration::from_millis(300),
        )),
        ..Faults::default()
    });
    let server = server(&[&smsc], ", window = 6", &[]).await;
    let (_, flow) = agent(&server).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let v = send(&server, &flow, &destination(200 + i), "early receipt").await;
        ids.push(id(&v));
    }
    settled(&server, &flow, &ids, &["delivered"], 60).await;
    let counts = accepted_per_destination(&smsc);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn generic_nack_makes_the_outcome_unknown_and_it_is_never_resent() {
    let smsc = smsc().await;
    smsc.set_faults(Faults {
        generic_nack: Some(Trigger::Next(1)),
        ..Faults::default()
    });
    let server = server(&[&smsc], "", &[]).await;
    let (_, flow) = agent(&server).await;
    let nacked = send(&server, &flow, &destination(300), "nacked").await;
    let nacked = id(&nacked);
    let views = settled(
        &server,
        &flow,
        std::slice::from_ref(&nacked),
        &["unknown"],
        20,
    )
    .await;
    assert_eq!(views[0]["status"], "unknown");
    let next = send(&server, &flow, &destination(301), "fine").await;
    settled(&server, &flow, &[id(&next)], &["delivered"], 20).await;
    let submits = smsc.submits();
    assert_eq!(
        submits
            .iter()
            .filter(|s| s.destination_addr == destination(300)[1..])
            .count(),
        1,
        "never resent"
    );
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn permanent_errors_fail_the_message_and_return_its_reservation() {
    let smsc = smsc().await;
    smsc.set_faults(Faults {
        reject_destination_prefixes: vec!["34666".into()],
        ..Faults::default()
    });
    let server = server(&[&smsc], "", &[]).await;
    let (_, flow) = agent(&server).await;
    let refused = send(&server, &flow, "+34666000001", "refused").await;
    let views = settled(&server, &flow, &[id(&refused)], &["failed"], 20).await;
    assert_eq!(views[0]["error"], "ESME_RINVDSTADR", "{}", views[0]);
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn an_unbind_or_garbage_from_the_smsc_is_survived_and_sending_goes_on() {
    let smsc = smsc().await;
    let server = server(&[&smsc], "", &[]).await;
    let (_, flow) = agent(&server).await;
    assert!(
        smsc.wait_until(Duration::from_secs(10), |s| !s.binds().is_empty())
            .await
    );
    assert_eq!(smsc.send_unbind(), 1);
    assert!(
        smsc.wait_until(Duration::from_secs(10), |s| s.counters().binds >= 2)
            .await,
        "bound again after the unbind"
    );
    smsc.send_garbage(64);
    let first = send(&server, &flow, &destination(400), "after the garbage").await;
    settled(&server, &flow, &[id(&first)], &["delivered"], 20).await;
    let (s, _) = server.get("/v1/health", "").await;
    assert_eq!(s, StatusCode::OK);
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn while_every_route_is_down_messages_wait_queued_and_leave_when_a_bind_returns() {
    // A port with nothing behind it yet: the simulator starts there later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smpp = format!(
        r#"[{{name = "late", host = "127.0.0.1", port = {port}, system_id = "{SYSTEM_ID}", password = "{PASSWORD}", reconnect_min_ms = 50, reconnect_max_ms = 200, response_timeout_ms = 2000}}]"#
    );
    let server = TestServer::start_with(
        Engine::Sqlite,
        &[("AMI_CARRIER", "smpp"), ("AMI_SMPP", smpp.as_str())],
    )
    .await;
    let (_, flow) = agent(&server).await;
    let waiting = send(&server, &flow, &destination(500), "waits").await;
    let waiting = id(&waiting);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status_of(&server, &flow, &waiting).await["status"],
        "queued"
    );
    let health = server.get("/v1/health", ADMIN_KEY).await.1;
    assert_eq!(health["telco"]["binds_up"], 0, "{health}");
    let session = &health["telco"]["sessions"][0];
    assert_eq!(session["bound"], false, "{health}");
    assert!(
        session["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connecting")),
        "{health}"
    );
    let mut config = SimConfig::with_credentials(SYSTEM_ID, PASSWORD);
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let smsc = Smsc::start(config).await.unwrap();
    settled(&server, &flow, &[waiting], &["delivered"], 30).await;
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_is_reported_in_health_and_the_api_stays_up() {
    let smsc = Smsc::start(SimConfig::with_credentials(SYSTEM_ID, "other"))
        .await
        .unwrap();
    let server = server(&[&smsc], "", &[]).await;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, health) = server.get("/v1/health", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK);
        let error = health["telco"]["sessions"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if error.contains("ESME_RINVPASWD") {
            break;
        }
        assert!(std::time::Instant::now() < until, "{health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, public) = server.get("/v1/health", "").await;
    assert!(
        public["telco"].get("sessions").is_none(),
        "operator view only: {public}"
    );
    assert!(
        smsc.wait_until(Duration::from_secs(10), |s| s.counters().bind_refusals >= 2)
            .await,
        "retried"
    );
    server.stop().await;
    smsc.shutdown().await;
}

#[tokio::test]
async fn a_route_fails_over_to_its_next_connection_while_the_first_is_down() {
    let (first, second) = (smsc().await, smsc().await);
    let smpp = connections(&[&first, &second], "");
    let routes = r#"[{prefix = "+34", connections = ["c0", "c1"]}]"#;
    let server = TestServer::start_with(
        Engine::Sqlite,
        &[
            ("AMI_CARRIER", "smpp"),
            ("AMI_SMPP", smpp.as_str()),
            ("AMI_SMPP_ROUTES", routes),
        ],
    )
    .await;
    let (_, flow) = agent(&server).await;
    assert!(
        first
            .wait_until(Duration::from_secs(10), |s| !s.binds().is_empty())
            .await
    );
    let preferred = send(&server, &flow, &destination(600), "first choice").await;
    settled(&server, &flow, &[id(&preferred)], &["delivered"], 20).await;
    assert_eq!(first.counters().submits, 1);
    first.shutdown().await;
    let failed_over = send(&server, &flow, &destination(601), "second choice").await;
    settled(&server, &flow, &[id(&failed_over)], &["delivered"], 30).await;
    assert_eq!(second.counters().submits, 1, "{:?}", second.counters());
    server.stop().await;
    second.shutdown().await;
}
