//! Process-wide media counters, summed over every call: what the RTP legs and the agent
//! bridges have carried, for the operator's metrics. Each leg and bridge also keeps its own
//! counts for its call; these are the totals, kept as they happen.

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals of every leg and bridge given these counters.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// RTP packets accepted from the far ends.
    pub rtp_in: AtomicU64,
    /// RTP packets sent.
    pub rtp_out: AtomicU64,
    /// Datagrams from a source that may not speak for the call.
    pub rtp_stranger: AtomicU64,
    /// Datagrams that are not RTP of a negotiated payload type.
    pub rtp_invalid: AtomicU64,
    /// Frames queued for the agents' WebSockets.
    pub agent_frames_out: AtomicU64,
    /// Frames to the agents dropped because an agent was not reading.
    pub agent_frames_dropped: AtomicU64,
    /// Frames received from the agents (text or binary).
    pub agent_frames_in: AtomicU64,
}

impl MediaCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A counter's value now.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
