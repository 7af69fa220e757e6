//! The SMPP carrier against peers this project did not write: an SMSC on the npm `smpp`
//! package (`tests/peers/smsc.js`), bound directly and through Jasmin, an SMPP gateway.
//! Texts sent through the HTTP API reach the SMSC as submit_sm with the right coding and
//! concatenation headers, its receipts make the messages delivered and fire
//! `sms.delivered`, and its mobile-originated messages reach the agent's inbox and
//! `sms.inbound`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::peers::{Peer, jasmin_ready, node_smsc_ready};
use common::receiver::{Receiver, Reply};
use common::{Flow, LOOPBACK, TestServer, engines, mid_webhooks, register_webhook};
use reqwest::StatusCode;
use serde_json::{Value, json};

const GSM_TEXT: &str = "Hola desde AMI: 10€ @ casa {ok}";
const UCS2_TEXT: &str = "Привет, мир 👋";
const DESTINATION: &str = "+34600123456";

/// 400 GSM characters: three parts of at most 153.
fn three_part_text() -> String {
    (0..400)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

async fn send(server: &TestServer, flow: &Flow, body: &str) -> String {
    let (s, v) = server
        .post(
            "/v1/agent/sms/send",
            &flow.agent_token,
            json!({"to": DESTINATION, "body": body}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The next `parts` submit_sm lines the SMSC printed.
async fn submits(smsc: &Peer, parts: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..parts {
        seen.push(smsc.event("submit_sm", 15).await);
    }
    seen
}

/// A single-part submit_sm as the carrier must send it: from the MID's number to the
/// destination, both international, with a receipt asked for.
fn assert_single(submit: &Value, flow: &Flow, data_coding: u64, text: &str) {
    assert_eq!(submit["data_coding"], data_coding, "{submit}");
    assert_eq!(submit["text"], text, "{submit}");
    assert_eq!(submit["udh"], Value::Null, "{submit}");
    assert_eq!(submit["esm_class"].as_u64().unwrap() & 0x40, 0, "{submit}");
    assert_eq!(submit["registered_delivery"], 1, "{submit}");
    assert_eq!(
        submit["source_addr"],
        flow.phone_number.trim_start_matches('+'),
        "{submit}"
    );
    assert_eq!(
        submit["destination_addr"],
        DESTINATION.trim_start_matches('+'),
        "{submit}"
    );
    assert_eq!(
        (&submit["dest_addr_ton"], &submit["dest_addr_npi"]),
        (&json!(1), &json!(1)),
        "{submit}"
    );
}

async fn status_of(server: &TestServer, flow: &Flow, id: &str) -> Value {
    let (s, v) = server
        .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn wait_delivered(server: &TestServer, flow: &Flow, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sms = status_of(server, flow, id).await;
        if sms["status"] == "delivered" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}: {id} never became delivered: {sms}",
            server.engine
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn inbox(server: &TestServer, flow: &Flow) -> Vec<Value> {
    let (s, v) = server
        .get(
            "/v1/agent/sms?direction=inbound&limit=200",
            &flow.agent_token,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn texts_receipts_and_mobile_originated_messages_through_the_npm_smsc() {
    if !node_smsc_ready() {
        return;
    }
    for engine in engines() {
        let mut smsc = Peer::node_smsc(&[]).await;
        let port = smsc.port;
        exchange(engine, &mut smsc, port, Wire::Direct).await;
    }
}

/// Jasmin relays to the npm SMSC: AMI binds to Jasmin's SMPP server as a user made through
/// its jCli. The SMSC holds each receipt back 0.5 s: Jasmin maps a receipt to its message
/// only once the submit_sm_resp has been through its queues, and retries a receipt that
/// came first only after 10 s.
#[tokio::test]
async fn texts_receipts_and_mobile_originated_messages_through_jasmin() {
    if !node_smsc_ready() || !jasmin_ready() {
        return;
    }
    let mut smsc = Peer::node_smsc(&["--receipt-delay-ms", "500"]).await;
    let jasmin = Peer::jasmin(smsc.port).await;
    exchange(
        common::Engine::Sqlite,
        &mut smsc,
        jasmin.port,
        Wire::Relayed,
    )
    .await;
}

/// How AMI reaches the SMSC: bound to it, or through a gateway that writes its own PDUs
/// (its own addresses' TON/NPI, its own message ids and concatenation references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Direct,
    Relayed,
}

async fn exchange(engine: common::Engine, smsc: &mut Peer, port: u16, wire: Wire) {
    let connections = format!(
        r#"[{{name = "smsc1", host = "127.0.0.1", port = {}, system_id = "ami", password = "secret"}}]"#,
        port
    );
    let server = TestServer::start_with(
        engine,
        &[
            ("AMI_CARRIER", "smpp"),
            ("AMI_SMPP", &connections),
            LOOPBACK,
        ],
    )
    .await;
    let bind = smsc.event("bind", 15).await;
    assert_eq!(
        (&bind["system_id"], &bind["command_status"]),
        (&json!("ami"), &json!(0)),
        "{engine:?} {bind}"
    );
    assert!(
        ["bind_transceiver", "bind_transmitter", "bind_receiver"]
            .contains(&bind["command"].as_str().unwrap()),
        "{bind}"
    );

    let receiver = Receiver::start(Reply::ok()).await;
    let (_, key) = server.customer("Peer").await;
    let flow = server.provision(&key).await;
    // Three sends and their parts in a row: above the default of one a second.
    server
        .set_limits(&key, &flow.mid, json!({"rate_per_second": 100}))
        .await;
    register_webhook(
        &server.remote(),
        &key,
        &mid_webhooks(&flow.mid),
        &receiver.url("/hook"),
        json!(["sms.delivered", "sms.inbound"]),
    )
    .await;

    // GSM 03.38, unpacked, escapes included ('€', '{', '}').
    let gsm = send(&server, &flow, GSM_TEXT).await;
    let seen = submits(smsc, 1).await;
    assert_single(&seen[0], &flow, 0, GSM_TEXT);

    // UCS-2, a character outside the BMP included.
    let ucs2 = send(&server, &flow, UCS2_TEXT).await;
    let seen = submits(smsc, 1).await;
    assert_single(&seen[0], &flow, 8, UCS2_TEXT);
    assert_eq!(
        seen[0]["short_message"],
        UCS2_TEXT
            .encode_utf16()
            .map(|u| format!("{u:04x}"))
            .collect::<String>(),
        "{engine:?}: UCS-2 is UTF-16 big-endian"
    );

    // Three parts, each with the same concatenation reference and its own sequence.
    let long_text = three_part_text();
    let long = send(&server, &flow, &long_text).await;
    let mut parts = submits(smsc, 3).await;
    parts.sort_by_key(|p| p["udh"]["seq"].as_u64());
    let reference = &parts[0]["udh"]["ref"];
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["data_coding"], 0, "{part}");
        assert_eq!(part["esm_class"].as_u64().unwrap() & 0x40, 0x40, "{part}");
        assert!(
            !reference.is_null(),
            "{engine:?}: no concatenation UDH: {part}"
        );
        assert_eq!(
            (
                &part["udh"]["ref"],
                &part["udh"]["total"],
                &part["udh"]["seq"]
            ),
            (reference, &json!(3), &json!(i + 1)),
            "{part}"
        );
        assert!(part["text"].as_str().unwrap().chars().count() <= 153);
    }
    assert!(
        parts.iter().any(|p| p["registered_delivery"] == 1),
        "{engine:?}: no part asked for a receipt: {parts:?}"
    );
    let joined: String = parts.iter().map(|p| p["text"].as_str().unwrap()).collect();
    assert_eq!(joined, long_text, "{engine:?}");

    // The SMSC's receipts make every message delivered, each announced once.
    for id in [&gsm, &ucs2, &long] {
        wait_delivered(&server, &flow, id).await;
    }
    receiver
        .wait_until(15, "sms.delivered for the three messages", |seen| {
            [&gsm, &ucs2, &long].iter().all(|id| {
                seen.iter()
                    .any(|c| c.event() == "sms.delivered" && c.json()["data"]["id"] == **id)
            })
        })
        .await;

    // Mobile-originated messages: GSM, UCS-2 and one in two concatenated parts.
    let long_mo = "Mensaje largo en dos partes. ".repeat(6);
    let mos = [
        ("mo-gsm", "Hola agente @ 5€ {ok}", false),
        ("mo-ucs2", "¿Dónde estás? 東京", false),
        ("mo-long", long_mo.as_str(), true),
    ];
    for (id, text, long) in mos {
        smsc.mo(id, "+34611223344", &flow.phone_number, text, long);
    }
    for _ in 0..4 {
        let resp = smsc.event("mo_resp", 15).await;
        assert_eq!(resp["command_status"], 0, "{engine:?}: {resp}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let arrived = loop {
        let arrived = inbox(&server, &flow).await;
        if arrived.len() >= mos.len() || Instant::now() > deadline {
            break arrived;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut bodies: Vec<&str> = arrived
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    bodies.sort_unstable();
    let mut expected: Vec<&str> = mos.iter().map(|(_, text, _)| *text).collect();
    expected.sort_unstable();
    assert_eq!(bodies, expected, "{engine:?}: {arrived:?}");
    for m in &arrived {
        assert_eq!(
            (&m["from"], &m["to"], &m["direction"]),
            (
                &json!("+34611223344"),
                &json!(flow.phone_number),
                &json!("inbound")
            ),
            "{m}"
        );
    }
    receiver
        .wait_until(15, "sms.inbound for the three messages", |seen| {
            mos.iter().all(|(_, text, _)| {
                seen.iter()
                    .any(|c| c.event() == "sms.inbound" && c.json()["data"]["body"] == *text)
            })
        })
        .await;

    server.stop().await;
    if wire == Wire::Direct {
        // A clean stop unbinds.
        smsc.event("unbind", 10).await;
    }
}
