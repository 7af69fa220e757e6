//! A fake caller (RTP over UDP) ↔ the bridge ↔ a WebSocket agent server, all on
//! 127.0.0.1.

// The handshake callback's error type is tungstenite's, large by its design.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_media::agent::AgentTarget;
use ami_media::bridge::{BridgeConfig, BridgeControl, BridgeEnd, EndReason, spawn_bridge};
use ami_media::dtmf::TelephoneEvent;
use ami_media::frames::{CallInfo, Direction};
use ami_media::leg::{RemoteEndpoint, RtpLeg};
use ami_media::ports::PortAllocator;
use ami_media::rtp::Packet;
use ami_media::sdp::{Codec, Negotiated};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

type Agent = WebSocketStream<TcpStream>;

const KEY: [u8; 32] = [7; 32];
const CALLER_PACKETS: usize = 25;

fn secret() -> String {
    format!("whsec_{}", STANDARD.encode(KEY))
}

fn call() -> CallInfo {
    CallInfo {
        account_id: "acc_1".into(),
        call_id: "call_1".into(),
        stream_id: "str_abc".into(),
        mid_id: "mid_1".into(),
        from: "+4915112345678".into(),
        to: "+4930123456".into(),
        direction: Direction::Inbound,
    }
}

/// The caller's audio: packet `i` is a distinct pattern of μ-law bytes.
fn caller_audio(i: usize) -> Vec<u8> {
    (0..160).map(|j| ((i * 7 + j) % 0x70) as u8).collect()
}

/// The agent's audio: never silence (0xff), so the caller can tell it apart.
fn agent_audio(len: usize) -> Vec<u8> {
    (0..len).map(|j| 0x80 + (j % 0x70) as u8).collect()
}

struct Setup {
    caller: Arc<UdpSocket>,
    leg_addr: SocketAddr,
    control: BridgeControl,
    bridge: JoinHandle<BridgeEnd>,
    agent: JoinHandle<(Agent, Vec<(String, String)>)>,
}

/// A leg whose remote is the caller's socket, a bridge to an agent listening on
/// `127.0.0.1` (its URL names another host: the address given is what is used).
async fn setup(config: BridgeConfig) -> Setup {
    let ports = PortAllocator::new(42_000, 42_999).unwrap_or_else(|e| panic!("{e}"));
    let mut leg = RtpLeg::bind(
        &ports,
        "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let leg_addr = leg.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let caller = Arc::new(
        UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    leg.set_remote(RemoteEndpoint {
        address: caller.local_addr().unwrap_or_else(|e| panic!("{e}")),
        negotiated: Negotiated {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
        },
    });

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let agent_addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let agent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let headers = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&headers);
        let ws = tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, resp: Response| {
            let mut h = seen.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(req.uri().path(), "/voice");
            for (name, value) in req.headers() {
                h.push((name.to_string(), value.to_str().unwrap_or("").to_string()));
            }
            Ok(resp)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let h = headers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (ws, h)
    });
    let target = AgentTarget {
        url: format!("ws://agent.example:{}/voice", agent_addr.port())
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        addr: agent_addr,
        signing_secret: secret(),
        tls: None,
    };
    let (control, bridge) = spawn_bridge(leg, target, call(), config);
    Setup {
        caller,
        leg_addr,
        control,
        bridge,
        agent,
    }
}

async fn next_json(agent: &mut Agent) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), agent.next())
            .await
            .unwrap_or_else(|_| panic!("no frame from the bridge in 5 s"));
        match m {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("{e}: {t}"));
            }
            Some(Ok(Message::Close(_))) | None => return json!({"event": "<closed>"}),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return json!({"event": "<error>", "error": e.to_string()}),
        }
    }
}

