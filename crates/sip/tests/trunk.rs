//! The user agent against SIPp playing the trunk: outbound and inbound calls, digest
//! challenges, refusals, foreign sources and malformed datagrams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use ami_sip::{CallEvent, EndCause, InboundDecision, OutboundInvite};
use common::{OFFER, Router, Sipp, free_port, sipp_ready, start, trunk};
use tokio::net::UdpSocket;

fn call(call_id: &str) -> OutboundInvite {
    OutboundInvite {
        call_id: call_id.into(),
        from_e164: "+34911000111".into(),
        to_e164: "+34600000002".into(),
        trunk: None,
        sdp_offer: OFFER.into(),
    }
}

fn answered(event: &CallEvent) -> bool {
    matches!(event, CallEvent::Answered { sdp_answer } if sdp_answer.contains("o=trunk 1 1"))
}

#[tokio::test]
async fn outbound_answered_then_the_trunk_hangs_up() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_answer_then_bye", port).await;
    let mut agent = start(vec![trunk(port)], Router::answering("unused")).await;
    let sip_call_id = agent.ua.invite(call("call_out1")).await.unwrap();
    assert!(!sip_call_id.is_empty());
    assert_eq!(agent.next("call_out1").await, CallEvent::Ringing);
    let event = agent.next("call_out1").await;
    assert!(answered(&event), "{event:?}");
    assert_eq!(
        agent.next("call_out1").await,
        CallEvent::Ended {
            cause: EndCause::RemoteHangup
        }
    );
    assert!(sipp.passed().await);
    // Ended is final: hanging up now does nothing.
    agent.ua.hang_up("call_out1");
    agent.no_signal(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn outbound_answered_then_we_hang_up_with_bye() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_answer_wait_bye", port).await;
    let mut agent = start(vec![trunk(port)], Router::answering("unused")).await;
    agent.ua.invite(call("call_out2")).await.unwrap();
    assert_eq!(agent.next("call_out2").await, CallEvent::Ringing);
    let event = agent.next("call_out2").await;
    assert!(answered(&event), "{event:?}");
    agent.ua.hang_up("call_out2");
    agent.ua.hang_up("call_out2");
    assert_eq!(
        agent.next("call_out2").await,
        CallEvent::Ended {
            cause: EndCause::LocalHangup
        }
    );
    // SIPp passes only once it got our BYE and answered it.
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn outbound_busy() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_busy", port).await;
    let mut agent = start(vec![trunk(port)], Router::answering("unused")).await;
    agent.ua.invite(call("call_out3")).await.unwrap();
    assert_eq!(
        agent.next("call_out3").await,
        CallEvent::Ended {
            cause: EndCause::Busy
        }
    );
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn outbound_hang_up_while_ringing_cancels() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_ring_until_cancel", port).await;
    let mut agent = start(vec![trunk(port)], Router::answering("unused")).await;
    agent.ua.invite(call("call_out4")).await.unwrap();
    assert_eq!(agent.next("call_out4").await, CallEvent::Ringing);
    agent.ua.hang_up("call_out4");
    assert_eq!(
        agent.next("call_out4").await,
        CallEvent::Ended {
            cause: EndCause::Cancelled
        }
    );
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn outbound_ring_timeout_cancels_as_no_answer() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_ring_until_cancel", port).await;
    let mut settings =
        ami_sip::SipSettings::new(Some("127.0.0.1:0".parse().unwrap()), vec![trunk(port)]);
    settings.ring_timeout_secs = 1;
    settings.t1_ms = 100;
    let (ua, mut signals) = ami_sip::Ua::start(settings, Router::answering("unused"))
        .await
        .unwrap();
    ua.invite(call("call_out5")).await.unwrap();
    let mut events = Vec::new();
    while let Ok(Some(signal)) = tokio::time::timeout(Duration::from_secs(10), signals.recv()).await
    {
        let last = matches!(signal.event, CallEvent::Ended { .. });
        events.push(signal.event);
        if last {
            break;
        }
    }
    assert_eq!(
        events,
        vec![
            CallEvent::Ringing,
            CallEvent::Ended {
                cause: EndCause::NoAnswer
            }
        ]
    );
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn outbound_digest_challenge_is_answered() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_digest_challenge", port).await;
    let mut agent = start(vec![trunk(port)], Router::answering("unused")).await;
    agent.ua.invite(call("call_out6")).await.unwrap();
    let event = agent.next("call_out6").await;
    assert!(answered(&event), "{event:?}");
    agent.ua.hang_up("call_out6");
    assert_eq!(
        agent.next("call_out6").await,
        CallEvent::Ended {
            cause: EndCause::LocalHangup
        }
    );
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn outbound_wrong_password_fails_after_one_retry() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_digest_challenge", port).await;
    let mut wrong = trunk(port);
    wrong.password = Some("not-the-secret".into());
    let mut agent = start(vec![wrong], Router::answering("unused")).await;
    agent.ua.invite(call("call_out7")).await.unwrap();
    assert_eq!(
        agent.next("call_out7").await,
        CallEvent::Ended {
            cause: EndCause::Failed {
                code: 403,
                reason: "Forbidden".into()
            }
        }
    );
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn inbound_answered_then_the_trunk_hangs_up() {
    if !sipp_ready() {
        return;
    }
    let router = Router::answering("call_in1");
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let sipp = Sipp::uac("uac_call_then_bye", "127.0.0.1", agent.addr, "+34911000111");
    assert_eq!(agent.next("call_in1").await, CallEvent::Connected);
    assert_eq!(
        agent.next("call_in1").await,
        CallEvent::Ended {
            cause: EndCause::RemoteHangup
        }
    );
    assert!(sipp.passed().await);
    let seen = router.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].to_e164, "+34911000111");
    assert_eq!(seen[0].from_e164.as_deref(), Some("+34600000001"));
    assert_eq!(seen[0].trunk, "test");
    assert!(seen[0].sdp_offer.contains("o=trunk-offer"));
    assert!(!seen[0].sip_call_id.is_empty());
    assert_eq!(seen[0].source.ip().to_string(), "127.0.0.1");
}

