//! What the use cases measure, for `GET /metrics`: the send path (the group commit, the
//! dispatcher's claims and hand-offs), carrier submissions and binds, webhook attempts, and
//! the queue depths, read from the store when they are asked for.
//!
//! Recording is an atomic add, or a histogram's few-nanosecond lock, never held across an
//! await. Label values are fixed words (outcomes, carrier names), never an id or a number,
//! so no series is created per message or per tenant.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use ami_carrier::SubmitError;
use ami_store::{carrier_events, outbox, webhook_deliveries};
use ami_webhooks::{AttemptError, AttemptOutcome};

use crate::{Result, Services};

/// Latency buckets of every histogram: 0.5 ms doubling up to about 8 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CarrierLabels {
    carrier: &'static str,
}

/// The service-side metrics of one process. Registered once, at start, into the server's
/// registry ([`Metrics::register`]); every handle below shares its values with the
/// registered copy.
pub struct Metrics {
    sms_send: Histogram,
    dispatch_claim: Histogram,
    dispatch_hand_off: Histogram,
    carrier_submissions: Family<OutcomeLabels, Counter>,
    carrier_binds_up: Family<CarrierLabels, Gauge>,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    outbox_jobs: Gauge,
    webhook_deliveries_pending: Gauge,
    carrier_events_parked: Gauge,
}

/// The outcomes of each counter, exposed at zero from the start so that a rate over them
/// is defined before the first event.
const SUBMISSION_OUTCOMES: [&str; 4] = ["handed", "rejected", "unavailable", "unknown"];
const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "retry", "failed", "refused"];

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            sms_send: latency_histogram(),
            dispatch_claim: latency_histogram(),
            dispatch_hand_off: latency_histogram(),
            carrier_submissions: Family::default(),
            carrier_binds_up: Family::default(),
            webhook_attempts: Family::default(),
            outbox_jobs: Gauge::default(),
            webhook_deliveries_pending: Gauge::default(),
            carrier_events_parked: Gauge::default(),
        };
        for outcome in SUBMISSION_OUTCOMES {
            let _ = metrics
                .carrier_submissions
                .get_or_create(&OutcomeLabels { outcome });
        }
        for outcome in WEBHOOK_OUTCOMES {
            let _ = metrics
                .webhook_attempts
                .get_or_create(&OutcomeLabels { outcome });
        }
        metrics
    }
}

