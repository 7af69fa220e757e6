//! The sandbox carrier (PROTOCOL §4): no network, deterministic outcomes, real timings.
//! Magic destinations by their last four digits: `0001` always fails, `0002` never answers,
//! `0003` gets its delivery reports out of order (delivered before sent), `0004` answers and
//! stays on the line until it is hung up (a long call, for hang-ups and budget cut-offs).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use ami_core::delivery::{CallStatus, SmsStatus};

use crate::clock::Clock;
use crate::{BoxFuture, Carrier, CarrierEvent, OutboundCall, OutboundSms, SubmitError};

#[derive(Debug, Clone, Copy)]
pub struct SandboxTimings {
    pub sms_sent: Duration,
    pub sms_delivered: Duration,
    pub call_ringing: Duration,
    pub call_answered: Duration,
    pub call_completed: Duration,
}

impl Default for SandboxTimings {
    fn default() -> Self {
        Self {
            sms_sent: Duration::from_millis(150),
            sms_delivered: Duration::from_millis(450),
            call_ringing: Duration::from_millis(150),
            call_answered: Duration::from_millis(400),
            call_completed: Duration::from_millis(900),
        }
    }
}

/// Submissions remembered: the most recent ones, so a sandbox server that runs for days
/// under load does not grow without bound.
const RECORD_MAX: usize = 100_000;

/// One thing handed to the sandbox network, kept so tests can prove what reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    Sms { msg_id: String, to: String },
    Call { call_id: String, to: String },
    HangUp { telco_ref: String },
}

#[derive(Clone)]
pub struct Sandbox {
    events: UnboundedSender<CarrierEvent>,
    timings: SandboxTimings,
    record: Arc<Mutex<VecDeque<Submission>>>,
    /// Started with the first event, from inside the runtime.
    clock: Arc<OnceLock<Clock>>,
}

fn magic(to: &str) -> &str {
    to.get(to.len().saturating_sub(4)..).unwrap_or_default()
}

impl Sandbox {
    pub fn new(events: UnboundedSender<CarrierEvent>, timings: SandboxTimings) -> Self {
        Self {
            events,
            timings,
            record: Arc::default(),
            clock: Arc::default(),
        }
    }

    /// What was handed to the sandbox network, oldest first: everything, or the last
    /// `RECORD_MAX` submissions once there were more.
    pub fn submissions(&self) -> Vec<Submission> {
        self.record
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn remember(&self, s: Submission) {
        if let Ok(mut r) = self.record.lock() {
            if r.len() == RECORD_MAX {
                r.pop_front();
            }
            r.push_back(s);
        }
    }

    /// The sandbox network's side of an inbound call we accepted: the customer's SIP engine
    /// answers it and the caller hangs up, on the outbound call timings.
    pub fn bridge_inbound_call(&self, call_id: &str) {
        let telco_ref = ami_core::id::new_id("sbx");
        let state = |status, cause: Option<&str>| CarrierEvent::Call {
            call_id: call_id.to_owned(),
            telco_ref: telco_ref.clone(),
            status,
            hangup_cause: cause.map(str::to_owned),
        };
        let t = self.timings;
        self.later(t.call_answered, state(CallStatus::InProgress, None));
        self.later(
            t.call_completed,
            state(CallStatus::Completed, Some("normal_clearing")),
        );
    }

    fn later(&self, after: Duration, event: CarrierEvent) {
        self.clock
            .get_or_init(|| Clock::start(self.events.clone()))
            .send_after(after, event);
    }
}

impl Carrier for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async move {
            self.remember(Submission::Sms {
                msg_id: sms.id.clone(),
                to: sms.to.clone(),
            });
            let telco_ref = ami_core::id::new_id("sbx");
            let t = self.timings;
            let report = |status, error: Option<&str>| CarrierEvent::Sms {
                msg_id: sms.id.clone(),
                telco_ref: telco_ref.clone(),
                status,
                error: error.map(str::to_owned),
            };
            match magic(&sms.to) {
                "0001" => {
                    self.later(t.sms_sent, report(SmsStatus::Sent, None));
                    self.later(
                        t.sms_delivered,
                        report(SmsStatus::Failed, Some("sandbox: destination always fails")),
                    );
                }
                "0003" => {
                    self.later(t.sms_sent, report(SmsStatus::Delivered, None));
                    self.later(t.sms_delivered, report(SmsStatus::Sent, None));
                }
                _ => {
                    self.later(t.sms_sent, report(SmsStatus::Sent, None));
                    self.later(t.sms_delivered, report(SmsStatus::Delivered, None));
                }
            }
            Ok(telco_ref)
        })
    }

    fn place_call(&self, call: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async move {
            self.remember(Submission::Call {
                call_id: call.id.clone(),
                to: call.to.clone(),
            });
            let telco_ref = ami_core::id::new_id("sbx");
            let t = self.timings;
            let state = |status, cause: Option<&str>| CarrierEvent::Call {
                call_id: call.id.clone(),
                telco_ref: telco_ref.clone(),
                status,
                hangup_cause: cause.map(str::to_owned),
            };
            self.later(t.call_ringing, state(CallStatus::Ringing, None));
            match magic(&call.to) {
                "0001" => self.later(
                    t.call_answered,
                    state(
                        CallStatus::Failed,
                        Some("sandbox: destination always fails"),
                    ),
                ),
                "0002" => self.later(t.call_completed, state(CallStatus::NoAnswer, None)),
                "0004" => self.later(t.call_answered, state(CallStatus::InProgress, None)),
                _ => {
                    self.later(t.call_answered, state(CallStatus::InProgress, None));
                    self.later(
                        t.call_completed,
                        state(CallStatus::Completed, Some("normal_clearing")),
                    );
                }
            }
            Ok(telco_ref)
        })
    }

    fn hang_up(&self, telco_ref: String) -> BoxFuture<'_, Result<(), SubmitError>> {
        Box::pin(async move {
            self.remember(Submission::HangUp { telco_ref });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_the_most_recent_submissions_only() {
        let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
        let sandbox = Sandbox::new(events, SandboxTimings::default());
        for i in 0..=RECORD_MAX {
            sandbox.remember(Submission::HangUp {
                telco_ref: i.to_string(),
            });
        }
        let record = sandbox.submissions();
        assert_eq!(record.len(), RECORD_MAX);
        assert_eq!(
            record.first(),
            Some(&Submission::HangUp {
                telco_ref: "1".into()
            })
        );
        assert_eq!(
            record.last(),
            Some(&Submission::HangUp {
                telco_ref: RECORD_MAX.to_string()
            })
        );
    }
}
