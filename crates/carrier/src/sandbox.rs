//! The sandbox carrier (PROTOCOL §4): no network, deterministic outcomes, real timings.
//! Magic destinations by their last four digits: `0001` always fails, `0002` never answers,
//! `0003` gets its delivery reports out of order (delivered before sent), `0004` answers and
//! stays on the line until it is hung up (a long call, for hang-ups and budget cut-offs).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use ami_core::delivery::{CallStatus, SmsStatus};

use crate::clock::Clock;
use crate::record::{Kind, Record, Submitted};
use crate::{
    BoxFuture, Carrier, CarrierEvent, Inbound, Lookup, OutboundCall, OutboundSms, SubmitError,
};

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
    events: UnboundedSender<Inbound>,
    timings: SandboxTimings,
    record: Arc<Mutex<VecDeque<Submission>>>,
    /// What reached the network, kept across restarts when it has a file.
    durable: Arc<Record>,
    /// Started with the first event, from inside the runtime.
    clock: Arc<OnceLock<Clock>>,
}

fn magic(to: &str) -> &str {
    to.get(to.len().saturating_sub(4)..).unwrap_or_default()
}

impl Sandbox {
    /// A sandbox that forgets everything when the process ends.
    pub fn new(events: UnboundedSender<Inbound>, timings: SandboxTimings) -> Self {
        Self::with_record(events, timings, Record::none())
    }

    /// A sandbox whose record of what reached its network lives in the file at `path`
    /// (created with mode 0600), so it survives restarts: after a crash it can tell which
    /// submissions arrived, and it sends again the reports that were never acknowledged
    /// ([`Sandbox::resume`]).
    pub fn with_record_file(
        events: UnboundedSender<Inbound>,
        timings: SandboxTimings,
        path: &Path,
    ) -> std::io::Result<Self> {
        Ok(Self::with_record(events, timings, Record::open(path)?))
    }

    fn with_record(
        events: UnboundedSender<Inbound>,
        timings: SandboxTimings,
        durable: Record,
    ) -> Self {
        Self {
            events,
            timings,
            record: Arc::default(),
            durable: Arc::new(durable),
            clock: Arc::default(),
        }
    }

    /// Sends again, on the usual timings, the reports of every submission whose final
    /// report the server never acknowledged: what a real network does once its peer is back.
    /// Returns how many submissions that was.
    pub fn resume(&self) -> usize {
        let open = self.durable.unfinished();
        for (id, entry) in &open {
            match entry.kind {
                Kind::Sms => self.report_sms(id, &entry.to, &entry.telco_ref),
                Kind::Call => self.report_call(id, &entry.to, &entry.telco_ref),
            }
        }
        open.len()
    }

    /// What was handed to the sandbox network by this process, oldest first: everything, or
    /// the last `RECORD_MAX` submissions once there were more.
    pub fn submissions(&self) -> Vec<Submission> {
        self.record
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the sandbox network has nothing more to report: every report and call state it
    /// scheduled was committed by the server.
    pub fn is_quiet(&self) -> bool {
        self.clock.get().is_none_or(|c| c.outstanding() == 0)
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
            .get_or_init(|| {
                let durable = self.durable.clone();
                Clock::start(
                    self.events.clone(),
                    Arc::new(move |event| {
                        if let Some(id) = final_of(event) {
                            durable.finished(id);
                        }
                    }),
                )
            })
            .send_after(after, event);
    }

    /// The delivery reports of an SMS that reached the network.
    fn report_sms(&self, msg_id: &str, to: &str, telco_ref: &str) {
        let t = self.timings;
        let report = |status, error: Option<&str>| CarrierEvent::Sms {
            msg_id: msg_id.to_owned(),
            telco_ref: telco_ref.to_owned(),
            status,
            error: error.map(str::to_owned),
        };
        match magic(to) {
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
    }

    /// The states of a call the network placed.
    fn report_call(&self, call_id: &str, to: &str, telco_ref: &str) {
        let t = self.timings;
        let state = |status, cause: Option<&str>| CarrierEvent::Call {
            call_id: call_id.to_owned(),
            telco_ref: telco_ref.to_owned(),
            status,
            hangup_cause: cause.map(str::to_owned),
        };
        self.later(t.call_ringing, state(CallStatus::Ringing, None));
        match magic(to) {
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
    }
}

/// The submission an event ends, once the server committed it: nothing of it is sent again.
fn final_of(event: &CarrierEvent) -> Option<&str> {
    match event {
        CarrierEvent::Sms {
            msg_id,
            status: SmsStatus::Delivered | SmsStatus::Failed,
            ..
        } => Some(msg_id),
        CarrierEvent::Call {
            call_id, status, ..
        } if status.is_terminal() => Some(call_id),
        _ => None,
    }
}

impl Carrier for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn looks_up(&self) -> bool {
        self.durable.is_durable()
    }

    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async move {
            self.submit_sms_batch(vec![sms])
                .await
                .pop()
                .unwrap_or_else(|| Err(SubmitError::Unavailable("nothing submitted".into())))
        })
    }

    fn submit_sms_batch(
        &self,
        batch: Vec<OutboundSms>,
    ) -> BoxFuture<'_, Vec<Result<String, SubmitError>>> {
        Box::pin(async move {
            let refs: Vec<String> = batch.iter().map(|_| ami_core::id::new_id("sbx")).collect();
            let arrived: Vec<Submitted<'_>> = batch
                .iter()
                .zip(&refs)
                .map(|(sms, telco_ref)| Submitted {
                    kind: Kind::Sms,
                    id: &sms.id,
                    to: &sms.to,
                    telco_ref,
                })
                .collect();
            if let Err(e) = self.durable.submitted(&arrived, ami_core::time::now_ms()) {
                let why = format!("sandbox network unavailable: {e}");
                return batch
                    .iter()
                    .map(|_| Err(SubmitError::Unavailable(why.clone())))
                    .collect();
            }
            batch
                .into_iter()
                .zip(refs)
                .map(|(sms, telco_ref)| {
                    self.remember(Submission::Sms {
                        msg_id: sms.id.clone(),
                        to: sms.to.clone(),
                    });
                    self.report_sms(&sms.id, &sms.to, &telco_ref);
                    Ok(telco_ref)
                })
                .collect()
        })
    }

    fn find_sms(&self, msg_id: &str) -> BoxFuture<'_, Lookup> {
        let found = self.durable.find(msg_id);
        Box::pin(async move { found })
    }

    fn place_call(&self, call: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async move {
            let telco_ref = ami_core::id::new_id("sbx");
            let arrived = Submitted {
                kind: Kind::Call,
                id: &call.id,
                to: &call.to,
                telco_ref: &telco_ref,
            };
            self.durable
                .submitted(&[arrived], ami_core::time::now_ms())
                .map_err(|e| {
                    SubmitError::Unavailable(format!("sandbox network unavailable: {e}"))
                })?;
            self.remember(Submission::Call {
                call_id: call.id.clone(),
                to: call.to.clone(),
            });
            self.report_call(&call.id, &call.to, &telco_ref);
            Ok(telco_ref)
        })
    }

    fn find_call(&self, call_id: &str) -> BoxFuture<'_, Lookup> {
        let found = self.durable.find(call_id);
        Box::pin(async move { found })
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
