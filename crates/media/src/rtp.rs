//! RTP packets (RFC 3550), read and written with `rtp-types`.
//!
//! Only what a G.711 leg needs is kept from a received packet; CSRCs, header
//! extensions and padding are skipped over by the parser, which checks every length
//! against the datagram before reading it.

use rtp_types::{RtpPacket, RtpPacketBuilder};

/// Why a datagram is not an RTP packet we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Too short, wrong version, or lengths past the end of the datagram.
    #[error("not an RTP packet: {0}")]
    Invalid(String),
    /// An RTCP packet on the RTP port (payload types 72-76 with the marker bit, RFC 5761).
    #[error("RTCP packet on the RTP port")]
    Rtcp,
    /// The packet could not be written.
    #[error("RTP write: {0}")]
    Write(String),
}

/// One RTP packet, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp in the payload's clock (8 kHz for G.711 and telephone-event).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without padding.
    pub payload: Vec<u8>,
}

impl Packet {
    /// Parses one datagram.
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        let p = RtpPacket::parse(data).map_err(|e| RtpError::Invalid(e.to_string()))?;
        // RTCP multiplexed on the RTP port reads as payload type 72..=76 with the marker
        // set (its packet types 200..=204).
        if (72..=76).contains(&p.payload_type()) && p.marker_bit() {
            return Err(RtpError::Rtcp);
        }
        Ok(Self {
            payload_type: p.payload_type(),
            marker: p.marker_bit(),
            sequence: p.sequence_number(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            payload: p.payload().to_vec(),
        })
    }

    /// The datagram of this packet (no CSRC, no extension, no padding).
    pub fn to_bytes(&self) -> Result<Vec<u8>, RtpError> {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(self.payload_type)
            .marker_bit(self.marker)
            .sequence_number(self.sequence)
            .timestamp(self.timestamp)
            .ssrc(self.ssrc)
            .payload(self.payload.as_slice())
            .write_vec()
            .map_err(|e| RtpError::Write(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let p = Packet {
            payload_type: 0,
            marker: true,
            sequence: 65_535,
            timestamp: 0xdead_beef,
            ssrc: 0x1234_5678,
            payload: vec![0xff; 160],
        };
        let bytes = p.to_bytes().unwrap_or_default();
        assert_eq!(bytes.len(), 12 + 160);
        assert_eq!(bytes[0], 0x80);
        assert_eq!(bytes[1], 0x80);
        assert_eq!(Packet::parse(&bytes), Ok(p));
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut d = vec![0xb2, 8, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1]; // V=2 P X CC=2, PT 8
        d.extend([0, 0, 0, 2, 0, 0, 0, 3]); // two CSRCs
        d.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension of one word
        d.extend([0xaa, 0xbb, 0xcc]); // payload
        d.extend([0, 0, 3]); // padding of 3, count included
        let p = Packet::parse(&d);
        assert_eq!(
            p.map(|p| (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.payload)),
            Ok((8, 7, 9, 1, vec![0xaa, 0xbb, 0xcc]))
        );
    }

    #[test]
    fn bad_packets_are_refused() {
        // Version 1.
        assert!(Packet::parse(&[0x40; 20]).is_err());
        // Too short.
        assert!(Packet::parse(&[0x80, 0, 0]).is_err());
        // Four CSRCs announced, none present.
        assert!(Packet::parse(&[0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Padding longer than the packet.
        let mut d = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 200];
        assert!(Packet::parse(&d).is_err());
        // Padding of zero.
        d[13] = 0;
        assert!(Packet::parse(&d).is_err());
        // An RTCP sender report.
        assert_eq!(
            Packet::parse(&[0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(RtpError::Rtcp)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_no_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Packet::parse(&bytes) {
                prop_assert!(p.payload.len() + 12 <= bytes.len());
            }
        }

        #[test]
        fn built_packets_parse_back(pt in 0u8..72, marker: bool, seq: u16, ts: u32, ssrc: u32,
                                    payload in proptest::collection::vec(any::<u8>(), 0..400)) {
            let p = Packet { payload_type: pt, marker, sequence: seq, timestamp: ts, ssrc, payload };
            let bytes = p.to_bytes();
            prop_assert!(bytes.is_ok());
            prop_assert_eq!(Packet::parse(&bytes.unwrap_or_default()), Ok(p));
        }
    }
}
