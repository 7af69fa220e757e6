//! The harness: a user agent on 127.0.0.1 and SIPp (an independent SIP implementation)
//! playing the trunk with the scenarios of `tests/scenarios`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_sip::{
    CallEvent, CallSignal, InboundDecision, InboundInvite, InboundRouter, NumberFormat,
    RouteFuture, SipSettings, Transport, Trunk, Ua,
};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub const OFFER: &str = "v=0\r\no=ami-test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// Whether SIPp can run; without it a test skips, except under CI where it fails.
pub fn sipp_ready() -> bool {
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

/// A TCP port free right now on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// A UDP port free right now on `ip`.
pub fn free_port(ip: &str) -> u16 {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.local_addr().unwrap().port()
}

pub fn trunk(proxy_port: u16) -> Trunk {
    Trunk {
        name: "test".into(),
        proxy: format!("127.0.0.1:{proxy_port}"),
        transport: Transport::Udp,
        username: Some("ami".into()),
        password: Some("trunk-secret".into()),
        realm: None,
        register: false,
        register_expiry_secs: 3600,
        allowed_sources: vec!["127.0.0.1/32".parse().unwrap()],
        number_format: NumberFormat::E164,
    }
}

/// Decides every inbound call the same way and remembers what it was asked.
pub struct Router {
    pub seen: Mutex<Vec<InboundInvite>>,
    pub decision: InboundDecision,
    /// How long it takes to decide.
    pub delay: Duration,
}

impl Router {
    pub fn new(decision: InboundDecision) -> Arc<Router> {
        Arc::new(Router {
            seen: Mutex::new(Vec::new()),
            decision,
            delay: Duration::ZERO,
        })
    }

    pub fn answering(call_id: &str) -> Arc<Router> {
        Router::new(InboundDecision::Answer {
            call_id: call_id.into(),
            sdp_answer: OFFER.into(),
        })
    }

    pub fn seen(&self) -> Vec<InboundInvite> {
        self.seen.lock().unwrap().clone()
    }
}

impl InboundRouter for Router {
    fn route(&self, invite: InboundInvite) -> RouteFuture<'_> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(invite);
            tokio::time::sleep(self.delay).await;
            self.decision.clone()
        })
    }
}

pub struct Agent {
    pub ua: Ua,
    pub signals: mpsc::Receiver<CallSignal>,
    pub addr: SocketAddr,
}

pub async fn start(trunks: Vec<Trunk>, router: Arc<Router>) -> Agent {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut settings = SipSettings::new(Some("127.0.0.1:0".parse().unwrap()), trunks);
    settings.ring_timeout_secs = 20;
    settings.t1_ms = 100;
    let (ua, signals) = Ua::start(settings, router).await.unwrap();
    let addr = ua.local_addrs()[0];
    Agent { ua, signals, addr }
}

impl Agent {
    /// The next signal, which must be about `call_id`.
    pub async fn next(&mut self, call_id: &str) -> CallEvent {
        let signal = tokio::time::timeout(Duration::from_secs(20), self.signals.recv())
            .await
            .expect("a call signal within 20 s")
            .expect("the signal channel is open");
        assert_eq!(signal.call_id, call_id, "{signal:?}");
        signal.event
    }

    pub async fn no_signal(&mut self, within: Duration) {
        if let Ok(Some(signal)) = tokio::time::timeout(within, self.signals.recv()).await {
            panic!("unexpected signal {signal:?}");
        }
    }
}

fn scenario(name: &str) -> String {
    format!("{}/tests/scenarios/{name}.xml", env!("CARGO_MANIFEST_DIR"))
}

/// SIPp running one call of a scenario.
pub struct Sipp {
    child: Child,
}

impl Sipp {
    /// SIPp as the trunk answering on `ip:port`.
    pub async fn uas(name: &str, port: u16) -> Sipp {
        let sipp = Sipp::spawn(name, "127.0.0.1", port, &[]);
        // Time to bind; our INVITE retransmissions cover a slow start too.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sipp
    }

    /// SIPp as the trunk answering over TCP on `ip:port`.
    pub async fn uas_tcp(name: &str, port: u16) -> Sipp {
        let sipp = Sipp::spawn(name, "127.0.0.1", port, &["-t", "t1"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        sipp
    }

    /// SIPp as the trunk calling `service` at `target`, from `ip`.
    pub fn uac(name: &str, ip: &str, target: SocketAddr, service: &str) -> Sipp {
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
            .args(if std::env::var("SIPP_TRACE").is_ok() {
                &["-trace_msg"][..]
            } else {
                &[][..]
            })
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
