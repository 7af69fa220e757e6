//! Concatenated mobile-originated messages: the part numbering of each `deliver_sm` (a
//! header in `short_message` or the `sar_*` TLVs), and the reassembly of the parts into one
//! message.
//!
//! Every part is acknowledged (`deliver_sm_resp`) only once the whole message is handed
//! over, so each part carries an acknowledgement token until then: a completed message
//! returns the tokens of all its parts, an abandoned one returns them through
//! [`Reassembler::expire`] so that the caller can answer with a temporary error and the
//! SMSC resends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The UDHI bit of `esm_class`: `short_message` starts with a user data header.
const UDHI: u8 = 0x40;
/// Information elements of the concatenation header (3GPP TS 23.040 §9.2.3.24).
const IEI_CONCAT_8BIT: u8 = 0x00;
const IEI_CONCAT_16BIT: u8 = 0x08;

/// The position of a part in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

impl Fragment {
    /// Whether this numbering can belong to a concatenated message: 1 ≤ seq ≤ total.
    pub fn is_valid(&self) -> bool {
        self.seq >= 1 && self.seq <= self.total
    }
}

/// The part numbering of a `deliver_sm` and its text bytes.
///
/// With the UDHI bit set, the user data header is read and removed: a concatenation
/// element (8-bit or 16-bit reference) gives the numbering, other elements are skipped. A
/// header that does not fit its own length is treated as absent: the whole `short_message`
/// is text. `sar` (`sar_msg_ref_num`, `sar_total_segments`, `sar_segment_seqnum`) wins
/// over the header's numbering when both are present.
pub fn fragment(
    esm_class: u8,
    short_message: &[u8],
    sar: Option<(u16, u8, u8)>,
) -> (Option<Fragment>, &[u8]) {
    let (from_header, text) = if esm_class & UDHI != 0 {
        match read_header(short_message) {
            Some((concat, text)) => (concat, text),
            None => (None, short_message),
        }
    } else {
        (None, short_message)
    };
    let from_sar = sar.map(|(reference, total, seq)| Fragment {
        reference,
        total,
        seq,
    });
    (from_sar.or(from_header), text)
}

/// The concatenation element of a user data header (if any) and the bytes after the header,
/// or None when the header is malformed.
fn read_header(short_message: &[u8]) -> Option<(Option<Fragment>, &[u8])> {
    let (&header_length, rest) = short_message.split_first()?;
    let header_length = usize::from(header_length);
    if rest.len() < header_length {
        return None;
    }
    let (mut elements, text) = rest.split_at(header_length);
    let mut concat = None;
    while let Some((&iei, after_iei)) = elements.split_first() {
        let (&length, after_length) = after_iei.split_first()?;
        let length = usize::from(length);
        if after_length.len() < length {
            return None;
        }
        let (data, next) = after_length.split_at(length);
        match (iei, data) {
            (IEI_CONCAT_8BIT, &[reference, total, seq]) => {
                concat = Some(Fragment {
                    reference: u16::from(reference),
                    total,
                    seq,
                });
            }
            (IEI_CONCAT_16BIT, &[high, low, total, seq]) => {
                concat = Some(Fragment {
                    reference: u16::from_be_bytes([high, low]),
                    total,
                    seq,
                });
            }
            (IEI_CONCAT_8BIT | IEI_CONCAT_16BIT, _) => return None,
            _ => {}
        }
        elements = next;
    }
    Some((concat, text))
}

/// Who sent a concatenated message to whom, and its numbering: parts that agree on all of
/// it belong together.
type MessageKey = (String, String, u16, u8);

/// A concatenated message whose parts are not all there yet.
struct Pending<A> {
    first_seen: Instant,
    /// Index seq - 1: the text and token of each part received.
    parts: Vec<Option<(String, A)>>,
    /// Tokens of parts received again and replaced by the later copy. They are held, not
    /// answered, until the message completes or is abandoned: answering one earlier could
    /// tell the SMSC that a part is taken while no message has been handed over yet.
    superseded: Vec<A>,
}

