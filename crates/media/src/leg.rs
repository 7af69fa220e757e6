//! The RTP endpoint of one call: a UDP socket on a leased port, symmetric RTP with
//! latching, and a sender with correct sequence numbers, timestamps and SSRC.
//!
//! Latching rule: before the first packet we send to the address of the remote SDP.
//! The first valid RTP packet (version 2, our codec's or telephone-event's payload
//! type) whose source may speak for the call fixes the remote address, and from then
//! on we send only there and accept only packets from exactly there. A source may
//! speak for the call if its IP is the SDP's IP, or, when the SDP's address is private,
//! shared (CGNAT), link-local or unspecified (the caller is behind NAT or on hold), any
//! source. Everything else is dropped and counted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rand::Rng;
use tokio::net::UdpSocket;

use crate::counters::MediaCounters;
use crate::dtmf::DtmfDetector;
use crate::ports::{PortAllocator, PortError, PortLease};
use crate::rtp::Packet;
use crate::sdp::{Codec, Negotiated};

/// Samples (and μ-law bytes) in 20 ms at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Largest datagram read; longer ones are truncated and so refused.
const MAX_DATAGRAM: usize = 1500;
/// Ports tried when a leased port is taken by another process.
const BIND_ATTEMPTS: usize = 8;

/// Why a leg failed.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    /// No port to bind.
    #[error(transparent)]
    Ports(#[from] PortError),
    /// A socket error.
    #[error("RTP socket: {0}")]
    Io(#[from] std::io::Error),
    /// A packet could not be written.
    #[error(transparent)]
    Rtp(#[from] crate::rtp::RtpError),
}

/// What the remote side of a leg sends, as negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteEndpoint {
    /// From the SDP: where to send until latched.
    pub address: SocketAddr,
    /// The negotiated codec and payload types.
    pub negotiated: Negotiated,
}

impl RemoteEndpoint {
    /// The remote side as the SDP states it.
    pub fn from_sdp(remote: &crate::sdp::RemoteAudio, negotiated: Negotiated) -> Self {
        Self {
            address: SocketAddr::new(remote.address, remote.port),
            negotiated,
        }
    }
}

/// One thing received on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Audio in the leg's codec.
    Audio(Vec<u8>),
    /// A telephone-event packet: its RTP timestamp, raw payload, and the digit if it starts
    /// a new event.
    Event {
        /// RTP timestamp (the event's start).
        timestamp: u32,
        /// The 4-byte payload.
        payload: Vec<u8>,
        /// The digit, once per event.
        digit: Option<char>,
    },
}

/// Counters of one leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// Packets accepted.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Packets from a source other than the latched (or allowed) one.
    pub stranger: u64,
    /// Datagrams that are not RTP, RTCP, or of a payload type not negotiated.
    pub invalid: u64,
}

/// Whether the first packet from `source` may latch a leg whose SDP said `sdp_ip`.
pub fn may_latch(sdp_ip: IpAddr, source: IpAddr) -> bool {
    fn canonical(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        }
    }
    let (sdp_ip, source) = (canonical(sdp_ip), canonical(source));
    sdp_ip == source || !is_public(sdp_ip)
}

/// Addresses a NAT'd or held caller puts in its SDP, which say nothing about where its
/// packets come from.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// The RTP endpoint of one call.
#[derive(Debug)]
pub struct RtpLeg {
    socket: UdpSocket,
    _lease: PortLease,
    remote: Option<RemoteEndpoint>,
    latched: Option<SocketAddr>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    first_sent: bool,
    /// Remote timestamp of the event being forwarded, and our timestamp for it.
    event_map: Option<(u32, u32)>,
    dtmf: DtmfDetector,
    stats: LegStats,
    /// The process's totals, when the leg is counted in them.
    totals: Option<Arc<MediaCounters>>,
    buf: Vec<u8>,
}

