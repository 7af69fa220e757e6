//! The SIP carrier with an agent on a WebSocket: SIPp plays the trunk, a local WebSocket
//! server plays the agent. An outbound call streams to the agent and the agent's `stop`
//! hangs it up (BYE); an inbound call is answered, streamed, and ended by the caller's BYE;
//! an agent that cannot be reached ends the answered call cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::UdpSocket;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ami_carrier::{AgentStream, Carrier, CarrierEvent, Inbound, OutboundCall};
use ami_core::delivery::CallStatus;
use ami_voice::{
    BridgeConfig, CallDirectory, Codec, DirectoryFuture, InboundRoute, NumberFormat, SipCarrier,
    SipSettings, Transport, Trunk, VoiceSettings,
};
use ami_webhooks::{AllowSubnets, Guard};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

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

fn free_port() -> u16 {
    UdpSocket::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Sipp(Child);

impl Sipp {
    fn spawn(name: &str, port: u16, extra: &[&str]) -> Sipp {
        let scenario = format!("{}/tests/scenarios/{name}.xml", env!("CARGO_MANIFEST_DIR"));
        let child = Command::new("sipp")
            .args(["-sf", &scenario, "-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "25", "-timeout_error"])
            .args(["-mi", "127.0.0.1", "-mp", &free_port().to_string()])
            .args(extra)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        Sipp(child)
    }

    async fn passed(self) -> bool {
        let out = tokio::time::timeout(Duration::from_secs(30), self.0.wait_with_output())
            .await
            .expect("sipp ends within 30 s")
            .unwrap();
        if !out.status.success() {
            eprintln!("sipp: {}", String::from_utf8_lossy(&out.stderr));
        }
        out.status.success()
    }
}

/// Every inbound call goes to the agent at `voice_url`.
struct ToAgent {
    voice_url: String,
}

impl CallDirectory for ToAgent {
    fn route_inbound(
        &self,
        _from: Option<String>,
        _to: String,
        _telco_ref: String,
    ) -> DirectoryFuture<'_> {
        Box::pin(async move {
            InboundRoute::Agent {
                call_id: "call_inbound1".into(),
                mid_id: "mid_1".into(),
                account_id: "acct_1".into(),
                voice_url: self.voice_url.clone(),
                signing_secret: SECRET.into(),
            }
        })
    }
}

async fn carrier(
    trunk_port: u16,
    voice_url: &str,
) -> (SipCarrier, mpsc::UnboundedReceiver<Inbound>) {
    let trunk = Trunk {
        name: "test".into(),
        proxy: format!("127.0.0.1:{trunk_port}"),
        transport: Transport::Udp,
        username: None,
        password: None,
        realm: None,
        register: false,
        register_expiry_secs: 3600,
        allowed_sources: vec!["127.0.0.1/32".parse().unwrap()],
        number_format: NumberFormat::E164,
    };
    let mut sip = SipSettings::new(Some("127.0.0.1:0".parse().unwrap()), vec![trunk]);
    sip.t1_ms = 100;
    let first = 40_000 + (free_port() % 500) * 20;
    let settings = VoiceSettings {
        sip,
        rtp_port_first: first,
        rtp_port_last: first + 19,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        bridge: BridgeConfig::default(),
        guard: Guard::new(AllowSubnets::parse("127.0.0.0/8").unwrap()),
    };
    let (events, rx) = mpsc::unbounded_channel();
    let directory = Arc::new(ToAgent {
        voice_url: voice_url.into(),
    });
    let carrier = SipCarrier::start(settings, directory, events)
        .await
        .unwrap();
    (carrier, rx)
}

/// The statuses of `call_id` until its last one (15 s at most).
async fn statuses(
    rx: &mut mpsc::UnboundedReceiver<Inbound>,
    call_id: &str,
) -> Vec<(CallStatus, Option<String>)> {
    let mut seen = Vec::new();
    loop {
        let inbound = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("an event within 15 s")
            .expect("events flow");
        let CarrierEvent::Call {
            call_id: id,
            status,
            hangup_cause,
            ..
        } = inbound.event
        else {
            panic!("not a call event: {:?}", inbound.event);
        };
        assert_eq!(id, call_id);
        let terminal = status.is_terminal();
        seen.push((status, hangup_cause));
        if terminal {
            return seen;
        }
    }
}

/// An agent that reads `connected` and `start`, hands back the start frame, then sends
/// `stop` after `hold` (or waits for the server's `stop` when `hold` is None).
async fn agent(hold: Option<Duration>) -> (String, tokio::task::JoinHandle<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/voice", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut frames = Vec::new();
        while frames.len() < 2 {
            if let Some(Ok(Message::Text(text))) = ws.next().await {
                frames.push(serde_json::from_str::<Value>(&text).unwrap());
            }
        }
        assert_eq!(frames[0]["event"], "connected", "{frames:?}");
        let start = frames[1].clone();
        match hold {
            Some(hold) => {
                tokio::time::sleep(hold).await;
                ws.send(Message::text(r#"{"event":"stop"}"#)).await.unwrap();
                // The server closes the socket once it has ended the call.
                while let Some(Ok(_)) = ws.next().await {}
            }
            None => {
                let mut stopped = false;
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(text) = msg
                        && serde_json::from_str::<Value>(&text).unwrap()["event"] == "stop"
                    {
                        stopped = true;
                    }
                }
                assert!(stopped, "the agent was told `stop`");
            }
        }
        start
    });
    (url, task)
}

#[tokio::test]
async fn an_outbound_call_streams_to_the_agent_until_the_agent_stops() {
    if !sipp_ready() {
        return;
    }
    let trunk_port = free_port();
    let trunk = Sipp::spawn("uas_answer_wait_bye", trunk_port, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (url, agent) = agent(Some(Duration::from_millis(500))).await;
    let (carrier, mut rx) = carrier(trunk_port, &url).await;
    let telco_ref = carrier
        .place_call(OutboundCall {
            id: "call_out1".into(),
            from: "+34600000001".into(),
            to: "+34600123456".into(),
            callback_sip_uri: String::new(),
            agent: Some(AgentStream {
                voice_url: url.clone(),
                signing_secret: SECRET.into(),
                account_id: "acct_1".into(),
                mid_id: "mid_1".into(),
            }),
        })
        .await
        .unwrap();
    assert!(!telco_ref.is_empty());
    let seen = statuses(&mut rx, "call_out1").await;
    assert_eq!(
        seen,
        [
            (CallStatus::Ringing, None),
            (CallStatus::InProgress, None),
            (CallStatus::Completed, Some("agent_hangup".into())),
        ]
    );
    let start = agent.await.unwrap();
    assert_eq!(start["event"], "start", "{start}");
    assert!(
        start.to_string().contains("call_out1"),
        "the start frame names the call: {start}"
    );
    assert!(trunk.passed().await, "the trunk got our BYE");
    assert_eq!(carrier.live_calls(), 0);
    // Hanging up an ended call, or an unknown one, is harmless.
    carrier.hang_up(telco_ref).await.unwrap();
    carrier.hang_up("nothing".into()).await.unwrap();
    carrier.shutdown().await;
}

#[tokio::test]
async fn an_inbound_call_streams_to_the_agent_until_the_caller_hangs_up() {
    if !sipp_ready() {
        return;
    }
    let (url, agent) = agent(None).await;
    let (carrier, mut rx) = carrier(free_port(), &url).await;
    let target = carrier.local_addrs()[0];
    let caller = Sipp::spawn(
        "uac_call_then_bye",
        free_port(),
        &["-s", "+34600000002", &target.to_string()],
    );
    let seen = statuses(&mut rx, "call_inbound1").await;
    assert_eq!(
        seen,
        [
            (CallStatus::InProgress, None),
            (CallStatus::Completed, Some("hangup_by_caller".into())),
        ]
    );
    assert!(
        caller.passed().await,
        "the caller was answered with our SDP"
    );
    let start = agent.await.unwrap();
    assert_eq!(start["event"], "start", "{start}");
    carrier.shutdown().await;
}

#[tokio::test]
async fn an_agent_that_cannot_be_reached_ends_the_answered_call() {
    if !sipp_ready() {
        return;
    }
    let trunk_port = free_port();
    let trunk = Sipp::spawn("uas_answer_wait_bye", trunk_port, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nobody listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/voice", closed.local_addr().unwrap());
    drop(closed);
    let (carrier, mut rx) = carrier(trunk_port, &url).await;
    carrier
        .place_call(OutboundCall {
            id: "call_out2".into(),
            from: "+34600000001".into(),
            to: "+34600123456".into(),
            callback_sip_uri: String::new(),
            agent: Some(AgentStream {
                voice_url: url,
                signing_secret: SECRET.into(),
                account_id: "acct_1".into(),
                mid_id: "mid_1".into(),
            }),
        })
        .await
        .unwrap();
    let seen = statuses(&mut rx, "call_out2").await;
    assert_eq!(
        seen.last(),
        Some(&(CallStatus::Completed, Some("agent_unreachable".into()))),
        "{seen:?}"
    );
    assert!(trunk.passed().await, "the trunk got our BYE");
    carrier.shutdown().await;
}

#[tokio::test]
async fn sms_are_refused() {
    let (carrier, _rx) = carrier(free_port(), "ws://127.0.0.1:9/").await;
    let refused = carrier
        .submit_sms(ami_carrier::OutboundSms {
            id: "msg_1".into(),
            from: "+34600000001".into(),
            to: "+34600000002".into(),
            body: "hi".into(),
            segments: 1,
        })
        .await;
    assert_eq!(
        refused,
        Err(ami_carrier::SubmitError::Rejected(
            "this carrier carries calls only".into()
        ))
    );
    carrier.shutdown().await;
}