#[tokio::test]
async fn inbound_refused_by_the_router() {
    if !sipp_ready() {
        return;
    }
    let router = Router::new(InboundDecision::Refuse {
        code: 404,
        reason: "no such number".into(),
    });
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let sipp = Sipp::uac("uac_expect_404", "127.0.0.1", agent.addr, "+34911000999");
    assert!(sipp.passed().await);
    assert_eq!(router.seen().len(), 1);
    agent.no_signal(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn inbound_from_a_foreign_address_is_forbidden_and_never_routed() {
    if !sipp_ready() {
        return;
    }
    let router = Router::answering("call_in3");
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let sipp = Sipp::uac("uac_expect_403", "127.0.0.2", agent.addr, "+34911000111");
    assert!(sipp.passed().await);
    assert!(router.seen().is_empty());
    agent.no_signal(Duration::from_millis(200)).await;
}

const NO_CALL_ID: &str = "INVITE sip:+34911000111@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-nocallid\r\nFrom: <sip:+34600000001@127.0.0.1>;tag=a\r\nTo: <sip:+34911000111@127.0.0.1>\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

fn with_length(length: &str, branch: &str) -> String {
    format!(
        "INVITE sip:+34911000111@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{branch}\r\nFrom: <sip:+34600000001@127.0.0.1>;tag=a\r\nTo: <sip:+34911000111@127.0.0.1>\r\nCall-ID: {branch}@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {length}\r\n\r\nv=0\r\n"
    )
}

#[tokio::test]
async fn malformed_datagrams_do_not_stop_the_next_call() {
    if !sipp_ready() {
        return;
    }
    let router = Router::answering("call_in4");
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let garbage: Vec<u8> = (0..1400u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let datagrams: Vec<Vec<u8>> = vec![
        garbage,
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"INVITE\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
        NO_CALL_ID.as_bytes().to_vec(),
        with_length("99999999999999999999", "huge").into_bytes(),
        with_length("4294967296", "overflow").into_bytes(),
        with_length("-5", "negative").into_bytes(),
        with_length("60000", "short").into_bytes(),
    ];
    for datagram in &datagrams {
        socket.send_to(datagram, agent.addr).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // None of them reached the router.
    assert!(router.seen().is_empty(), "{:?}", router.seen());
    let sipp = Sipp::uac("uac_call_then_bye", "127.0.0.1", agent.addr, "+34911000111");
    assert_eq!(agent.next("call_in4").await, CallEvent::Connected);
    assert_eq!(
        agent.next("call_in4").await,
        CallEvent::Ended {
            cause: EndCause::RemoteHangup
        }
    );
    assert!(sipp.passed().await);
}

fn request(method: &str, local: std::net::SocketAddr) -> String {
    format!(
        "{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{method}\r\nFrom: <sip:a@127.0.0.1>;tag=f\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: {method}@test\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn answer_to(socket: &UdpSocket, within: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(within, socket.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Methods the stack does not know are dropped at parsing; known ones we do not serve
/// outside a dialog get 405, OPTIONS (trunk keep-alives) 200.
#[tokio::test]
async fn unsupported_methods_get_405_and_unknown_ones_are_dropped() {
    let agent = start(vec![trunk(9)], Router::answering("unused")).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let send = |method: &str| request(method, local);
    socket
        .send_to(send("FROBNICATE").as_bytes(), agent.addr)
        .await
        .unwrap();
    assert_eq!(answer_to(&socket, Duration::from_millis(500)).await, None);
    socket
        .send_to(send("SUBSCRIBE").as_bytes(), agent.addr)
        .await
        .unwrap();
    let answer = answer_to(&socket, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("SIP/2.0 405"), "{answer}");
    socket
        .send_to(send("OPTIONS").as_bytes(), agent.addr)
        .await
        .unwrap();
    let answer = answer_to(&socket, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
}

#[tokio::test]
async fn shutdown_ends_a_live_call_with_bye() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_answer_wait_bye", port).await;
    let mut agent = start(vec![trunk(port)], Router::answering("unused")).await;
    agent.ua.invite(call("call_out8")).await.unwrap();
    assert_eq!(agent.next("call_out8").await, CallEvent::Ringing);
    let event = agent.next("call_out8").await;
    assert!(answered(&event), "{event:?}");
    agent.ua.shutdown().await;
    assert_eq!(
        agent.next("call_out8").await,
        CallEvent::Ended {
            cause: EndCause::LocalHangup
        }
    );
    assert!(sipp.passed().await);
    assert!(matches!(
        agent.ua.invite(call("call_out9")).await,
        Err(ami_sip::InviteError::ShuttingDown)
    ));
}

#[tokio::test]
async fn outbound_to_a_sip_uri_bypasses_the_trunks() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_answer_then_bye", port).await;
    // The only trunk points nowhere: the call must go to the URI.
    let mut agent = start(vec![trunk(9)], Router::answering("unused")).await;
    let invite = ami_sip::UriInvite {
        call_id: "call_uri1".into(),
        target: format!("sip:bridge@127.0.0.1:{port}"),
        from: "+34911000111".into(),
        sdp_offer: OFFER.into(),
    };
    agent.ua.invite_uri(invite).await.unwrap();
    assert_eq!(agent.next("call_uri1").await, CallEvent::Ringing);
    let event = agent.next("call_uri1").await;
    assert!(answered(&event), "{event:?}");
    assert_eq!(
        agent.next("call_uri1").await,
        CallEvent::Ended {
            cause: EndCause::RemoteHangup
        }
    );
    assert!(sipp.passed().await);
    let bad = ami_sip::UriInvite {
        call_id: "call_uri2".into(),
        target: "not a uri".into(),
        from: "+34911000111".into(),
        sdp_offer: OFFER.into(),
    };
    assert!(matches!(
        agent.ua.invite_uri(bad).await,
        Err(ami_sip::InviteError::BadUri(_))
    ));
}

#[tokio::test]
async fn inbound_without_ack_ends_with_ack_timeout_and_bye() {
    if !sipp_ready() {
        return;
    }
    let router = Router::answering("call_in5");
    // T1 is 100 ms in these tests: the ACK is awaited 6.4 s.
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let sipp = Sipp::uac("uac_no_ack", "127.0.0.1", agent.addr, "+34911000111");
    assert_eq!(
        agent.next("call_in5").await,
        CallEvent::Ended {
            cause: EndCause::AckTimeout
        }
    );
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn registration_answers_the_digest_challenge() {
    if !sipp_ready() {
        return;
    }
    let port = free_port("127.0.0.1");
    let sipp = Sipp::uas("uas_register", port).await;
    let mut registering = trunk(port);
    registering.register = true;
    registering.register_expiry_secs = 600;
    let agent = start(vec![registering], Router::answering("unused")).await;
    let mut registered = false;
    for _ in 0..100 {
        if agent.ua.is_registered("test") {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(registered, "no successful registration within 10 s");
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn inbound_cancelled_while_the_router_decides() {
    if !sipp_ready() {
        return;
    }
    let router = std::sync::Arc::new(common::Router {
        seen: Default::default(),
        decision: InboundDecision::Answer {
            call_id: "call_in6".into(),
            sdp_answer: OFFER.into(),
        },
        delay: Duration::from_millis(1500),
    });
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let sipp = Sipp::uac("uac_cancel_early", "127.0.0.1", agent.addr, "+34911000111");
    assert!(sipp.passed().await);
    // The router committed to a call that the caller had already given up.
    assert_eq!(
        agent.next("call_in6").await,
        CallEvent::Ended {
            cause: EndCause::CallerCancelled
        }
    );
    assert_eq!(router.seen().len(), 1);
}

#[tokio::test]
async fn outbound_over_tcp() {
    if !sipp_ready() {
        return;
    }
    let port = common::free_tcp_port();
    let sipp = Sipp::uas_tcp("uas_answer_then_bye", port).await;
    let mut tcp_trunk = trunk(port);
    tcp_trunk.transport = ami_sip::Transport::Tcp;
    let mut settings = ami_sip::SipSettings::new(None, vec![tcp_trunk]);
    settings.listen_tcp = Some(
        format!("127.0.0.1:{}", common::free_tcp_port())
            .parse()
            .unwrap(),
    );
    settings.t1_ms = 100;
    let (ua, mut signals) = ami_sip::Ua::start(settings, Router::answering("unused"))
        .await
        .unwrap();
    ua.invite(call("call_tcp1")).await.unwrap();
    let mut events = Vec::new();
    while let Ok(Some(signal)) = tokio::time::timeout(Duration::from_secs(10), signals.recv()).await
    {
        let last = matches!(signal.event, CallEvent::Ended { .. });
        events.push(signal.event);
        if last {
            break;
        }
    }
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], CallEvent::Ringing);
    assert!(answered(&events[1]), "{events:?}");
    assert_eq!(
        events[2],
        CallEvent::Ended {
            cause: EndCause::RemoteHangup
        }
    );
    assert!(sipp.passed().await);
}

/// Deterministic pseudo-random numbers (xorshift), so a failure replays.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A valid INVITE with a few bytes changed, cut, or a header doubled.
fn mutated_invite(noise: &mut Noise, i: usize) -> Vec<u8> {
    let mut bytes = with_length("5", &format!("mut{i}")).into_bytes();
    match noise.below(4) {
        0 => {
            for _ in 0..1 + noise.below(8) {
                let at = noise.below(bytes.len());
                bytes[at] = noise.next() as u8;
            }
        }
        1 => bytes.truncate(noise.below(bytes.len())),
        2 => {
            let at = noise.below(bytes.len());
            let insert: &[u8] =
                [&b"\r\n"[..], b":", b";;;", b"\0", b"Content-Length: 7\r\n"][noise.below(5)];
            bytes.splice(at..at, insert.iter().copied());
        }
        _ => {
            let at = noise.below(bytes.len());
            let len = noise.below(bytes.len() - at);
            bytes.drain(at..at + len);
        }
    }
    bytes
}

#[tokio::test]
async fn mutated_invites_and_tcp_garbage_leave_the_agent_serving() {
    if !sipp_ready() {
        return;
    }
    let router = Router::new(InboundDecision::Refuse {
        code: 404,
        reason: "no such number".into(),
    });
    let mut settings =
        ami_sip::SipSettings::new(Some("127.0.0.1:0".parse().unwrap()), vec![trunk(9)]);
    let tcp: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_tcp_port())
        .parse()
        .unwrap();
    settings.listen_tcp = Some(tcp);
    let (ua, _signals) = ami_sip::Ua::start(settings, router.clone()).await.unwrap();
    let udp = ua.local_addrs()[0];
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for i in 0..400 {
        socket
            .send_to(&mutated_invite(&mut noise, i), udp)
            .await
            .unwrap();
    }
    // A stream claiming a body far larger than anything sent, then noise.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(with_length("99999999999", "tcp").as_bytes())
        .await
        .unwrap();
    let junk: Vec<u8> = (0..65_536).map(|_| noise.next() as u8).collect();
    let _ = stream.write_all(&junk).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sipp = Sipp::uac("uac_expect_404", "127.0.0.1", udp, "+34911000999");
    assert!(sipp.passed().await);
}

#[tokio::test]
async fn inbound_session_refresh_keeps_the_call() {
    if !sipp_ready() {
        return;
    }
    let router = Router::answering("call_in7");
    let mut agent = start(vec![trunk(9)], router.clone()).await;
    let sipp = Sipp::uac("uac_reinvite", "127.0.0.1", agent.addr, "+34911000111");
    assert_eq!(agent.next("call_in7").await, CallEvent::Connected);
    assert_eq!(
        agent.next("call_in7").await,
        CallEvent::Ended {
            cause: EndCause::RemoteHangup
        }
    );
    assert!(sipp.passed().await);
}