/// Reads frames until one of `event`, returning the media payloads seen on the way.
async fn until_event(agent: &mut Agent, event: &str) -> (Value, Vec<Vec<u8>>) {
    let mut media = Vec::new();
    loop {
        let v = next_json(agent).await;
        match v["event"].as_str() {
            Some(e) if e == event => return (v, media),
            Some("media") => media.push(
                STANDARD
                    .decode(v["media"]["payload"].as_str().unwrap_or(""))
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            Some("<closed>") | Some("<error>") => panic!("socket ended waiting for {event}: {v}"),
            _ => {}
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn verify_signature(headers: &[(String, String)], start_text: &str) {
    let id = header(headers, "webhook-id");
    let ts = header(headers, "webhook-timestamp");
    let sig = header(headers, "webhook-signature");
    assert_eq!(id, "str_abc");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let ts_n: i64 = ts.parse().unwrap_or(0);
    assert!((now - ts_n).abs() < 60, "timestamp {ts}");
    let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).unwrap_or_else(|e| panic!("{e}"));
    mac.update(format!("{id}.{ts}.{start_text}").as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(sig, expected);
    // Connected to the address given, named by the URL's host.
    assert!(
        header(headers, "host").starts_with("agent.example:"),
        "{headers:?}"
    );
}

/// What the caller hears: RTP packets from the leg, checked for continuity.
#[derive(Default)]
struct Heard {
    packets: AtomicU64,
    agent_packets: AtomicU64,
}

fn listen(
    caller: Arc<UdpSocket>,
    leg_addr: SocketAddr,
    heard: Arc<Heard>,
) -> JoinHandle<Vec<Packet>> {
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        let mut packets = Vec::new();
        loop {
            let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_millis(1500), caller.recv_from(&mut buf)).await
            else {
                return packets;
            };
            assert_eq!(from, leg_addr, "symmetric RTP: from the port we send to");
            let p = Packet::parse(&buf[..n]).unwrap_or_else(|e| panic!("{e}"));
            heard.packets.fetch_add(1, Ordering::SeqCst);
            if p.payload.iter().any(|&b| b != 0xff) {
                heard.agent_packets.fetch_add(1, Ordering::SeqCst);
            }
            packets.push(p);
        }
    })
}

async fn send_caller_audio(caller: &UdpSocket, to: SocketAddr, ssrc: u32, count: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..count {
        tick.tick().await;
        let p = Packet {
            payload_type: 0,
            marker: i == 0,
            sequence: 1000 + i as u16,
            timestamp: 5000 + 160 * i as u32,
            ssrc,
            payload: caller_audio(i),
        };
        let _ = caller.send_to(&p.to_bytes().unwrap_or_default(), to).await;
    }
}

async fn send_digit(caller: &UdpSocket, to: SocketAddr, digit_event: u8) {
    for k in 0..6u16 {
        let end = k >= 3;
        let e = TelephoneEvent {
            event: digit_event,
            end,
            volume: 10,
            duration: 160 * (k.min(3) + 1),
        };
        let p = Packet {
            payload_type: 101,
            marker: k == 0,
            sequence: 2000 + k,
            timestamp: 99_000,
            ssrc: 1,
            payload: e.to_bytes().to_vec(),
        };
        let _ = caller.send_to(&p.to_bytes().unwrap_or_default(), to).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send_text(agent: &mut Agent, v: Value) {
    agent
        .send(Message::text(v.to_string()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn caller_and_agent_talk_through_the_bridge() {
    let s = setup(BridgeConfig::default()).await;
    let heard = Arc::new(Heard::default());
    let listener = listen(Arc::clone(&s.caller), s.leg_addr, Arc::clone(&heard));
    let caller = Arc::clone(&s.caller);
    let leg_addr = s.leg_addr;
    let talking = tokio::spawn(async move {
        send_caller_audio(&caller, leg_addr, 1, CALLER_PACKETS).await;
        send_digit(&caller, leg_addr, 5).await;
    });

    let (mut agent, headers) = s.agent.await.unwrap_or_else(|e| panic!("{e}"));
    let connected = next_json(&mut agent).await;
    assert_eq!(connected["event"], "connected");
    let start = match agent.next().await {
        Some(Ok(Message::Text(t))) => t.as_str().to_string(),
        other => panic!("{other:?}"),
    };
    verify_signature(&headers, &start);
    let start: Value = serde_json::from_str(&start).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(start["event"], "start");
    assert_eq!(start["start"]["streamSid"], "str_abc");
    assert_eq!(start["start"]["callSid"], "call_1");
    assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");

    // Every caller packet arrives as one media frame, payload intact and in order; then
    // one dtmf frame for the six telephone-event packets.
    let (dtmf, media) = until_event(&mut agent, "dtmf").await;
    assert_eq!(dtmf["dtmf"]["digit"], "5");
    assert_eq!(media.len(), CALLER_PACKETS);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m, &caller_audio(i), "media frame {i}");
    }
    talking.await.unwrap_or_else(|e| panic!("{e}"));

    // One second of agent audio in uneven pieces, then a mark.
    let audio = agent_audio(8000);
    for piece in audio.chunks(1234) {
        send_text(&mut agent, json!({"event": "media", "streamSid": "str_abc", "media": {"payload": STANDARD.encode(piece)}})).await;
    }
    let sent_at = Instant::now();
    send_text(
        &mut agent,
        json!({"event": "mark", "streamSid": "str_abc", "mark": {"name": "m1"}}),
    )
    .await;
    let (mark, _) = until_event(&mut agent, "mark").await;
    let played_in = sent_at.elapsed();
    assert_eq!(mark["mark"]["name"], "m1");
    // The mark comes back only once its audio has gone out as RTP, paced: 50 frames of
    // 20 ms take about a second.
    let agent_packets = heard.agent_packets.load(Ordering::SeqCst);
    assert!(
        agent_packets >= 49,
        "only {agent_packets} packets of agent audio before the mark"
    );
    assert!(
        played_in >= Duration::from_millis(700),
        "mark after {played_in:?}: not paced"
    );

    // Five seconds queued, then clear: the queue is dropped and the pending mark answered.
    let before = heard.agent_packets.load(Ordering::SeqCst);
    for piece in agent_audio(40_000).chunks(4000) {
        send_text(
            &mut agent,
            json!({"event": "media", "media": {"payload": STANDARD.encode(piece)}}),
        )
        .await;
    }
    send_text(&mut agent, json!({"event": "mark", "mark": {"name": "m2"}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cleared_at = Instant::now();
    send_text(
        &mut agent,
        json!({"event": "clear", "streamSid": "str_abc"}),
    )
    .await;
    let (mark, _) = until_event(&mut agent, "mark").await;
    assert_eq!(mark["mark"]["name"], "m2");
    assert!(cleared_at.elapsed() < Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_clear = heard.agent_packets.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        heard.agent_packets.load(Ordering::SeqCst),
        after_clear,
        "audio still playing after clear"
    );
    assert!(
        after_clear - before < 40,
        "{} packets of 250 played",
        after_clear - before
    );

    send_text(&mut agent, json!({"event": "stop", "streamSid": "str_abc"})).await;
    let end = tokio::time::timeout(Duration::from_secs(3), s.bridge)
        .await
        .unwrap_or_else(|_| panic!("bridge did not end"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, EndReason::AgentHangup);
    assert_eq!(end.frames_in, CALLER_PACKETS as u64);
    assert!(end.frames_out >= 50, "{end:?}");
    assert_eq!(end.stranger_packets, 0);
    drop(s.control);

    // The caller heard one continuous stream: one SSRC, sequence +1 and timestamp +160
    // per packet, marker on the first only, spaced about 20 ms apart on average.
    let packets = listener.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(packets.len() > 60, "{} packets", packets.len());
    assert!(packets[0].marker);
    for w in packets.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc);
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        assert_eq!(w[1].timestamp, w[0].timestamp.wrapping_add(160));
        assert!(!w[1].marker);
    }
}

#[tokio::test]
async fn strangers_are_dropped_and_a_stop_from_our_side_reaches_the_agent() {
    let s = setup(BridgeConfig::default()).await;
    let (mut agent, _) = s.agent.await.unwrap_or_else(|e| panic!("{e}"));
    let stranger = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The caller latches first; then a stranger and the caller interleave.
    send_caller_audio(&s.caller, s.leg_addr, 1, 1).await;
    for i in 0..10 {
        let p = Packet {
            payload_type: 0,
            marker: false,
            sequence: i,
            timestamp: 0,
            ssrc: 9,
            payload: vec![0x42; 160],
        };
        let _ = stranger
            .send_to(&p.to_bytes().unwrap_or_default(), s.leg_addr)
            .await;
    }
    send_caller_audio(&s.caller, s.leg_addr, 1, 3).await;
    let mut media = Vec::new();
    while media.len() < 4 {
        let v = next_json(&mut agent).await;
        if v["event"] == "media" {
            media.push(
                STANDARD
                    .decode(v["media"]["payload"].as_str().unwrap_or(""))
                    .unwrap_or_default(),
            );
        }
        assert_ne!(v["event"], "<closed>");
    }
    assert!(
        media.iter().all(|m| m[0] != 0x42),
        "a stranger's audio reached the agent"
    );

    s.control.stop();
    let (stop, _) = until_event(&mut agent, "stop").await;
    assert_eq!(stop["streamSid"], "str_abc");
    assert_eq!(next_json(&mut agent).await["event"], "<closed>");
    let end = s.bridge.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, EndReason::Stopped);
    assert_eq!(end.stranger_packets, 10);
    assert_eq!(end.frames_in, 4);
}

#[tokio::test]
async fn garbage_from_the_agent_ends_the_call_after_the_limit() {
    let s = setup(BridgeConfig {
        max_bad_frames: 3,
        ..BridgeConfig::default()
    })
    .await;
    let (mut agent, _) = s.agent.await.unwrap_or_else(|e| panic!("{e}"));
    for text in [
        "not json",
        r#"{"event":"dance"}"#,
        r#"{"event":"media","media":{}}"#,
    ] {
        agent
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    agent
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (stop, _) = until_event(&mut agent, "stop").await;
    assert_eq!(stop["event"], "stop");
    let end = s.bridge.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, EndReason::AgentProtocol);
    assert_eq!(end.bad_frames, 4);
}

#[tokio::test]
async fn an_agent_that_refuses_the_connection_is_unreachable_quickly() {
    let ports = PortAllocator::new(43_000, 43_099).unwrap_or_else(|e| panic!("{e}"));
    let leg = RtpLeg::bind(
        &ports,
        "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // A port that was just free: nobody listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = closed.local_addr().unwrap_or_else(|e| panic!("{e}"));
    drop(closed);
    let target = AgentTarget {
        url: format!("ws://127.0.0.1:{}/", addr.port())
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        addr,
        signing_secret: secret(),
        tls: None,
    };
    let began = Instant::now();
    let (_control, bridge) = spawn_bridge(leg, target, call(), BridgeConfig::default());
    let end = bridge.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(end.reason, EndReason::AgentUnreachable(_)),
        "{end:?}"
    );
    assert!(began.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn an_agent_that_never_answers_the_upgrade_times_out() {
    let ports = PortAllocator::new(43_100, 43_199).unwrap_or_else(|e| panic!("{e}"));
    let leg = RtpLeg::bind(
        &ports,
        "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Accepts TCP, never speaks.
    let silent = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = silent.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let target = AgentTarget {
        url: format!("ws://127.0.0.1:{}/", addr.port())
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        addr,
        signing_secret: secret(),
        tls: None,
    };
    let config = BridgeConfig {
        connect_timeout: Duration::from_millis(300),
        ..BridgeConfig::default()
    };
    let (_control, bridge) = spawn_bridge(leg, target, call(), config);
    let end = bridge.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        end.reason,
        EndReason::AgentUnreachable("connect timed out".into())
    );
    drop(silent);
}

#[tokio::test]
async fn an_agent_flooding_faster_than_real_time_is_capped() {
    let s = setup(BridgeConfig::default()).await;
    let (mut agent, _) = s.agent.await.unwrap_or_else(|e| panic!("{e}"));
    // Fifteen seconds of audio at once; ten fit.
    for piece in agent_audio(15 * 8000).chunks(8000) {
        send_text(
            &mut agent,
            json!({"event": "media", "media": {"payload": STANDARD.encode(piece)}}),
        )
        .await;
    }
    send_text(&mut agent, json!({"event": "stop"})).await;
    let end = s.bridge.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, EndReason::AgentHangup);
    assert!(end.late_or_dropped >= 4, "{end:?}");
}

#[tokio::test]
async fn an_agent_that_stops_reading_is_gone() {
    let config = BridgeConfig {
        write_stall: Duration::from_millis(500),
        ..BridgeConfig::default()
    };
    let s = setup(config).await;
    // The agent accepts and then never reads; the caller floods, so the socket's buffers
    // fill and a write blocks.
    let (_agent, _) = s.agent.await.unwrap_or_else(|e| panic!("{e}"));
    let caller = Arc::clone(&s.caller);
    let leg_addr = s.leg_addr;
    let flood = tokio::spawn(async move {
        let payload = caller_audio(1);
        for i in 0..200_000u32 {
            let p = Packet {
                payload_type: 0,
                marker: false,
                sequence: i as u16,
                timestamp: i * 160,
                ssrc: 1,
                payload: payload.clone(),
            };
            let _ = caller
                .send_to(&p.to_bytes().unwrap_or_default(), leg_addr)
                .await;
            if i % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let end = tokio::time::timeout(Duration::from_secs(30), s.bridge)
        .await
        .unwrap_or_else(|_| panic!("the bridge kept writing to an agent that does not read"))
        .unwrap_or_else(|e| panic!("{e}"));
    flood.abort();
    assert_eq!(
        end.reason,
        EndReason::AgentGone("agent is not reading".into()),
        "{end:?}"
    );
    assert!(end.late_or_dropped > 0);
}

#[tokio::test]
async fn no_rtp_from_the_caller_ends_the_call() {
    let config = BridgeConfig {
        media_timeout: Some(Duration::from_millis(300)),
        ..BridgeConfig::default()
    };
    let s = setup(config).await;
    let (mut agent, _) = s.agent.await.unwrap_or_else(|e| panic!("{e}"));
    let (stop, _) = until_event(&mut agent, "stop").await;
    assert_eq!(stop["event"], "stop");
    let end = s.bridge.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, EndReason::MediaTimeout);
}

#[tokio::test]
async fn wss_with_the_urls_host_for_sni_at_the_given_address() {
    use tokio_rustls::rustls;
    let certified = rcgen::generate_simple_self_signed(vec!["agent.example".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let cert_der = certified.cert.der().clone();
    let key_der =
        rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap_or_else(|e| panic!("{e}"));
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let agent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let tls = acceptor.accept(tcp).await.unwrap_or_else(|e| panic!("{e}"));
        let sni = tls.get_ref().1.server_name().map(str::to_string);
        let mut ws = tokio_tungstenite::accept_async(tls)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut events = Vec::new();
        for _ in 0..2 {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                events.push(v["event"].as_str().unwrap_or("").to_string());
            }
        }
        let _ = ws.send(Message::text(r#"{"event":"stop"}"#)).await;
        (sni, events)
    });

    let ports = PortAllocator::new(43_200, 43_299).unwrap_or_else(|e| panic!("{e}"));
    let leg = RtpLeg::bind(
        &ports,
        "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let target = AgentTarget {
        url: format!("wss://agent.example:{}/voice", addr.port())
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
        addr,
        signing_secret: secret(),
        tls: Some(Arc::new(client_config)),
    };
    let (_control, bridge) = spawn_bridge(leg, target, call(), BridgeConfig::default());
    let end = bridge.await.unwrap_or_else(|e| panic!("{e}"));
    let (sni, events) = agent.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, EndReason::AgentHangup, "{end:?}");
    assert_eq!(sni.as_deref(), Some("agent.example"));
    assert_eq!(events, vec!["connected".to_string(), "start".to_string()]);
}
