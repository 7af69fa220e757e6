//! Calls with baresip (Debian package `baresip`), a SIP user agent written independently of
//! both our stack and SIPp, at the other end of the trunk: it answers a call placed through
//! the API, and it calls a MID, each time with its audio reaching the MID's agent on the
//! WebSocket (a local echo agent here) and the call ending with a BYE and the right record.
//!
//! baresip runs without a sound card: its player and source are joined (`aubridge`), so it
//! sends back the audio it hears, the server's 20 ms clock of silence or the agent's echo.
//!
//! SQLite only, as the SIPp tests (`sip.rs`): the call state machine under both engines is
//! covered by `calls.rs`; here the subject is what an independent user agent makes of us.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Engine, Flow, LOOPBACK, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Caller audio frames the agent waits for before it is satisfied: half a second.
const FRAMES_HEARD: usize = 25;

fn baresip_ready() -> bool {
    common::sipp::peer_ready("baresip", "-h", "baresip")
}

fn free_port() -> u16 {
    let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    socket.local_addr().unwrap().port()
}

/// baresip with one account, listening on 127.0.0.1:`port`, its output collected.
struct Baresip {
    child: Child,
    output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Baresip {
    /// `aor` is the account's address (its user is the number it answers or calls from);
    /// `commands` run once it is ready (`/dial <uri>`).
    async fn start(port: u16, aor: &str, commands: &[String]) -> Baresip {
        let dir = tempfile::tempdir().unwrap();
        let rtp = free_port() & !1;
        // `net_interface`: otherwise baresip writes the machine's network address in its SDP
        // while sending from loopback, and our latching drops its RTP as a stranger's.
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{port}\n\
             sip_transports udp\n\
             net_interface 127.0.0.1\n\
             audio_player aubridge,ami\n\
             audio_source aubridge,ami\n\
             audio_alert aubridge,ami\n\
             rtp_ports {rtp}-{}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aubridge.so\n\
             module menu.so\n\
             module account.so\n",
            rtp + 10
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(
            dir.path().join("accounts"),
            format!("<{aor}>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n"),
        )
        .unwrap();
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(dir.path()).args(["-t", "40"]);
        for c in commands {
            cmd.args(["-e", c]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("baresip starts");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let baresip = Baresip {
            child,
            output,
            _dir: dir,
        };
        baresip.wait_for("baresip is ready").await;
        baresip
    }

    /// Waits (15 s at most) until baresip has printed `text`.
    async fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.output.lock().unwrap().contains(text) {
            assert!(
                Instant::now() < deadline,
                "baresip never said {text:?}:\n{}",
                self.output.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What the agent saw on one call.
#[derive(Debug, Default)]
struct Heard {
    start: Value,
    media: usize,
}

/// A WebSocket agent on loopback that echoes the caller's audio. After FRAMES_HEARD media
/// frames it reports what it saw; when `hang_up` it then sends `stop`.
async fn echo_agent(hang_up: bool) -> (String, mpsc::UnboundedReceiver<Heard>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/agent", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let mut heard = Heard::default();
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    match frame["event"].as_str() {
                        Some("start") => heard.start = frame["start"].clone(),
                        Some("media") => {
                            heard.media += 1;
                            let payload = &frame["media"]["payload"];
                            let echo = json!({"event": "media", "media": {"payload": payload}});
                            let _ = ws.send(Message::text(echo.to_string())).await;
                            if heard.media == FRAMES_HEARD {
                                let _ = tx.send(std::mem::take(&mut heard));
                                if hang_up {
                                    let stop = json!({"event": "stop"}).to_string();
                                    let _ = ws.send(Message::text(stop)).await;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    (url, rx)
}

async fn heard(rx: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("the agent heard the caller within 15 s")
        .expect("the agent runs")
}

/// A server whose calls go over SIP to a trunk at 127.0.0.1:`trunk_port`, with loopback
/// allowed for the agent's voice URL.
async fn server(trunk_port: u16) -> (TestServer, SocketAddr) {
    let sip_port = free_port();
    let rtp_first = 40_000 + (sip_port % 1_000) * 20;
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
            LOOPBACK,
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

/// A provisioned MID whose voice URL is `voice_url`, with call limits out of the way.
async fn agent_mid(server: &TestServer, voice_url: &str) -> Flow {
    let (_, key) = server.customer("Voice").await;
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
    let (s, v) = server
        .post(
            &format!("/v1/mobile-identities/{}/voice-config", flow.mid),
            &key,
            json!({"voice_url": voice_url}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    flow
}

/// Polls the call until its status is `status` (15 s at most); the call and every status seen.
async fn wait_for_status(
    server: &TestServer,
    flow: &Flow,
    id: &str,
    status: &str,
) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (s, call) = server
            .get(&format!("/v1/agent/calls/{id}"), &flow.agent_token)
            .await;
        assert_eq!(s, StatusCode::OK, "{call}");
        let now = call["status"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        if call["status"] == status {
            return (call, seen);
        }
        assert!(
            Instant::now() < deadline,
            "call never {status}; last {call}, seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn baresip_answers_a_call_placed_through_the_api_and_gets_our_bye() {
    if !baresip_ready() {
        return;
    }
    let callee = "+34600123456";
    let trunk_port = free_port();
    let baresip = Baresip::start(trunk_port, &format!("sip:{callee}@127.0.0.1"), &[]).await;
    let (server, _) = server(trunk_port).await;
    let (voice_url, mut agent) = echo_agent(false).await;
    let flow = agent_mid(&server, &voice_url).await;

    let (s, call) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": callee, "callback_sip_uri": "sip:unused@127.0.0.1:9"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{call}");
    let id = call["id"].as_str().unwrap().to_owned();
    wait_for_status(&server, &flow, &id, "in_progress").await;
    baresip.wait_for("Call established").await;

    // baresip's own RTP (what it hears, sent back) reaches the agent as media frames.
    let heard = heard(&mut agent).await;
    assert_eq!(heard.media, FRAMES_HEARD);
    assert_eq!(
        (&heard.start["callSid"], &heard.start["direction"]),
        (&json!(id), &json!("outbound")),
        "{}",
        heard.start
    );
    assert_eq!(heard.start["to"], callee, "{}", heard.start);

    let (s, hung) = server
        .post(
            &format!("/v1/agent/calls/{id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{hung}");
    let (done, seen) = wait_for_status(&server, &flow, &id, "completed").await;
    assert_eq!(done["hangup_cause"], "hangup_by_agent", "{done}");
    assert!(done["answered_at"].is_string(), "{done}");
    assert!(
        seen.iter()
            .all(|s| ["initiated", "ringing", "in_progress", "completed"].contains(&s.as_str())),
        "{seen:?}"
    );
    // baresip saw our BYE end its call.
    baresip.wait_for("session closed").await;
    baresip.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn baresip_calls_a_mid_whose_agent_hears_it_and_hangs_up() {
    if !baresip_ready() {
        return;
    }
    let (server, sip_addr) = server(free_port()).await;
    let (voice_url, mut agent) = echo_agent(true).await;
    let flow = agent_mid(&server, &voice_url).await;
    let caller = "+34611000001";
    let dial = format!("/dial sip:{}@{sip_addr}", flow.phone_number);
    let baresip = Baresip::start(free_port(), &format!("sip:{caller}@127.0.0.1"), &[dial]).await;

    let heard = heard(&mut agent).await;
    assert_eq!(heard.media, FRAMES_HEARD);
    assert_eq!(
        (
            &heard.start["from"],
            &heard.start["to"],
            &heard.start["direction"]
        ),
        (&json!(caller), &json!(flow.phone_number), &json!("inbound")),
        "{}",
        heard.start
    );
    baresip.wait_for("Call established").await;
    // The agent's `stop` ends the call: our BYE reaches baresip.
    baresip.wait_for("session closed").await;

    let (s, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 1, "{list}");
    let id = list["calls"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(heard.start["callSid"], id.as_str(), "{}", heard.start);
    let (done, _) = wait_for_status(&server, &flow, &id, "completed").await;
    assert_eq!(done["hangup_cause"], "agent_hangup", "{done}");
    assert_eq!(done["from"], caller, "{done}");
    assert!(done["answered_at"].is_string(), "{done}");
    baresip.stop().await;
    server.stop().await;
}
