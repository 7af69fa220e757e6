//! The delivery side: claim due deliveries under a lease, attempt each one (signed with both
//! schemes over the exact bytes sent, through the SSRF-guarded sender), and record a batch
//! of outcomes in one transaction with what follows from them:
//!
//! - any 2xx: delivered, and the webhook's run of failures ends;
//! - 410: the delivery fails and the webhook is disabled (`gone`);
//! - anything else (429, 5xx, 3xx, timeouts, refusals by the guard): tried again on the
//!   retry schedule, with jitter, later if the receiver's `Retry-After` asks (within the
//!   schedule's cap); when the schedule is exhausted the delivery fails, and the tenth
//!   failed delivery in a row disables the webhook (`webhook_auto_disabled`).
//!
//! The audit records name the delivery, the event and the outcome, never the payload.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use serde_json::json;

use ami_store::webhook_deliveries::{self, Claimed, NewAttempt, Settled};
use ami_store::{sealed, webhooks};
use ami_webhooks::{AttemptError, AttemptOutcome, Disposition, Sender, WebhookUrl, classify, sign};

use super::AUTO_DISABLE_AFTER;
use crate::audit_log::{PendingEvent, write_events};
use crate::auth::Actor;
use crate::{Result, Services};

/// `disabled_reason` after a 410.
pub const DISABLED_GONE: &str = "gone";
/// `disabled_reason` after too many failed deliveries in a row.
pub const DISABLED_FAILURES: &str = "consecutive_failures";

/// One attempt, ready to be recorded.
#[derive(Debug)]
pub struct AttemptReport {
    pub delivery: Claimed,
    pub attempted_at: i64,
    pub outcome: AttemptOutcome,
}

/// What a batch of reports changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    /// Reports dropped because the claim was no longer theirs.
    pub stale: usize,
}

/// Where an attempt leaves its delivery.
enum Next {
    Delivered,
    Retry(i64),
    /// Retried once the webhook is enabled again.
    Parked,
    Failed {
        gone: bool,
    },
}

impl Services {
    /// Claims up to `max` due deliveries of active webhooks for this worker.
    pub async fn claim_webhook_deliveries(&self, max: usize) -> Result<Vec<Claimed>> {
        let mut tx = self.store.begin().await?;
        let claimed = webhook_deliveries::claim(
            &mut tx,
            self.store.engine(),
            self.now(),
            self.settings.webhooks.lease_ms,
            i64::try_from(max).unwrap_or(i64::MAX),
            &self.settings.dispatch.holder,
        )
        .await?;
        ami_store::commit(tx).await?;
        self.claims
            .deliveries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let key = self.store.secrets()?;
        Ok(claimed
            .into_iter()
            .filter_map(|mut d| {
                match key.open(sealed::WEBHOOK_SECRET, &d.webhook_id, &d.secret) {
                    Ok(secret) => {
                        d.secret = secret;
                        Some(d)
                    }
                    // Only a damaged row gets here (the key is checked at start): it waits
                    // out its lease instead of stopping every other delivery.
                    Err(e) => {
                        tracing::error!(delivery = %d.id, error = %e, "a webhook secret does not open");
                        None
                    }
                }
            })
            .collect())
    }

    /// One attempt: a fresh timestamp, both signatures over the stored bytes, one guarded
    /// POST. Never fails: whatever goes wrong is the attempt's outcome.
    pub async fn attempt_webhook_delivery(
        &self,
        sender: &Sender,
        delivery: Claimed,
    ) -> AttemptReport {
        let attempted_at = self.now();
        let outcome = match prepare(&delivery, attempted_at) {
            Ok((url, headers, body)) => sender.send(&url, headers, body).await,
            Err(error) => AttemptOutcome::failed(error, 0),
        };
        AttemptReport {
            delivery,
            attempted_at,
            outcome,
        }
    }