impl RtpLeg {
    /// Binds a socket on `ip` at a leased port (its number goes into our SDP).
    pub async fn bind(ports: &PortAllocator, ip: IpAddr) -> Result<Self, LegError> {
        let mut last_err = None;
        for _ in 0..BIND_ATTEMPTS {
            let lease = ports.allocate()?;
            match UdpSocket::bind(SocketAddr::new(ip, lease.port())).await {
                Ok(socket) => return Ok(Self::with_socket(socket, lease)),
                // Taken by another process: the lease goes back, and the round-robin
                // pool offers the next port.
                Err(e) => last_err = Some(e),
            }
        }
        Err(LegError::Io(last_err.unwrap_or_else(|| {
            std::io::Error::other("no port could be bound")
        })))
    }

    fn with_socket(socket: UdpSocket, lease: PortLease) -> Self {
        let mut rng = rand::thread_rng();
        Self {
            socket,
            _lease: lease,
            remote: None,
            latched: None,
            ssrc: rng.r#gen(),
            sequence: rng.r#gen(),
            timestamp: rng.r#gen(),
            first_sent: false,
            event_map: None,
            dtmf: DtmfDetector::new(),
            stats: LegStats::default(),
            totals: None,
            buf: vec![0; MAX_DATAGRAM],
        }
    }

