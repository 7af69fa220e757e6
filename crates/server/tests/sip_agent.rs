//! A call's audio at the agent, end to end: SIPp, as the trunk, calls a MID whose voice
//! configuration names a WebSocket agent run by the test. The caller speaks (a recorded
//! G.711 A-law file) and presses a key (RFC 4733); the agent must get `connected`, a
//! `start` signed with the MID's signing secret, `media` frames carrying exactly the
//! caller's audio, and the digit. The agent speaks too, and its audio must come back to
//! the caller's RTP port, and the operator's metrics count the call, its RTP and the
//! agent's frames. Both engines at once.
//!
//! SIPp sends its recordings through a raw socket, so this needs root (as CI runs).
// The WebSocket handshake callback returns the library's (large) error response type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_media::g711;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::sipp::{
    Sipp, call_actions, on_every_engine, sip_mid, sip_server, sipp_ready, status_is, wait_for,
};
use common::{Engine, LOOPBACK, TestServer};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, UdpSocket};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What the caller says: SIPp's recording, sent as it is by the scenario.
const SPEECH: &str = "/usr/share/sip-tester/g711a.pcap";
/// The agent's voice: one μ-law value held, so that every frame of it is recognisable.
const AGENT_SAMPLE: u8 = 0x2a;
/// Frames of 20 ms the agent sends (one second).
const AGENT_FRAMES: usize = 50;

/// The RTP payloads of a capture file (Ethernet, IPv4, UDP, RTP without extensions).
fn pcap_payloads(path: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("the recording SIPp ships");
    let mut payloads = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let length = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..at + 16 + length];
        at += 16 + length;
        let ip = &frame[14..];
        let udp = &ip[usize::from(ip[0] & 0x0f) * 4..];
        payloads.push(udp[8 + 12..].to_vec());
    }
    payloads
}

/// What the agent saw: the upgrade's signature headers and every frame, in order (the
/// `start` frame also as the exact text that was signed).
struct Heard {
    headers: Vec<(String, String)>,
    start_text: String,
    frames: Vec<Value>,
}

impl Heard {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
    }

    fn events(&self, event: &str) -> Vec<&Value> {
        self.frames.iter().filter(|f| f["event"] == event).collect()
    }
}

/// A WebSocket agent: answers one connection, speaks once it has `start`, and listens
/// until the server says `stop` and closes.
async fn voice_agent() -> (String, tokio::task::JoinHandle<Heard>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/voice", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let headers = Arc::new(Mutex::new(Vec::new()));
        let seen = headers.clone();
        let keep = move |request: &Request, response: Response| {
            let mut seen = seen.lock().unwrap();
            for (name, value) in request.headers() {
                if name.as_str().starts_with("webhook-") {
                    seen.push((name.as_str().to_owned(), value.to_str().unwrap().to_owned()));
                }
            }
            Ok(response)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, keep)
            .await
            .unwrap();
        let mut frames = Vec::new();
        let mut start_text = String::new();
        while let Some(Ok(message)) = ws.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["event"] == "start" {
                start_text = text.to_string();
                let stream = frame["streamSid"].clone();
                let audio = STANDARD.encode([AGENT_SAMPLE; 160]);
                for _ in 0..AGENT_FRAMES {
                    let media =
                        json!({"event": "media", "streamSid": stream, "media": {"payload": audio}});
                    ws.send(Message::text(media.to_string())).await.unwrap();
                }
            }
            frames.push(frame);
        }
        let headers = headers.lock().unwrap().clone();
        Heard {
            headers,
            start_text,
            frames,
        }
    });
    (url, task)
}

/// Listens where the caller's SDP says it receives RTP; counts the packets and those that
/// carry the agent's voice (as A-law, the codec the caller offered).
struct RtpEar {
    port: u16,
    packets: Arc<Mutex<(usize, usize)>>,
    task: tokio::task::JoinHandle<()>,
}

impl RtpEar {
    async fn bind() -> RtpEar {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let packets = Arc::new(Mutex::new((0, 0)));
        let counted = packets.clone();
        let voice = g711::ulaw_to_alaw(&[AGENT_SAMPLE; 160]);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok(len) = socket.recv(&mut buf).await {
                let mut counted = counted.lock().unwrap();
                counted.0 += 1;
                if len > 12 && buf[1] & 0x7f == 8 && buf[12..len] == voice[..] {
                    counted.1 += 1;
                }
            }
        });
        RtpEar {
            port,
            packets,
            task,
        }
    }

    /// (packets received, packets of the agent's voice).
    fn heard(self) -> (usize, usize) {
        self.task.abort();
        *self.packets.lock().unwrap()
    }
}

const ENDED_BY_CALLER: &str =
    r#"ami_sip_calls_ended_total{status="completed",cause="hangup_by_caller"}"#;