    /// Records a batch of attempts in one transaction, with their consequences.
    pub async fn record_webhook_attempts(&self, reports: &[AttemptReport]) -> Result<Recorded> {
        let now = self.now();
        let schedule = &self.settings.webhooks.schedule;
        let mut tx = self.store.begin().await?;
        let ids: Vec<&str> = reports
            .iter()
            .map(|r| r.delivery.webhook_id.as_str())
            .collect();
        let mut active: HashMap<String, bool> = ami_store::system::webhooks::lock_statuses(
            self.system(),
            &mut tx,
            self.store.engine(),
            &ids,
        )
        .await?
        .into_iter()
        .map(|(id, status)| (id, status == webhooks::ACTIVE))
        .collect();
        let mut recorded = Recorded::default();
        let mut attempts = Vec::with_capacity(reports.len());
        let mut events = Vec::new();
        let mut resumed = false;

        for r in reports {
            let d = &r.delivery;
            let o = &r.outcome;
            let number = d.attempts + 1;
            let is_active = active.get(&d.webhook_id).copied().unwrap_or(false);
            let next = match classify(o) {
                Disposition::Delivered => Next::Delivered,
                Disposition::Gone => Next::Failed { gone: true },
                Disposition::Retry { after } => {
                    match schedule.delay_after_random(usize::try_from(number).unwrap_or(0), after) {
                        Some(_) if !is_active => Next::Parked,
                        Some(delay) => Next::Retry(
                            now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                        ),
                        None => Next::Failed { gone: false },
                    }
                }
            };
            let (status, due_at) = match next {
                Next::Delivered => (webhook_deliveries::DELIVERED, None),
                Next::Retry(due) => (webhook_deliveries::PENDING, Some(due)),
                Next::Parked => (webhook_deliveries::PENDING, None),
                Next::Failed { .. } => (webhook_deliveries::FAILED, None),
            };
            let status_code = o.status.map(i64::from);
            let error = o.error.as_ref().map(AttemptError::detail);
            let ours = webhook_deliveries::settle(
                &mut tx,
                &Settled {
                    id: &d.id,
                    lease_token: &d.lease_token,
                    attempts: number,
                    status,
                    due_at,
                    attempted_at: r.attempted_at,
                    status_code,
                    error: error.as_deref(),
                    delivered_at: matches!(next, Next::Delivered).then_some(r.attempted_at),
                },
            )
            .await?;
            if !ours {
                recorded.stale += 1;
                continue;
            }
            self.metrics.count_webhook_attempt(o, status);
            attempts.push((r, number, error));
            let event = |action: &'static str, data: String| PendingEvent {
                actor: Actor::System,
                action,
                account_id: d.account_id.clone(),
                mid_id: d.mid_id.clone(),
                entity_type: "webhook",
                entity_id: d.webhook_id.clone(),
                data,
            };
            let about = json!({"delivery_id": d.id, "event": d.event, "event_id": d.event_id,
                               "attempts": number, "status_code": status_code,
                               "error": o.error.as_ref().map(AttemptError::kind)})
            .to_string();
            match next {
                Next::Delivered => {
                    recorded.delivered += 1;
                    ami_store::system::webhooks::reset_failures(
                        self.system(),
                        &mut tx,
                        &d.webhook_id,
                        now,
                    )
                    .await?;
                    events.push(event("webhook_delivered", about));
                }
                Next::Retry(_) | Next::Parked => recorded.retrying += 1,
                Next::Failed { gone } => {
                    recorded.failed += 1;
                    events.push(event("webhook_delivery_failed", about));
                    let reason = if gone {
                        Some(DISABLED_GONE)
                    } else {
                        ami_store::system::webhooks::count_failure(
                            self.system(),
                            &mut tx,
                            &d.webhook_id,
                            now,
                        )
                        .await?
                        .filter(|n| *n >= AUTO_DISABLE_AFTER)
                        .map(|_| DISABLED_FAILURES)
                    };
                    if let Some(reason) = reason
                        && is_active
                        && ami_store::system::webhooks::disable(
                            self.system(),
                            &mut tx,
                            &d.webhook_id,
                            reason,
                            now,
                        )
                        .await?
                    {
                        let parked = webhook_deliveries::park(&mut tx, &d.webhook_id, now).await?;
                        active.insert(d.webhook_id.clone(), false);
                        let action = if gone {
                            "webhook_disabled"
                        } else {
                            "webhook_auto_disabled"
                        };
                        events.push(event(
                            action,
                            json!({"reason": reason, "delivery_id": d.id,
                                   "consecutive_failures_limit": AUTO_DISABLE_AFTER,
                                   "parked_deliveries": parked})
                            .to_string(),
                        ));
                    }
                }
            }
            resumed |= matches!(next, Next::Retry(due) if due <= now);
        }

        let rows: Vec<NewAttempt<'_>> = attempts
            .iter()
            .map(|(r, number, error)| NewAttempt {
                delivery_id: &r.delivery.id,
                number: *number,
                account_id: &r.delivery.account_id,
                attempted_at: r.attempted_at,
                status_code: r.outcome.status.map(i64::from),
                latency_ms: i64::try_from(r.outcome.latency_ms).unwrap_or(i64::MAX),
                error_kind: r.outcome.error.as_ref().map(AttemptError::kind),
                error: error.as_deref(),
                response_excerpt: &r.outcome.response_excerpt,
            })
            .collect();
        webhook_deliveries::insert_attempts(&mut tx, &rows).await?;
        write_events(&mut tx, &events, now).await?;
        ami_store::commit(tx).await?;
        if resumed {
            self.webhook_wakeup.notify_one();
        }
        Ok(recorded)
    }
}

/// The URL, the headers (with both signatures for this attempt's timestamp) and the body.
fn prepare(d: &Claimed, attempted_at: i64) -> Result<(WebhookUrl, HeaderMap, Bytes), AttemptError> {
    // A stored URL is judged again by the sender; here it only has to parse.
    let url = WebhookUrl::parse_stored(&d.url).map_err(AttemptError::Refused)?;
    let body = Bytes::from(d.payload.clone());
    let timestamp = u64::try_from(attempted_at.div_euclid(1000)).unwrap_or(0);
    let signature = sign(&d.secret, &d.webhook_id, &d.event_id, timestamp, &body).map_err(|e| {
        tracing::error!(webhook = %d.webhook_id, error = %e, "cannot sign a delivery");
        AttemptError::Request
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    signature
        .apply_to(&mut headers)
        .map_err(|_| AttemptError::Request)?;
    Ok((url, headers, body))
}
