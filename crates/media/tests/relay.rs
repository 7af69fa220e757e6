//! Two RTP peers joined by the relay, one on PCMU and one on PCMA.

use std::net::SocketAddr;
use std::time::Duration;

use ami_media::dtmf::TelephoneEvent;
use ami_media::g711;
use ami_media::leg::{RemoteEndpoint, RtpLeg};
use ami_media::ports::PortAllocator;
use ami_media::relay::{RelayEndReason, spawn_relay};
use ami_media::rtp::Packet;
use ami_media::sdp::{Codec, Negotiated};
use tokio::net::UdpSocket;

async fn peer() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = s.local_addr().unwrap_or_else(|e| panic!("{e}"));
    (s, a)
}

async fn leg(
    ports: &PortAllocator,
    remote: SocketAddr,
    codec: Codec,
    te: u8,
) -> (RtpLeg, SocketAddr) {
    let mut leg = RtpLeg::bind(ports, "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    leg.set_remote(RemoteEndpoint {
        address: remote,
        negotiated: Negotiated {
            codec,
            payload_type: codec.payload_type(),
            telephone_event: Some(te),
        },
    });
    let addr = leg.local_addr().unwrap_or_else(|e| panic!("{e}"));
    (leg, addr)
}

async fn send(s: &UdpSocket, to: SocketAddr, pt: u8, seq: u16, ts: u32, payload: Vec<u8>) {
    let p = Packet {
        payload_type: pt,
        marker: false,
        sequence: seq,
        timestamp: ts,
        ssrc: 5,
        payload,
    };
    let _ = s.send_to(&p.to_bytes().unwrap_or_default(), to).await;
}

async fn recv(s: &UdpSocket) -> Option<(Packet, SocketAddr)> {
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_millis(500), s.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Packet::parse(&buf[..n]).ok().map(|p| (p, from))
}

#[tokio::test]
async fn relays_and_transcodes_between_two_legs_only() {
    let ports = PortAllocator::new(44_000, 44_099).unwrap_or_else(|e| panic!("{e}"));
    let (pa, pa_addr) = peer().await;
    let (pb, pb_addr) = peer().await;
    let (la, la_addr) = leg(&ports, pa_addr, Codec::Pcmu, 101).await;
    let (lb, lb_addr) = leg(&ports, pb_addr, Codec::Pcma, 96).await;
    let (control, relay) = spawn_relay(la, lb, None);

    let ulaw: Vec<u8> = (0..160).map(|i| i as u8).collect();
    send(&pa, la_addr, 0, 1, 160, ulaw.clone()).await;
    let Some((p, from)) = recv(&pb).await else {
        panic!("nothing relayed to B")
    };
    assert_eq!(from, lb_addr);
    assert_eq!(p.payload_type, 8);
    assert_eq!(p.payload, g711::ulaw_to_alaw(&ulaw));

    let alaw: Vec<u8> = (0..160).map(|i| (255 - i) as u8).collect();
    send(&pb, lb_addr, 8, 1, 160, alaw.clone()).await;
    let Some((p, from)) = recv(&pa).await else {
        panic!("nothing relayed to A")
    };
    assert_eq!(from, la_addr);
    assert_eq!(p.payload_type, 0);
    assert_eq!(p.payload, g711::alaw_to_ulaw(&alaw));

    // A digit from A reaches B under B's telephone-event type, all packets of the
    // event with one timestamp and the marker on the first.
    for k in 0..4u16 {
        let e = TelephoneEvent {
            event: 9,
            end: k >= 2,
            volume: 10,
            duration: 160 * (k + 1),
        };
        send(&pa, la_addr, 101, 10 + k, 7777, e.to_bytes().to_vec()).await;
    }
    let mut events = Vec::new();
    for _ in 0..4 {
        let Some((p, _)) = recv(&pb).await else {
            panic!("event not relayed")
        };
        events.push(p);
    }
    assert!(
        events
            .iter()
            .all(|p| p.payload_type == 96 && p.timestamp == events[0].timestamp)
    );
    assert_eq!(
        events.iter().map(|p| p.marker).collect::<Vec<_>>(),
        vec![true, false, false, false]
    );

    // A stranger writing to A's leg reaches nobody.
    let (stranger, _) = peer().await;
    send(&stranger, la_addr, 0, 1, 0, vec![0x42; 160]).await;
    assert!(recv(&pb).await.is_none(), "a stranger's packet was relayed");

    control.stop();
    let end = relay.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, RelayEndReason::Stopped);
    assert_eq!((end.a_to_b, end.b_to_a, end.stranger_packets), (5, 1, 1));
}

#[tokio::test]
async fn a_silent_relay_times_out() {
    let ports = PortAllocator::new(44_100, 44_199).unwrap_or_else(|e| panic!("{e}"));
    let (_pa, pa_addr) = peer().await;
    let (_pb, pb_addr) = peer().await;
    let (la, _) = leg(&ports, pa_addr, Codec::Pcmu, 101).await;
    let (lb, _) = leg(&ports, pb_addr, Codec::Pcmu, 101).await;
    let (_control, relay) = spawn_relay(la, lb, Some(Duration::from_millis(300)));
    let end = tokio::time::timeout(Duration::from_secs(3), relay)
        .await
        .unwrap_or_else(|_| panic!("no timeout"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(end.reason, RelayEndReason::MediaTimeout);
}