impl<A> Pending<A> {
    fn into_acks(self) -> Vec<A> {
        self.parts
            .into_iter()
            .flatten()
            .map(|(_, ack)| ack)
            .chain(self.superseded)
            .collect()
    }
}

/// Reassembly of concatenated messages, bounded in time and in number.
///
/// Call [`Reassembler::expire`] on a timer and after each [`Reassembler::push`] that
/// returned None: a push that has to make room evicts the oldest incomplete message, whose
/// tokens wait for the next `expire` call.
pub struct Reassembler<A> {
    timeout: Duration,
    max_pending: usize,
    pending: HashMap<MessageKey, Pending<A>>,
    /// Tokens of messages evicted to make room, handed out by the next `expire`.
    evicted: Vec<A>,
}

impl<A> Reassembler<A> {
    /// Incomplete messages are abandoned `timeout` after their first part arrived, and at
    /// most `max_pending` (at least 1) are kept at a time.
    pub fn new(timeout: Duration, max_pending: usize) -> Self {
        Reassembler {
            timeout,
            max_pending: max_pending.max(1),
            pending: HashMap::new(),
            evicted: Vec::new(),
        }
    }

    /// Adds a part sent from `key.0` to `key.1`. Returns the whole text and the tokens of
    /// every part received for it, in part order, then those of superseded copies, once the
    /// last part arrives; None while parts are missing.
    ///
    /// A part received again replaces the earlier copy's text; the earlier token is kept and
    /// returned with the others. A numbering that cannot be concatenated (total 0, seq 0,
    /// seq > total) or a single-part message (total 1) is a whole message by itself.
    pub fn push(
        &mut self,
        key: (String, String),
        frag: Fragment,
        text: String,
        ack: A,
        now: Instant,
    ) -> Option<(String, Vec<A>)> {
        if !frag.is_valid() || frag.total == 1 {
            return Some((text, vec![ack]));
        }
        let (from, to) = key;
        let key = (from, to, frag.reference, frag.total);
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_pending {
            self.evict_oldest();
        }
        let pending = self.pending.entry(key.clone()).or_insert_with(|| Pending {
            first_seen: now,
            parts: (0..frag.total).map(|_| None).collect(),
            superseded: Vec::new(),
        });
        // parts has `total` slots and 1 <= seq <= total: the slot exists.
        let Some(slot) = pending.parts.get_mut(usize::from(frag.seq) - 1) else {
            return Some((text, vec![ack]));
        };
        if let Some((_, earlier)) = slot.replace((text, ack)) {
            pending.superseded.push(earlier);
        }
        if pending.parts.iter().any(Option::is_none) {
            return None;
        }
        let pending = self.pending.remove(&key)?;
        let text = pending
            .parts
            .iter()
            .flatten()
            .map(|(text, _)| text.as_str())
            .collect();
        Some((text, pending.into_acks()))
    }

    /// Abandons the incomplete messages whose first part is `timeout` old or older, and
    /// returns their tokens together with those of messages evicted to make room.
    pub fn expire(&mut self, now: Instant) -> Vec<A> {
        let mut acks = std::mem::take(&mut self.evicted);
        let timeout = self.timeout;
        let expired: Vec<MessageKey> = self
            .pending
            .iter()
            .filter(|(_, pending)| now.saturating_duration_since(pending.first_seen) >= timeout)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            if let Some(pending) = self.pending.remove(&key) {
                acks.extend(pending.into_acks());
            }
        }
        acks
    }

    /// Incomplete messages held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, pending)| pending.first_seen)
            .map(|(key, _)| key.clone());
        if let Some(pending) = oldest.and_then(|key| self.pending.remove(&key)) {
            self.evicted.extend(pending.into_acks());
        }
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
