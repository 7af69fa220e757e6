//! RFC 4733 telephone-events: the DTMF digits in a call's RTP.
//!
//! A sender repeats the packets of one event while the key is held (same RTP
//! timestamp, growing duration) and sends its end packet three times. A digit is reported
//! once per event: when the first packet of a new event arrives, keyed by its RTP
//! timestamp, so the repeats and the end packets add nothing.

/// One decoded telephone-event payload (RFC 4733 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9, 10 = `*`, 11 = `#`, 12-15 = A-D.
    pub event: u8,
    /// The E bit.
    pub end: bool,
    /// Volume in -dBm0 (6 bits).
    pub volume: u8,
    /// Duration in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads a 4-byte payload; `None` if it is shorter.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let [event, flags, d0, d1, ..] = *payload else {
            return None;
        };
        Some(Self {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let flags = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3f);
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, flags, d0, d1]
    }
}

/// The character of an event code, if it is a DTMF key.
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + (event - 12))),
        _ => None,
    }
}

/// The event code of a DTMF key.
pub fn event_of(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

/// Turns the telephone-event packets of one stream into one digit per event.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    /// RTP timestamp of the last event reported (all packets of one event share it).
    last: Option<u32>,
}

impl DtmfDetector {
    /// A detector that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one telephone-event packet (its RTP timestamp and payload); returns the
    /// digit if the packet starts a new event.
    pub fn push(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        let digit = digit_of(event.event)?;
        if self.last == Some(rtp_timestamp) {
            return None;
        }
        self.last = Some(rtp_timestamp);
        Some(digit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packet(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn one_digit_per_event_despite_repeats_and_three_end_packets() {
        let mut d = DtmfDetector::new();
        let mut got = Vec::new();
        // "5" at ts 1000: three progress packets, three end packets.
        for dur in [160, 320, 480] {
            got.extend(d.push(1000, &packet(5, false, dur)));
        }
        for _ in 0..3 {
            got.extend(d.push(1000, &packet(5, true, 640)));
        }
        // "5" again, a new event (new timestamp), then "#".
        got.extend(d.push(2000, &packet(5, false, 160)));
        got.extend(d.push(2000, &packet(5, true, 320)));
        got.extend(d.push(3000, &packet(11, true, 320)));
        got.extend(d.push(3000, &packet(11, true, 320)));
        assert_eq!(got, vec!['5', '5', '#']);
    }

    #[test]
    fn a_lost_start_still_reports_the_digit_once() {
        let mut d = DtmfDetector::new();
        let got: Vec<char> = (0..3)
            .filter_map(|_| d.push(7, &packet(12, true, 800)))
            .collect();
        assert_eq!(got, vec!['A']);
    }

    #[test]
    fn non_dtmf_events_and_short_payloads_are_ignored() {
        let mut d = DtmfDetector::new();
        assert_eq!(d.push(1, &packet(16, false, 160)), None);
        assert_eq!(d.push(2, &[1, 2, 3]), None);
    }

    #[test]
    fn digits_map_both_ways() {
        for e in 0..16 {
            let c = digit_of(e).unwrap_or(' ');
            assert_eq!(event_of(c), Some(e));
        }
        assert_eq!(digit_of(10), Some('*'));
        assert_eq!(event_of('x'), None);
    }

    proptest! {
        #[test]
        fn any_bytes_no_panic(ts in any::<u32>(), bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut d = DtmfDetector::new();
            let _ = d.push(ts, &bytes);
            if let Some(e) = TelephoneEvent::parse(&bytes) {
                prop_assert_eq!(&e.to_bytes()[..], &{
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&bytes[..4]);
                    b[1] &= 0xbf; // the reserved R bit is not kept
                    b
                }[..]);
            }
        }
    }
}
