//! Calls over SIP end to end (`call_carrier = "sip"`), with SIPp, an independent SIP
//! implementation, as the trunk and as the customer's SIP engine: an outbound call rings,
//! is answered, bridged to its callback URI and hung up by the callee; a busy callee; a
//! hang-up before the answer (CANCEL); the kill-switch ending an answered call (BYE); and
//! inbound calls bridged to the MID's `inbound_sip_uri`, refused from a foreign address
//! and to an unknown number.
//!
//! SQLite only: the call state machine under both engines is covered by `calls.rs`; here
//! the subject is what the network sees and what it makes of the call record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, Engine, Flow, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Whether SIPp can run; without it a test skips, except under CI where it fails.
fn sipp_ready() -> bool {
    let found = std::process::Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "sipp is not installed (Debian package sip-tester); CI must have it"
        );
        eprintln!("skipped: sipp is not installed (apt-get install sip-tester)");
    }
    found
}

fn free_port(ip: &str) -> u16 {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.local_addr().unwrap().port()
}

fn scenario(name: &str) -> String {
    format!("{}/tests/sip/{name}.xml", env!("CARGO_MANIFEST_DIR"))
}

/// SIPp running one call of a scenario.
struct Sipp {
    child: Child,
}

impl Sipp {
    /// Answering on 127.0.0.1:`port`.
    async fn uas(name: &str, port: u16) -> Sipp {
        let sipp = Sipp::spawn(name, "127.0.0.1", port, &[]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        sipp
    }

    /// Calling `service` at `target` from `ip`.
    fn uac(name: &str, ip: &str, target: SocketAddr, service: &str) -> Sipp {
        let target = target.to_string();
        Sipp::spawn(name, ip, free_port(ip), &["-s", service, &target])
    }

    fn spawn(name: &str, ip: &str, port: u16, extra: &[&str]) -> Sipp {
        let port = port.to_string();
        let child = Command::new("sipp")
            .args(["-sf", &scenario(name), "-i", ip, "-p", &port])
            .args(["-m", "1", "-nostdin", "-timeout", "25", "-timeout_error"])
            .args(["-mi", ip, "-mp", &free_port(ip).to_string()])
            .args(extra)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Sipp { child }
    }

    /// Waits for SIPp to finish; true when its call passed the whole scenario.
    async fn passed(self) -> bool {
        let out = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .expect("sipp ends within 30 s")
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "sipp exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }
}

/// A server whose calls go over SIP to a trunk at 127.0.0.1:`trunk_port`.
async fn server(trunk_port: u16) -> (TestServer, SocketAddr) {
    let sip_port = free_port("127.0.0.1");
    let rtp_first = 30_000 + (sip_port % 1_000) * 20;
    // One line: TOML inline tables do not span lines.
    let sip = format!(
        "{{listen_udp = \"127.0.0.1:{sip_port}\", listen_tcp = \"\", public_host = \"\", \
         rtp_port_first = {rtp_first}, rtp_port_last = {}, codecs = [\"PCMU\", \"PCMA\"], \
         ring_timeout_secs = 20}}",
        rtp_first + 19
    );
    let trunks = format!(
        r#"[{{name = "test", proxy = "127.0.0.1:{trunk_port}", allowed_sources = ["127.0.0.1/32"]}}]"#
    );
    let server = TestServer::start_with(
        Engine::Sqlite,
        &[
            ("AMI_CALL_CARRIER", "sip"),
            ("AMI_SIP", &sip),
            ("AMI_SIP_TRUNKS", &trunks),
        ],
    )
    .await;
    let addr = server
        .running
        .sip
        .as_ref()
        .expect("the SIP carrier")
        .local_addrs()[0];
    (server, addr)
}

/// A provisioned MID with limits out of the way.
async fn agent(server: &TestServer) -> (String, Flow) {
    let (_, key) = server.customer("Caller").await;
    let flow = server.provision(&key).await;
    let limits = json!({"rate_per_second": 1000, "calls_per_hour": 1000, "calls_per_day": 1000,
                        "calls_per_destination_per_hour": 1000, "calls_per_destination_per_day": 1000});
    let (s, v) = server
        .post(
            &format!("/v1/mobile-identities/{}/limits", flow.mid),
            &key,
            limits,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (key, flow)
}

async fn place(server: &TestServer, flow: &Flow, to: &str, callback: &str) -> String {
    let (s, call) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": to, "callback_sip_uri": callback}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{call}");
    call["id"].as_str().unwrap().to_owned()
}

/// Polls the call until `done` holds (15 s at most); the call and every status seen.
async fn wait_for(
    server: &TestServer,
    flow: &Flow,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (s, call) = server
            .get(&format!("/v1/agent/calls/{id}"), &flow.agent_token)
            .await;
        assert_eq!(s, StatusCode::OK, "{call}");
        let status = call["status"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        if done(&call) {
            return (call, seen);
        }
        assert!(
            Instant::now() < deadline,
            "call never {what}; last {call}, seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |c| c["status"] == status
}

/// The customer's audit actions about calls, oldest first.
async fn call_actions(server: &TestServer, key: &str) -> Vec<String> {
    let (s, v) = server.get("/v1/events?limit=1000", key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut actions: Vec<String> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .filter(|a| a.starts_with("call_"))
        .collect();
    actions.reverse();
    actions
}

#[tokio::test]
async fn an_outbound_call_rings_is_answered_bridged_and_hung_up_by_the_callee() {
    if !sipp_ready() {
        return;
    }
    let (trunk_port, engine_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let trunk = Sipp::uas("uas_answer_then_bye", trunk_port).await;
    let engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    let (server, _) = server(trunk_port).await;
    let (key, flow) = agent(&server).await;
    let callback = format!("sip:agent@127.0.0.1:{engine_port}");
    let id = place(&server, &flow, "+34600123456", &callback).await;
    let (answered, _) = wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    let (_, health) = server.get("/v1/health", ADMIN_KEY).await;
    assert_eq!(
        (
            &health["telco"]["calls"]["carrier"],
            &health["telco"]["calls"]["live"]
        ),
        (&json!("sip"), &json!(1)),
        "{health}"
    );
    // The callee stays on the line for about a second.
    server.clock.0.fetch_add(1_000, Ordering::SeqCst);
    let (done, seen) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    assert!(trunk.passed().await, "the trunk's scenario");
    assert!(engine.passed().await, "the SIP engine got its BYE");
    let seen: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "initiated")
        .collect();
    assert!(
        seen.iter()
            .all(|s| ["ringing", "in_progress", "completed"].contains(s)),
        "{seen:?}"
    );
    assert_eq!(done["hangup_cause"], "hangup_by_callee", "{done}");
    assert_eq!(done["cost_eur"], json!(0.05), "{done}");
    assert_eq!(done["telco_ref"], answered["telco_ref"], "{done}");
    assert!(done["answered_at"].is_string(), "{done}");
    assert_eq!(
        call_actions(&server, &key).await,
        [
            "call_placed",
            "call_ringing",
            "call_in_progress",
            "call_completed"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_busy_callee_makes_a_busy_call() {
    if !sipp_ready() {
        return;
    }
    let trunk_port = free_port("127.0.0.1");
    let trunk = Sipp::uas("uas_busy", trunk_port).await;
    let (server, _) = server(trunk_port).await;
    let (_, flow) = agent(&server).await;
    let id = place(&server, &flow, "+34600123456", "sip:agent@127.0.0.1:9").await;
    let (done, _) = wait_for(&server, &flow, &id, "busy", |c| {
        c["status"] != "initiated" && c["status"] != "ringing"
    })
    .await;
    assert_eq!(done["status"], "busy", "{done}");
    assert_eq!(done["cost_eur"], json!(0.0), "{done}");
    assert!(trunk.passed().await);
    server.stop().await;
}

#[tokio::test]
async fn an_agent_hang_up_before_the_answer_cancels_the_invite() {
    if !sipp_ready() {
        return;
    }
    let trunk_port = free_port("127.0.0.1");
    let trunk = Sipp::uas("uas_ring_until_cancel", trunk_port).await;
    let (server, _) = server(trunk_port).await;
    let (_, flow) = agent(&server).await;
    let id = place(&server, &flow, "+34600123456", "sip:agent@127.0.0.1:9").await;
    wait_for(&server, &flow, &id, "ringing", status_is("ringing")).await;
    let (s, hung) = server
        .post(
            &format!("/v1/agent/calls/{id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{hung}");
    assert_eq!(
        (hung["status"].as_str(), hung["hangup_cause"].as_str()),
        (Some("cancelled"), Some("hangup_by_agent")),
        "{hung}"
    );
    // The trunk's scenario requires our CANCEL (and the ACK of its 487).
    assert!(trunk.passed().await, "the trunk got CANCEL");
    let (after, _) = wait_for(&server, &flow, &id, "settled", status_is("cancelled")).await;
    assert_eq!(after["hangup_cause"], "hangup_by_agent", "{after}");
    server.stop().await;
}

#[tokio::test]
async fn the_kill_switch_ends_an_answered_call_with_a_bye() {
    if !sipp_ready() {
        return;
    }
    let (trunk_port, engine_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let trunk = Sipp::uas("uas_answer_wait_bye", trunk_port).await;
    let engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    let (server, _) = server(trunk_port).await;
    let (_, flow) = agent(&server).await;
    let callback = format!("sip:agent@127.0.0.1:{engine_port}");
    let id = place(&server, &flow, "+34600123456", &callback).await;
    wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    let engaged = Instant::now();
    let (s, ks) = server
        .post(
            "/v1/admin/kill-switch",
            ADMIN_KEY,
            json!({"scope": "mid", "target_id": flow.mid, "reason": "test"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ks}");
    // Both scenarios end only on our BYE.
    assert!(trunk.passed().await, "the trunk got BYE");
    assert!(
        engaged.elapsed() < Duration::from_secs(3),
        "BYE after {:?}",
        engaged.elapsed()
    );
    assert!(engine.passed().await, "the SIP engine got BYE");
    let (done, _) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    assert_eq!(done["hangup_cause"], "kill_switch", "{done}");
    server.stop().await;
}

#[tokio::test]
async fn inbound_calls_are_bridged_to_the_mid_or_refused() {
    if !sipp_ready() {
        return;
    }
    let engine_port = free_port("127.0.0.1");
    let engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    // No outbound call here: the trunk's proxy is never used.
    let (server, sip_addr) = server(free_port("127.0.0.1")).await;
    let (key, flow) = agent(&server).await;
    let (s, v) = server
        .post(
            &format!("/v1/mobile-identities/{}/inbound-config", flow.mid),
            &key,
            json!({"inbound_sip_uri": format!("sip:agent@127.0.0.1:{engine_port}")}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let caller = Sipp::uac(
        "uac_call_then_bye",
        "127.0.0.1",
        sip_addr,
        &flow.phone_number,
    );
    assert!(caller.passed().await, "the caller was answered");
    assert!(
        engine.passed().await,
        "the MID's engine answered and got BYE"
    );
    let (s, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let id = list["calls"][0]["id"].as_str().unwrap().to_owned();
    let (done, _) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    assert_eq!(done["hangup_cause"], "hangup_by_caller", "{done}");
    assert!(done["answered_at"].is_string(), "{done}");
    let actions = call_actions(&server, &key).await;
    assert!(
        actions.first().map(String::as_str) == Some("call_received")
            && actions.last().map(String::as_str) == Some("call_completed"),
        "{actions:?}"
    );

    // From an address no trunk lists: 403 before anything is decided.
    let foreign = Sipp::uac("uac_expect_403", "127.0.0.2", sip_addr, &flow.phone_number);
    assert!(foreign.passed().await, "403 to a foreign source");
    // To a number no MID has: 404.
    let unknown = Sipp::uac("uac_expect_404", "127.0.0.1", sip_addr, "+34699999999");
    assert!(unknown.passed().await, "404 to an unknown number");
    let (_, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(list["count"], 1, "{list}");
    server.stop().await;
}
