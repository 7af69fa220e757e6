//! SIPp (Debian package `sip-tester`), an independent SIP implementation, as the trunk,
//! the caller or the customer's SIP engine of a test (scenarios in `tests/sip/`), and a
//! server whose calls go over SIP.

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::{Engine, Flow, TestServer, engines};

/// Whether SIPp can run; without it a test skips, except under CI where it fails.
pub fn sipp_ready() -> bool {
    peer_ready("sipp", "-v", "sip-tester")
}

/// Whether `program` (from the Debian package `package`) runs; without it a test skips,
/// except under CI where it fails.
pub fn peer_ready(program: &str, probe_arg: &str, package: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg(probe_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed (Debian package {package}); CI must have it"
        );
        eprintln!("skipped: {program} is not installed (apt-get install {package})");
    }
    found
}

pub fn free_port(ip: &str) -> u16 {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.local_addr().unwrap().port()
}

pub fn scenario(name: &str) -> String {
    format!("{}/tests/sip/{name}.xml", env!("CARGO_MANIFEST_DIR"))
}

/// SIPp running one call of a scenario.
pub struct Sipp {
    child: Child,
}

impl Sipp {
    /// Answering on 127.0.0.1:`port`.
    pub async fn uas(name: &str, port: u16) -> Sipp {
        let sipp = Sipp::spawn(name, "127.0.0.1", port, free_port("127.0.0.1"), &[]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        sipp
    }

    /// Calling `service` at `target` from `ip`.
    pub fn uac(name: &str, ip: &str, target: SocketAddr, service: &str) -> Sipp {
        Sipp::uac_with_media(name, ip, target, service, free_port(ip))
    }

    /// [`Sipp::uac`] with SIPp's RTP sockets on `media_port` and `media_port + 2`.
    pub fn uac_with_media(
        name: &str,
        ip: &str,
        target: SocketAddr,
        service: &str,
        media_port: u16,
    ) -> Sipp {
        let target = target.to_string();
        Sipp::spawn(
            name,
            ip,
            free_port(ip),
            media_port,
            &["-s", service, &target],
        )
    }

    fn spawn(name: &str, ip: &str, port: u16, media_port: u16, extra: &[&str]) -> Sipp {
        let port = port.to_string();
        let child = Command::new("sipp")
            .args(["-sf", &scenario(name), "-i", ip, "-p", &port])
            .args(["-m", "1", "-nostdin", "-timeout", "25", "-timeout_error"])
            .args(["-mi", ip, "-mp", &media_port.to_string()])
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
    pub async fn passed(self) -> bool {
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

/// A server on `engine` whose calls go over SIP to a trunk at 127.0.0.1:`trunk_port`, with
/// `extra` environment; the server and its SIP listener.
pub async fn sip_server(
    engine: Engine,
    trunk_port: u16,
    extra: &[(&str, &str)],
) -> (TestServer, SocketAddr) {
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
    let mut env = vec![
        ("AMI_CALL_CARRIER", "sip"),
        ("AMI_SIP", sip.as_str()),
        ("AMI_SIP_TRUNKS", trunks.as_str()),
    ];
    env.extend_from_slice(extra);
    let server = TestServer::start_with(engine, &env).await;
    let addr = server
        .running
        .sip
        .as_ref()
        .expect("the SIP carrier")
        .local_addrs()[0];
    (server, addr)
}

/// A provisioned MID with limits out of the way; its customer's key and its flow.
pub async fn sip_mid(server: &TestServer) -> (String, Flow) {
    let (_, key) = server.customer("Caller").await;
    let flow = server.provision(&key).await;
    let limits = json!({"rate_per_second": 1000, "calls_per_hour": 1000, "calls_per_day": 1000,
                        "calls_per_destination_per_hour": 1000, "calls_per_destination_per_day": 1000});
    server.set_limits(&key, &flow.mid, limits).await;
    (key, flow)
}

/// Places a call with the agent token; its id.
pub async fn place(server: &TestServer, flow: &Flow, to: &str, callback: &str) -> String {
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
pub async fn wait_for(
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
            "{:?}: call never {what}; last {call}, seen {seen:?}",
            server.engine
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |c| c["status"] == status
}

/// The customer's audit actions about calls, oldest first.
pub async fn call_actions(server: &TestServer, key: &str) -> Vec<String> {
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

/// Runs `case` on every engine at once (each with its own server and SIPp).
pub async fn on_every_engine<F, Fut>(case: F)
where
    F: Fn(Engine) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    futures_util::future::join_all(engines().into_iter().map(case)).await;
}