/// Observes the time since its start into a histogram when dropped, whichever way the
/// measured code is left (an answer, an error, a `?`).
#[must_use = "the time is observed when the timer is dropped"]
pub struct Timer<'a> {
    histogram: &'a Histogram,
    started: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Adds these metrics to `registry` (whose prefix, `ami`, the names get).
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "sms_send_duration",
            "Time an agent's SMS send takes from its validation to its answer, the group commit that writes it included",
            Unit::Seconds,
            self.sms_send.clone(),
        );
        registry.register_with_unit(
            "dispatch_claim_duration",
            "Time of the dispatcher's claim transaction of due outbox jobs",
            Unit::Seconds,
            self.dispatch_claim.clone(),
        );
        registry.register_with_unit(
            "dispatch_hand_off_duration",
            "Time from handing a batch of SMS to the carrier to the recorded outcomes",
            Unit::Seconds,
            self.dispatch_hand_off.clone(),
        );
        registry.register(
            "carrier_sms_submissions",
            "SMS submitted to the carrier, by outcome: handed, rejected, unavailable, unknown",
            self.carrier_submissions.clone(),
        );
        registry.register(
            "carrier_binds_up",
            "Carrier binds or connections up, by carrier",
            self.carrier_binds_up.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Recorded webhook delivery attempts, by outcome: delivered, retry, failed, or refused by the address guard",
            self.webhook_attempts.clone(),
        );
        registry.register(
            "outbox_jobs",
            "Outbox jobs accepted and not yet done (the dispatch backlog), read at scrape time",
            self.outbox_jobs.clone(),
        );
        registry.register(
            "webhook_deliveries_pending",
            "Webhook deliveries waiting for an attempt (parked ones not counted), read at scrape time",
            self.webhook_deliveries_pending.clone(),
        );
        registry.register(
            "carrier_events_parked",
            "Carrier events parked for the operator, read at scrape time",
            self.carrier_events_parked.clone(),
        );
    }

    /// Times an agent's send, until the timer is dropped.
    pub fn time_sms_send(&self) -> Timer<'_> {
        timer(&self.sms_send)
    }

    /// Times the dispatcher's claim, until the timer is dropped.
    pub fn time_dispatch_claim(&self) -> Timer<'_> {
        timer(&self.dispatch_claim)
    }

    /// Times a hand-off to the carrier, until the timer is dropped.
    pub fn time_dispatch_hand_off(&self) -> Timer<'_> {
        timer(&self.dispatch_hand_off)
    }

    /// Counts the carrier's answer to one SMS submission.
    pub fn count_submission(&self, outcome: &std::result::Result<String, SubmitError>) {
        let outcome = match outcome {
            Ok(_) => "handed",
            Err(SubmitError::Rejected(_)) => "rejected",
            Err(SubmitError::Unavailable(_)) => "unavailable",
            Err(SubmitError::Unknown(_)) => "unknown",
            Err(SubmitError::Down(_)) => "down",
        };
        self.carrier_submissions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The gauge of a carrier's binds (or connections) that are up. A carrier adapter keeps
    /// it and sets it as its binds come up and go down; the sandbox has one, always up.
    pub fn carrier_binds_up(&self, carrier: &'static str) -> Gauge {
        self.carrier_binds_up
            .get_or_create_owned(&CarrierLabels { carrier })
    }

    /// Counts one recorded webhook attempt: refused by the guard (no connection was made),
    /// else by the state it left its delivery in (`status`, a `webhook_deliveries` status).
    pub fn count_webhook_attempt(&self, outcome: &AttemptOutcome, status: &str) {
        let outcome = match (&outcome.error, status) {
            (Some(AttemptError::Refused(_)), _) => "refused",
            (_, webhook_deliveries::DELIVERED) => "delivered",
            (_, webhook_deliveries::FAILED) => "failed",
            _ => "retry",
        };
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

fn timer(histogram: &Histogram) -> Timer<'_> {
    Timer {
        histogram,
        started: Instant::now(),
    }
}

impl Services {
    /// Reads the queue depths from the store into their gauges: three counts over indexed
    /// columns, on a read connection.
    pub async fn refresh_queue_depths(&self) -> Result<()> {
        let mut conn = self.store.reader().await?;
        let outbox_jobs = outbox::backlog(&mut conn).await?;
        let pending = webhook_deliveries::backlog(&mut conn).await?;
        let parked = carrier_events::count_open(&mut conn).await?;
        self.metrics.outbox_jobs.set(outbox_jobs);
        self.metrics.webhook_deliveries_pending.set(pending);
        self.metrics.carrier_events_parked.set(parked);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ami_webhooks::GuardError;
    use prometheus_client::encoding::prometheus_text::encode;

    use super::*;

    fn rendered(metrics: &Metrics) -> String {
        let mut registry = Registry::with_prefix("ami");
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn webhook_attempts_are_counted_by_outcome_a_refusal_before_its_next_state() {
        let metrics = Metrics::default();
        let answered = |status| AttemptOutcome {
            status: Some(status),
            ..AttemptOutcome::failed(AttemptError::Request, 1)
        };
        metrics.count_webhook_attempt(&answered(200), webhook_deliveries::DELIVERED);
        metrics.count_webhook_attempt(&answered(503), webhook_deliveries::PENDING);
        metrics.count_webhook_attempt(&answered(503), webhook_deliveries::PENDING);
        metrics.count_webhook_attempt(&answered(410), webhook_deliveries::FAILED);
        let refused = AttemptOutcome::failed(AttemptError::Refused(GuardError::Backslash), 0);
        metrics.count_webhook_attempt(&refused, webhook_deliveries::PENDING);
        metrics.count_webhook_attempt(&refused, webhook_deliveries::FAILED);
        let text = rendered(&metrics);
        for line in [
            "ami_webhook_attempts_total{outcome=\"delivered\"} 1\n",
            "ami_webhook_attempts_total{outcome=\"retry\"} 2\n",
            "ami_webhook_attempts_total{outcome=\"failed\"} 1\n",
            "ami_webhook_attempts_total{outcome=\"refused\"} 2\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn carrier_submissions_are_counted_by_outcome_and_timers_observe_on_drop() {
        let metrics = Metrics::default();
        metrics.count_submission(&Ok("ref".into()));
        metrics.count_submission(&Err(SubmitError::Rejected("no".into())));
        metrics.count_submission(&Err(SubmitError::Unavailable("later".into())));
        metrics.count_submission(&Err(SubmitError::Unknown("lost".into())));
        metrics.carrier_binds_up("sandbox").set(1);
        drop(metrics.time_sms_send());
        {
            let _claim = metrics.time_dispatch_claim();
            let _claim_again = metrics.time_dispatch_claim();
        }
        let text = rendered(&metrics);
        for line in [
            "ami_carrier_sms_submissions_total{outcome=\"handed\"} 1\n",
            "ami_carrier_sms_submissions_total{outcome=\"rejected\"} 1\n",
            "ami_carrier_sms_submissions_total{outcome=\"unavailable\"} 1\n",
            "ami_carrier_sms_submissions_total{outcome=\"unknown\"} 1\n",
            "ami_carrier_binds_up{carrier=\"sandbox\"} 1\n",
            "ami_sms_send_duration_seconds_count 1\n",
            "ami_dispatch_claim_duration_seconds_count 2\n",
            "ami_dispatch_hand_off_duration_seconds_count 0\n",
            "# TYPE ami_outbox_jobs gauge\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }
}
