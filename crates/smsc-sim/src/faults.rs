//! The fault plan: how the simulator misbehaves on submit_sm, changeable while it runs.

use std::ops::Range;
use std::time::Duration;

use rand::Rng;
use rusmpp::CommandStatus;

/// When a counted fault fires. Submits are counted from the moment the plan was set,
/// over all sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The next `n` submits.
    Next(u32),
    /// Every k-th submit (k, 2k, 3k, ...).
    EveryKth(u32),
}

/// How long a submit_sm_resp is held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseDelay {
    Fixed(Duration),
    /// Uniformly random in the range, drawn per submit (so responses interleave).
    Random(Range<Duration>),
}

/// Misbehaviour on submit_sm. The default is a well-behaved SMSC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Answer with ESME_RTHROTTLED (0x58).
    pub throttle: Option<Trigger>,
    /// Answer with ESME_RMSGQFUL (0x14).
    pub queue_full: Option<Trigger>,
    /// Destinations starting with one of these get ESME_RINVDSTADR (0x0B), every time.
    pub reject_destination_prefixes: Vec<String>,
    pub response_delay: Option<ResponseDelay>,
    /// Hold the responses of each run of this many submits (per session) and send them
    /// in reverse order.
    pub reverse_order_window: Option<usize>,
    /// Send the receipt first, then the submit_sm_resp.
    pub receipt_before_response: bool,
    /// Close the TCP connection on receiving the n-th submit (counted as above), without
    /// answering it; responses already planned for earlier submits are still flushed.
    pub drop_connection_at_submit: Option<u64>,
    /// Answer with a generic_nack (ESME_RSYSERR) instead of a submit_sm_resp.
    pub generic_nack: Option<Trigger>,
    /// Never answer submit_sm.
    pub blackhole_submits: bool,
    /// Never answer anything after the bind: submit_sm, enquire_link, unbind.
    pub blackhole_all: bool,
}

/// What to do with one submit_sm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubmitAction {
    Answer(CommandStatus),
    GenericNack,
    Silence,
    DropConnection,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SubmitPlan {
    pub action: SubmitAction,
    pub delay: Option<Duration>,
    pub reverse_window: Option<usize>,
    pub receipt_first: bool,
}

impl SubmitPlan {
    pub(crate) const PLAIN: SubmitPlan = SubmitPlan {
        action: SubmitAction::Answer(CommandStatus::EsmeRok),
        delay: None,
        reverse_window: None,
        receipt_first: false,
    };
}

/// A counted trigger and how often it has fired.
#[derive(Debug, Default)]
struct TriggerState {
    fired: u64,
}

impl TriggerState {
    fn fires(&mut self, trigger: Option<Trigger>, submit_number: u64) -> bool {
        let fires = match trigger {
            None => false,
            Some(Trigger::Next(n)) => self.fired < u64::from(n),
            Some(Trigger::EveryKth(k)) => k > 0 && submit_number.is_multiple_of(u64::from(k)),
        };
        if fires {
            self.fired += 1;
        }
        fires
    }
}

/// The plan and what it has counted since it was set.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Faults,
    submits: u64,
    throttle: TriggerState,
    queue_full: TriggerState,
    generic_nack: TriggerState,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    pub(crate) fn is_quiet(&self) -> bool {
        self.faults == Faults::default()
    }

    pub(crate) fn plan(&mut self, destination: &str) -> SubmitPlan {
        self.submits += 1;
        let number = self.submits;
        let faults = &self.faults;
        let action = if faults.drop_connection_at_submit == Some(number) {
            SubmitAction::DropConnection
        } else if faults.blackhole_submits || faults.blackhole_all {
            SubmitAction::Silence
        } else if self.generic_nack.fires(faults.generic_nack, number) {
            SubmitAction::GenericNack
        } else if faults
            .reject_destination_prefixes
            .iter()
            .any(|prefix| destination.starts_with(prefix.as_str()))
        {
            SubmitAction::Answer(CommandStatus::EsmeRinvdstadr)
        } else if self.throttle.fires(faults.throttle, number) {
            SubmitAction::Answer(CommandStatus::EsmeRthrottled)
        } else if self.queue_full.fires(faults.queue_full, number) {
            SubmitAction::Answer(CommandStatus::EsmeRmsgqful)
        } else {
            SubmitAction::Answer(CommandStatus::EsmeRok)
        };
        let delay = match &faults.response_delay {
            None => None,
            Some(ResponseDelay::Fixed(delay)) => Some(*delay),
            Some(ResponseDelay::Random(range)) if range.start < range.end => {
                Some(rand::thread_rng().gen_range(range.clone()))
            }
            Some(ResponseDelay::Random(range)) => Some(range.start),
        };
        SubmitPlan {
            action,
            delay,
            reverse_window: faults.reverse_order_window.filter(|window| *window > 1),
            receipt_first: faults.receipt_before_response,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn actions(faults: Faults, count: usize) -> Vec<SubmitAction> {
        let mut state = FaultState::new(faults);
        (0..count).map(|_| state.plan("4479").action).collect()
    }

    const OK: SubmitAction = SubmitAction::Answer(CommandStatus::EsmeRok);
    const THROTTLED: SubmitAction = SubmitAction::Answer(CommandStatus::EsmeRthrottled);

    #[test]
    fn next_n_fires_on_the_first_n_submits_only() {
        let faults = Faults {
            throttle: Some(Trigger::Next(2)),
            ..Faults::default()
        };
        assert_eq!(actions(faults, 4), vec![THROTTLED, THROTTLED, OK, OK]);
    }

    #[test]
    fn every_kth_fires_on_multiples_of_k() {
        let faults = Faults {
            throttle: Some(Trigger::EveryKth(3)),
            ..Faults::default()
        };
        assert_eq!(
            actions(faults, 6),
            vec![OK, OK, THROTTLED, OK, OK, THROTTLED]
        );
    }

    #[test]
    fn drop_fires_on_exactly_the_nth_submit() {
        let faults = Faults {
            drop_connection_at_submit: Some(2),
            ..Faults::default()
        };
        assert_eq!(
            actions(faults, 3),
            vec![OK, SubmitAction::DropConnection, OK]
        );
    }

    #[test]
    fn random_delay_stays_in_its_range() {
        let range = Duration::from_millis(5)..Duration::from_millis(9);
        let mut state = FaultState::new(Faults {
            response_delay: Some(ResponseDelay::Random(range.clone())),
            ..Faults::default()
        });
        for _ in 0..100 {
            let delay = state.plan("1").delay.unwrap();
            assert!(range.contains(&delay), "{delay:?}");
        }
    }
}