    /// Our RTP port.
    pub fn local_port(&self) -> u16 {
        self._lease.port()
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> Result<SocketAddr, LegError> {
        Ok(self.socket.local_addr()?)
    }

    /// Sets (or, on a re-INVITE, replaces) the remote side; a new address unlatches.
    pub fn set_remote(&mut self, remote: RemoteEndpoint) {
        if self.remote.map(|r| r.address) != Some(remote.address) {
            self.latched = None;
        }
        self.remote = Some(remote);
    }

    /// The negotiated codec, once the remote side is known.
    pub fn codec(&self) -> Option<Codec> {
        self.remote.map(|r| r.negotiated.codec)
    }

    /// Where packets go now: the latched source, else the SDP address.
    pub fn send_target(&self) -> Option<SocketAddr> {
        self.latched.or(self.remote.map(|r| r.address))
    }

    /// The latched source, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Counters.
    pub fn stats(&self) -> LegStats {
        self.stats
    }

    /// From now on, what this leg receives and sends is added to `totals` as well.
    pub fn count_into(&mut self, totals: Arc<MediaCounters>) {
        self.totals = Some(totals);
    }

    /// Adds what changed since `before` to the totals.
    fn report(&self, before: LegStats) {
        if let Some(t) = &self.totals {
            let now = self.stats;
            MediaCounters::add(&t.rtp_in, now.received - before.received);
            MediaCounters::add(&t.rtp_out, now.sent - before.sent);
            MediaCounters::add(&t.rtp_stranger, now.stranger - before.stranger);
            MediaCounters::add(&t.rtp_invalid, now.invalid - before.invalid);
        }
    }

    /// Waits for the next accepted packet. Cancel-safe: state changes only after a
    /// datagram has been read.
    pub async fn recv(&mut self) -> Result<Incoming, LegError> {
        loop {
            let (len, source) = self.socket.recv_from(&mut self.buf).await?;
            let before = self.stats;
            let accepted = self.accept(len, source);
            self.report(before);
            if let Some(incoming) = accepted {
                return Ok(incoming);
            }
        }
    }

    fn accept(&mut self, len: usize, source: SocketAddr) -> Option<Incoming> {
        let Some(remote) = self.remote else {
            // Nothing negotiated yet: nobody may speak.
            self.stats.stranger += 1;
            return None;
        };
        if let Some(latched) = self.latched
            && latched != source
        {
            self.stats.stranger += 1;
            return None;
        }
        if self.latched.is_none() && !may_latch(remote.address.ip(), source.ip()) {
            self.stats.stranger += 1;
            return None;
        }
        if len >= self.buf.len() {
            self.stats.invalid += 1;
            return None;
        }
        let Some(data) = self.buf.get(..len) else {
            self.stats.invalid += 1;
            return None;
        };
        let Ok(packet) = Packet::parse(data) else {
            self.stats.invalid += 1;
            return None;
        };
        let n = remote.negotiated;
        let incoming = if packet.payload_type == n.payload_type {
            Incoming::Audio(packet.payload)
        } else if Some(packet.payload_type) == n.telephone_event {
            let digit = self.dtmf.push(packet.timestamp, &packet.payload);
            Incoming::Event {
                timestamp: packet.timestamp,
                payload: packet.payload,
                digit,
            }
        } else {
            self.stats.invalid += 1;
            return None;
        };
        self.latched.get_or_insert(source);
        self.stats.received += 1;
        Some(incoming)
    }

    /// Sends one audio packet in the leg's codec; the timestamp advances by its samples.
    /// Without a remote side the audio is dropped.
    pub async fn send_audio(&mut self, payload: &[u8]) -> Result<(), LegError> {
        let Some(remote) = self.remote else {
            return Ok(());
        };
        self.event_map = None;
        let pt = remote.negotiated.payload_type;
        let ts = self.timestamp;
        self.send(pt, ts, payload.to_vec()).await?;
        self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
        Ok(())
    }

    /// Forwards a telephone-event packet whose RTP timestamp on its own stream was
    /// `remote_timestamp`: every packet of one event gets the same timestamp of ours, the
    /// first one the marker bit. Dropped if this leg negotiated no telephone-event.
    pub async fn send_event(
        &mut self,
        remote_timestamp: u32,
        payload: &[u8],
    ) -> Result<(), LegError> {
        let Some(pt) = self.remote.and_then(|r| r.negotiated.telephone_event) else {
            return Ok(());
        };
        let (ts, new_event) = match self.event_map {
            Some((theirs, ours)) if theirs == remote_timestamp => (ours, false),
            _ => (self.timestamp, true),
        };
        self.event_map = Some((remote_timestamp, ts));
        let target = self.send_target();
        let Some(target) = target else { return Ok(()) };
        let packet = Packet {
            payload_type: pt,
            marker: new_event,
            sequence: self.sequence,
            timestamp: ts,
            ssrc: self.ssrc,
            payload: payload.to_vec(),
        };
        self.socket.send_to(&packet.to_bytes()?, target).await?;
        self.sequence = self.sequence.wrapping_add(1);
        self.count_sent();
        Ok(())
    }

    fn count_sent(&mut self) {
        let before = self.stats;
        self.stats.sent += 1;
        self.report(before);
    }

    async fn send(&mut self, pt: u8, ts: u32, payload: Vec<u8>) -> Result<(), LegError> {
        let Some(target) = self.send_target() else {
            return Ok(());
        };
        let packet = Packet {
            payload_type: pt,
            marker: !self.first_sent,
            sequence: self.sequence,
            timestamp: ts,
            ssrc: self.ssrc,
            payload,
        };
        self.socket.send_to(&packet.to_bytes()?, target).await?;
        self.first_sent = true;
        self.sequence = self.sequence.wrapping_add(1);
        self.count_sent();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([255, 255, 255, 255]))
    }

    #[test]
    fn latching_rule() {
        // Public SDP address: only that IP (any port) may latch.
        assert!(may_latch(ip("203.0.113.9"), ip("203.0.113.9")));
        assert!(!may_latch(ip("203.0.113.9"), ip("198.51.100.1")));
        assert!(may_latch(ip("203.0.113.9"), ip("::ffff:203.0.113.9")));
        // Private, CGNAT, link-local, unspecified: the caller is behind NAT; any source.
        for sdp in [
            "10.1.2.3",
            "192.168.1.5",
            "172.16.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "fd00::1",
            "::",
        ] {
            assert!(may_latch(ip(sdp), ip("198.51.100.1")), "{sdp}");
        }
        // Loopback is not NAT: it must match.
        assert!(!may_latch(ip("127.0.0.1"), ip("198.51.100.1")));
        assert!(!may_latch(ip("100.128.0.1"), ip("198.51.100.1")));
    }
}
