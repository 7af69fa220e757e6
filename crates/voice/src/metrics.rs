//! The carrier's counters for the operator's metrics: calls started by direction, calls
//! ended by status and cause, and the media totals of every leg and agent bridge.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ami_carrier::CarrierEvent;
use ami_media::counters::MediaCounters;

/// The cause label of a call whose end the server asked for (hang-up, kill-switch, budget):
/// the call record holds the server's reason.
pub const REQUESTED: &str = "requested";

/// Counters of one carrier, from its start.
#[derive(Debug, Default)]
pub struct VoiceMetrics {
    /// The media totals, shared with every leg and bridge.
    pub media: Arc<MediaCounters>,
    inbound_started: AtomicU64,
    outbound_started: AtomicU64,
    /// (status, cause) → calls.
    ended: Mutex<BTreeMap<(String, String), u64>>,
}

impl VoiceMetrics {
    /// A call was set up: an INVITE sent (outbound) or taken on (inbound).
    pub(crate) fn started(&self, inbound: bool) {
        let counter = if inbound {
            &self.inbound_started
        } else {
            &self.outbound_started
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `event` if it is a call's last.
    pub(crate) fn observe(&self, event: &CarrierEvent) {
        let CarrierEvent::Call {
            status,
            hangup_cause,
            ..
        } = event
        else {
            return;
        };
        if !status.is_terminal() {
            return;
        }
        let cause = hangup_cause.as_deref().unwrap_or(REQUESTED);
        let mut ended = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *ended
            .entry((status.as_str().to_owned(), cause.to_owned()))
            .or_default() += 1;
    }

    /// Calls started: (inbound, outbound).
    pub fn started_calls(&self) -> (u64, u64) {
        (
            self.inbound_started.load(Ordering::Relaxed),
            self.outbound_started.load(Ordering::Relaxed),
        )
    }

    /// Calls ended, by (status, cause).
    pub fn ended_calls(&self) -> Vec<((String, String), u64)> {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}
