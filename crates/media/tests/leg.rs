//! Latching of one RTP leg, with sources on different loopback addresses (127.0.0.x).

use std::net::SocketAddr;
use std::time::Duration;

use ami_media::leg::{Incoming, RemoteEndpoint, RtpLeg};
use ami_media::ports::PortAllocator;
use ami_media::rtp::Packet;
use ami_media::sdp::{Codec, Negotiated};
use tokio::net::UdpSocket;

const PCMU: Negotiated = Negotiated {
    codec: Codec::Pcmu,
    payload_type: 0,
    telephone_event: Some(101),
};

async fn socket(ip: &str) -> UdpSocket {
    UdpSocket::bind(format!("{ip}:0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn send(from: &UdpSocket, to: SocketAddr, pt: u8, byte: u8) {
    let p = Packet {
        payload_type: pt,
        marker: false,
        sequence: 1,
        timestamp: 1,
        ssrc: 1,
        payload: vec![byte; 160],
    };
    let _ = from.send_to(&p.to_bytes().unwrap_or_default(), to).await;
}

async fn bound_leg(ports: &PortAllocator, remote: SocketAddr) -> (RtpLeg, SocketAddr) {
    let mut leg = RtpLeg::bind(ports, "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    leg.set_remote(RemoteEndpoint {
        address: remote,
        negotiated: PCMU,
    });
    let addr = leg.local_addr().unwrap_or_else(|e| panic!("{e}"));
    (leg, addr)
}

async fn recv(leg: &mut RtpLeg) -> Option<Incoming> {
    tokio::time::timeout(Duration::from_millis(300), leg.recv())
        .await
        .ok()?
        .ok()
}

#[tokio::test]
async fn only_the_sdp_ip_latches_when_it_is_not_private() {
    let ports = PortAllocator::new(45_000, 45_099).unwrap_or_else(|e| panic!("{e}"));
    let caller = socket("127.0.0.1").await;
    let other_ip = socket("127.0.0.2").await;
    let caller_addr = caller.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (mut leg, leg_addr) = bound_leg(&ports, caller_addr).await;

    // Another IP first: not latched, dropped. A wrong payload type from the right IP:
    // invalid, not latched either.
    send(&other_ip, leg_addr, 0, 0x11).await;
    send(&caller, leg_addr, 18, 0x12).await;
    assert_eq!(recv(&mut leg).await, None);
    assert_eq!(leg.latched(), None);

    // The SDP's IP from another port latches: a NAT may change the port.
    let same_ip_other_port = socket("127.0.0.1").await;
    send(&same_ip_other_port, leg_addr, 0, 0x13).await;
    assert_eq!(recv(&mut leg).await, Some(Incoming::Audio(vec![0x13; 160])));
    let latched = same_ip_other_port
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(leg.latched(), Some(latched));
    assert_eq!(leg.send_target(), Some(latched));

    // From now on even the SDP's own port is a stranger.
    send(&caller, leg_addr, 0, 0x14).await;
    assert_eq!(recv(&mut leg).await, None);
    let stats = leg.stats();
    assert_eq!((stats.received, stats.stranger, stats.invalid), (1, 2, 1));

    // And we send to the latched source.
    leg.send_audio(&[0xff; 160])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = [0u8; 1500];
    let got = tokio::time::timeout(
        Duration::from_millis(300),
        same_ip_other_port.recv_from(&mut buf),
    )
    .await;
    assert!(matches!(got, Ok(Ok((172, from))) if from == leg_addr));
}

#[tokio::test]
async fn any_source_latches_when_the_sdp_address_is_private() {
    let ports = PortAllocator::new(45_100, 45_199).unwrap_or_else(|e| panic!("{e}"));
    let nat = socket("127.0.0.3").await;
    let sdp: SocketAddr = "10.0.0.7:4000".parse().unwrap_or_else(|e| panic!("{e}"));
    let (mut leg, leg_addr) = bound_leg(&ports, sdp).await;
    assert_eq!(leg.send_target(), Some(sdp));
    send(&nat, leg_addr, 0, 0x21).await;
    assert_eq!(recv(&mut leg).await, Some(Incoming::Audio(vec![0x21; 160])));
    assert_eq!(leg.latched(), nat.local_addr().ok());
    // A second source is a stranger.
    let second = socket("127.0.0.4").await;
    send(&second, leg_addr, 0, 0x22).await;
    assert_eq!(recv(&mut leg).await, None);
    assert_eq!(leg.stats().stranger, 1);
}
