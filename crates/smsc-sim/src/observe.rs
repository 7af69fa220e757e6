//! What the simulator saw and did, for tests and benchmark reports.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The kind of bind a session made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindType {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindType {
    pub fn can_submit(self) -> bool {
        matches!(self, BindType::Transmitter | BindType::Transceiver)
    }

    pub fn can_receive(self) -> bool {
        matches!(self, BindType::Receiver | BindType::Transceiver)
    }
}

/// A bound session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindInfo {
    pub session_id: u64,
    pub bind_type: BindType,
    pub system_id: String,
    pub peer: SocketAddr,
}

/// The answer planned for a submit_sm when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitAnswer {
    /// submit_sm_resp with ESME_ROK and this message_id.
    Accepted {
        message_id: String,
    },
    /// submit_sm_resp with this error status and no body.
    Refused {
        status: u32,
    },
    GenericNack,
    /// Never answered (blackhole, dropped connection).
    None,
}

impl SubmitAnswer {
    pub fn message_id(&self) -> Option<&str> {
        match self {
            SubmitAnswer::Accepted { message_id } => Some(message_id),
            _ => None,
        }
    }
}

/// The segmentation TLVs of a submit_sm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SarInfo {
    pub msg_ref_num: u16,
    pub total_segments: u8,
    pub segment_seqnum: u8,
}

/// One submit_sm as received, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRecord {
    pub session_id: u64,
    pub system_id: String,
    pub sequence_number: u32,
    pub source_addr: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub destination_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub esm_class: u8,
    pub data_coding: u8,
    pub registered_delivery: u8,
    pub short_message: Vec<u8>,
    pub sar: Option<SarInfo>,
    pub message_payload: Option<Vec<u8>>,
    pub answer: SubmitAnswer,
    pub received_at: SystemTime,
}

/// Per-session figures, kept after the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    pub session_id: u64,
    pub system_id: String,
    pub bind_type: BindType,
    pub submits: u64,
    /// The most submits received and not yet answered at one time.
    pub max_outstanding: u64,
    /// The most submits received within any one-second span.
    pub max_submits_per_second: u64,
    pub open: bool,
}

/// Totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub connections: u64,
    pub binds: u64,
    pub bind_refusals: u64,
    pub submits: u64,
    /// submit_sm_resp sent, by command_status.
    pub submit_responses: BTreeMap<u32, u64>,
    pub generic_nacks_sent: u64,
    pub generic_nacks_received: u64,
    pub enquire_links: u64,
    pub deliver_sm_sent: u64,
    /// deliver_sm answered by a deliver_sm_resp with ESME_ROK.
    pub deliver_sm_acknowledged: u64,
    /// deliver_sm answered with an error status or a generic_nack.
    pub deliver_sm_refused: u64,
    /// Sends after the first, of deliver_sm not acknowledged in time.
    pub deliver_sm_resent: u64,
    /// deliver_sm given up after the last attempt.
    pub deliver_sm_abandoned: u64,
    pub receipts: u64,
    pub mo_parts: u64,
    /// The highest max_outstanding of any session.
    pub max_outstanding: u64,
    /// The highest max_submits_per_second of any session.
    pub max_submits_per_second: u64,
}

impl Counters {
    /// submit_sm_resp sent with this status.
    pub fn responses_with(&self, status: u32) -> u64 {
        self.submit_responses.get(&status).copied().unwrap_or(0)
    }

    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        let mut statuses = String::new();
        for (index, (status, count)) in self.submit_responses.iter().enumerate() {
            let comma = if index == 0 { "" } else { "," };
            let _ = write!(statuses, "{comma}\"0x{status:08X}\":{count}");
        }
        format!(
            "{{\"connections\":{},\"binds\":{},\"bind_refusals\":{},\"submits\":{},\
             \"submit_responses\":{{{statuses}}},\"generic_nacks_sent\":{},\
             \"generic_nacks_received\":{},\"enquire_links\":{},\"deliver_sm_sent\":{},\
             \"deliver_sm_acknowledged\":{},\"deliver_sm_refused\":{},\"deliver_sm_resent\":{},\
             \"deliver_sm_abandoned\":{},\"receipts\":{},\"mo_parts\":{},\"max_outstanding\":{},\
             \"max_submits_per_second\":{}}}",
            self.connections,
            self.binds,
            self.bind_refusals,
            self.submits,
            self.generic_nacks_sent,
            self.generic_nacks_received,
            self.enquire_links,
            self.deliver_sm_sent,
            self.deliver_sm_acknowledged,
            self.deliver_sm_refused,
            self.deliver_sm_resent,
            self.deliver_sm_abandoned,
            self.receipts,
            self.mo_parts,
            self.max_outstanding,
            self.max_submits_per_second,
        )
    }
}