/// The value of the sample written exactly `name` (with its labels) in a scrape.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `GET /metrics` until `ready` holds (ten seconds at most); the last scrape.
async fn scrape_until(server: &TestServer, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server
            .http
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if ready(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signature(secret: &str, id: &str, timestamp: &str, payload: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{payload}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn an_inbound_call_speaks_with_the_agent_both_ways() {
    if sipp_ready() {
        on_every_engine(an_inbound_call_speaks_with_the_agent_both_ways_on).await;
    }
}

async fn an_inbound_call_speaks_with_the_agent_both_ways_on(engine: Engine) {
    // No outbound call here: the trunk's proxy is never used.
    let (server, sip_addr) =
        sip_server(engine, common::sipp::free_port("127.0.0.1"), &[LOOPBACK]).await;
    let (key, flow) = sip_mid(&server).await;
    let (voice_url, agent) = voice_agent().await;
    let (s, config) = server
        .post(
            &format!("/v1/mobile-identities/{}/voice-config", flow.mid),
            &key,
            json!({"voice_url": voice_url}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{config}");
    let secret = config["signing_secret"].as_str().unwrap().to_owned();

    // SIPp's RTP sockets take the two ports below the ear; its SDP names the ear's, and
    // its recorded packets leave from there.
    let ear = RtpEar::bind().await;
    let caller = Sipp::uac_with_media(
        "uac_audio_dtmf_then_bye",
        "127.0.0.1",
        sip_addr,
        &flow.phone_number,
        ear.port - 4,
    );
    assert!(caller.passed().await, "{engine:?}: the caller's scenario");
    let heard = agent.await.unwrap();
    let (s, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let id = list["calls"][0]["id"].as_str().unwrap().to_owned();
    let (done, _) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    let (packets, agent_voice) = ear.heard();

    // The stream opens with `connected` then `start`, and ends with `stop`.
    let names: Vec<&str> = heard
        .frames
        .iter()
        .map(|f| f["event"].as_str().unwrap())
        .collect();
    assert_eq!(names[..2], ["connected", "start"], "{engine:?}: {names:?}");
    assert_eq!(names.last(), Some(&"stop"), "{engine:?}: {names:?}");
    let start = &heard.frames[1]["start"];
    assert_eq!(
        (
            start["callSid"].as_str(),
            start["midId"].as_str(),
            start["from"].as_str(),
            start["to"].as_str(),
            start["direction"].as_str(),
        ),
        (
            Some(id.as_str()),
            Some(flow.mid.as_str()),
            Some("+34600000001"),
            Some(flow.phone_number.as_str()),
            Some("inbound"),
        ),
        "{engine:?}: {start}"
    );
    assert_eq!(
        start["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );

    // The upgrade is signed over the `start` frame with the MID's secret.
    let (webhook_id, timestamp) = (
        heard.header("webhook-id"),
        heard.header("webhook-timestamp"),
    );
    assert_eq!(webhook_id, heard.frames[1]["streamSid"], "{engine:?}");
    assert_eq!(
        heard.header("webhook-signature"),
        signature(&secret, webhook_id, timestamp, &heard.start_text),
        "{engine:?}: the start frame is signed with the MID's secret"
    );
    assert_ne!(
        heard.header("webhook-signature"),
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            webhook_id,
            timestamp,
            &heard.start_text
        ),
        "{engine:?}: another secret does not verify"
    );

    // Every media frame is a packet of the recording, turned into μ-law, and there is
    // speech among them, not only silence.
    let speech: HashSet<Vec<u8>> = pcap_payloads(SPEECH)
        .iter()
        .map(|p| g711::alaw_to_ulaw(p))
        .collect();
    let media: Vec<Vec<u8>> = heard
        .events("media")
        .iter()
        .map(|f| {
            STANDARD
                .decode(f["media"]["payload"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert!(
        media.len() >= 20,
        "{engine:?}: {} media frames",
        media.len()
    );
    assert!(
        media.iter().all(|m| speech.contains(m)),
        "{engine:?}: a media frame that the caller did not say"
    );
    assert!(
        media.iter().any(|m| m.iter().any(|b| *b != m[0])),
        "{engine:?}: only silence reached the agent"
    );
    let digits: Vec<&str> = heard
        .events("dtmf")
        .iter()
        .map(|f| f["dtmf"]["digit"].as_str().unwrap())
        .collect();
    assert_eq!(digits, ["1"], "{engine:?}: one key press, reported once");

    // The agent's second of voice reached the caller as RTP, besides the silence between.
    assert!(
        agent_voice == AGENT_FRAMES && packets > agent_voice,
        "{engine:?}: {agent_voice} of {packets} RTP packets carried the agent's voice"
    );

    // The operator sees the call and its media in the metrics.
    let metrics = scrape_until(&server, |m| {
        sample(m, "ami_sip_calls_live") == Some(0.0) && sample(m, ENDED_BY_CALLER).is_some()
    })
    .await;
    let m = |name: &str| sample(&metrics, name).unwrap_or(-1.0);
    assert_eq!(
        (
            m("ami_sip_calls_live"),
            m(r#"ami_sip_calls_started_total{direction="inbound"}"#),
            m(r#"ami_sip_calls_started_total{direction="outbound"}"#),
            m(ENDED_BY_CALLER),
            m(r#"ami_sip_agent_frames_total{direction="in"}"#),
        ),
        (0.0, 1.0, 0.0, 1.0, AGENT_FRAMES as f64),
        "{engine:?}:\n{metrics}"
    );
    assert!(
        m(r#"ami_sip_agent_frames_total{direction="out"}"#) >= heard.frames.len() as f64
            && m(r#"ami_sip_rtp_packets_total{direction="in"}"#) >= (media.len() + 1) as f64
            && m(r#"ami_sip_rtp_packets_total{direction="out"}"#) >= packets as f64,
        "{engine:?}: {} frames heard, {} media, {packets} RTP packets heard:\n{metrics}",
        heard.frames.len(),
        media.len()
    );

    assert_eq!(
        done["hangup_cause"], "hangup_by_caller",
        "{engine:?} {done}"
    );
    assert!(done["answered_at"].is_string(), "{done}");
    let actions = call_actions(&server, &key).await;
    assert_eq!(
        (
            actions.first().map(String::as_str),
            actions.last().map(String::as_str)
        ),
        (Some("call_received"), Some("call_completed")),
        "{engine:?}: {actions:?}"
    );
    server.stop().await;
}