/// The live counters behind [`Counters`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub connections: AtomicU64,
    pub binds: AtomicU64,
    pub bind_refusals: AtomicU64,
    pub submits: AtomicU64,
    pub submit_ok: AtomicU64,
    pub submit_errors: Mutex<BTreeMap<u32, u64>>,
    pub generic_nacks_sent: AtomicU64,
    pub generic_nacks_received: AtomicU64,
    pub enquire_links: AtomicU64,
    pub deliver_sm_sent: AtomicU64,
    pub deliver_sm_acknowledged: AtomicU64,
    pub deliver_sm_refused: AtomicU64,
    pub deliver_sm_resent: AtomicU64,
    pub deliver_sm_abandoned: AtomicU64,
    pub receipts: AtomicU64,
    pub mo_parts: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Tally {
    pub(crate) fn submit_response(&self, status: u32) {
        if status == 0 {
            bump(&self.submit_ok);
        } else if let Ok(mut errors) = self.submit_errors.lock() {
            *errors.entry(status).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self, sessions: &[SessionReport]) -> Counters {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut submit_responses = self
            .submit_errors
            .lock()
            .map(|errors| errors.clone())
            .unwrap_or_default();
        let ok = get(&self.submit_ok);
        if ok > 0 {
            submit_responses.insert(0, ok);
        }
        Counters {
            connections: get(&self.connections),
            binds: get(&self.binds),
            bind_refusals: get(&self.bind_refusals),
            submits: get(&self.submits),
            submit_responses,
            generic_nacks_sent: get(&self.generic_nacks_sent),
            generic_nacks_received: get(&self.generic_nacks_received),
            enquire_links: get(&self.enquire_links),
            deliver_sm_sent: get(&self.deliver_sm_sent),
            deliver_sm_acknowledged: get(&self.deliver_sm_acknowledged),
            deliver_sm_refused: get(&self.deliver_sm_refused),
            deliver_sm_resent: get(&self.deliver_sm_resent),
            deliver_sm_abandoned: get(&self.deliver_sm_abandoned),
            receipts: get(&self.receipts),
            mo_parts: get(&self.mo_parts),
            max_outstanding: sessions
                .iter()
                .map(|s| s.max_outstanding)
                .max()
                .unwrap_or(0),
            max_submits_per_second: sessions
                .iter()
                .map(|s| s.max_submits_per_second)
                .max()
                .unwrap_or(0),
        }
    }
}

/// The live per-session figures: shared with the tasks that answer late.
#[derive(Debug)]
pub(crate) struct SessionStats {
    pub session_id: u64,
    pub system_id: String,
    pub bind_type: BindType,
    submits: AtomicU64,
    outstanding: AtomicU64,
    max_outstanding: AtomicU64,
    max_per_second: AtomicU64,
    open: std::sync::atomic::AtomicBool,
}

impl SessionStats {
    pub(crate) fn new(session_id: u64, system_id: String, bind_type: BindType) -> Self {
        Self {
            session_id,
            system_id,
            bind_type,
            submits: AtomicU64::new(0),
            outstanding: AtomicU64::new(0),
            max_outstanding: AtomicU64::new(0),
            max_per_second: AtomicU64::new(0),
            open: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub(crate) fn submit_arrived(&self, rate: &mut RateWindow) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        let outstanding = self.outstanding.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_outstanding
            .fetch_max(outstanding, Ordering::Relaxed);
        let per_second = rate.record(Instant::now());
        self.max_per_second.fetch_max(per_second, Ordering::Relaxed);
    }

    pub(crate) fn submit_answered(&self) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub(crate) fn close(&self) {
        self.open.store(false, Ordering::Relaxed);
    }

    pub(crate) fn report(&self) -> SessionReport {
        SessionReport {
            session_id: self.session_id,
            system_id: self.system_id.clone(),
            bind_type: self.bind_type,
            submits: self.submits.load(Ordering::Relaxed),
            max_outstanding: self.max_outstanding.load(Ordering::Relaxed),
            max_submits_per_second: self.max_per_second.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
        }
    }
}

/// Arrival times of the last second of submits, owned by the session's reader.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    arrivals: VecDeque<Instant>,
}

impl RateWindow {
    /// Records an arrival; returns the submits within the second up to and including it.
    pub(crate) fn record(&mut self, now: Instant) -> u64 {
        while let Some(oldest) = self.arrivals.front() {
            if now.duration_since(*oldest) < Duration::from_secs(1) {
                break;
            }
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.arrivals.len() as u64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rate_window_counts_only_the_last_second() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        assert_eq!(window.record(start), 1);
        assert_eq!(window.record(start + Duration::from_millis(500)), 2);
        assert_eq!(window.record(start + Duration::from_millis(999)), 3);
        assert_eq!(window.record(start + Duration::from_millis(1500)), 2);
    }

    #[test]
    fn counters_json_lists_statuses() {
        let mut counters = Counters::default();
        counters.submit_responses.insert(0, 3);
        counters.submit_responses.insert(0x58, 1);
        let json = counters.to_json();
        assert!(json.contains("\"submit_responses\":{\"0x00000000\":3,\"0x00000058\":1}"));
        assert!(json.starts_with('{') && json.ends_with('}'));
    }
}
