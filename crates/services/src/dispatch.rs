//! The worker side of the outbox: hands queued SMS to the carrier and applies what the
//! carrier reports. Nothing here runs inside a request.

use serde_json::json;

use ami_carrier::{Carrier, CarrierEvent, OutboundSms, SubmitError};
use ami_core::delivery::{self, SmsStatus};
use ami_core::webhook_event::WebhookEvent;
use ami_store::{Batch, Db, kill_switches, messages, outbox, usage};

use crate::audit_log::Subject;
use crate::auth::Actor;
use crate::calls::{JOB_CALL_BUDGET_CHECK, JOB_HANG_UP, JOB_PLACE_CALL};
use crate::sms::{JOB_SUBMIT_SMS, SmsReport};
use crate::webhooks::Emission;
use crate::{Result, Services};

/// How long a claimed job is ours before another worker may take it.
pub const LEASE_MS: i64 = 30_000;

impl Services {
    /// Claims and runs due jobs; returns how many were claimed.
    pub async fn run_due_jobs(&self, carrier: &dyn Carrier, batch: i64) -> Result<usize> {
        let jobs = {
            let mut tx = self.store.begin_write().await?;
            let jobs = outbox::claim(tx.db(), self.now(), LEASE_MS, batch).await?;
            tx.commit().await?;
            jobs
        };
        self.run_jobs(carrier, &jobs).await?;
        Ok(jobs.len())
    }

    /// Runs jobs this process holds the lease of.
    pub(crate) async fn run_jobs(&self, carrier: &dyn Carrier, jobs: &[outbox::Job]) -> Result<()> {
        let (sms, others): (Vec<_>, Vec<_>) = jobs.iter().partition(|j| j.kind == JOB_SUBMIT_SMS);
        self.submit_sms(carrier, &sms).await?;
        for job in others {
            match job.kind.as_str() {
                JOB_PLACE_CALL => self.run_place_call(carrier, job).await?,
                JOB_HANG_UP => self.run_hang_up(carrier, job).await?,
                JOB_CALL_BUDGET_CHECK => self.run_call_budget_check(job).await?,
                other => tracing::warn!(kind = other, "unknown outbox job kind"),
            }
        }
        Ok(())
    }

    /// Hands a batch of queued SMS to the carrier, all at once, and records the hand-offs in
    /// one transaction. A message already handed off (a crash between the hand-off and the
    /// job's end) or no longer queued (cancelled) is not sent again; one a kill-switch now
    /// covers is cancelled instead.
    async fn submit_sms(&self, carrier: &dyn Carrier, jobs: &[&outbox::Job]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = jobs.iter().map(|j| j.ref_id.clone()).collect();
        let mut finished: Vec<String> = Vec::new();
        let mut killed = Vec::new();
        let mut sendable = Vec::new();
        {
            let mut conn = self.store.read_conn().await?;
            let mut found: std::collections::HashMap<String, messages::Message> =
                messages::by_ids(&mut conn, &ids)
                    .await?
                    .into_iter()
                    .map(|m| (m.id.clone(), m))
                    .collect();
            let queued: Vec<(&outbox::Job, messages::Message)> = jobs
                .iter()
                .filter_map(|job| match found.remove(&job.ref_id) {
                    Some(m) if m.handed_at.is_none() && m.status == SmsStatus::Queued.as_str() => {
                        Some((*job, m))
                    }
                    _ => {
                        finished.push(job.id.clone());
                        None
                    }
                })
                .collect();
            let accounts: Vec<&str> = queued.iter().map(|(_, m)| m.account_id.as_str()).collect();
            let mids: Vec<&str> = queued.iter().map(|(_, m)| m.mid_id.as_str()).collect();
            let engaged = kill_switches::engaged_over(&mut conn, &accounts, &mids).await?;
            for (job, m) in queued {
                if kill_switches::broadest_covering(&engaged, &m.account_id, &m.mid_id).is_some() {
                    killed.push((job, m));
                } else {
                    sendable.push((job, m));
                }
            }
        }
        let outcomes = futures_util::future::join_all(sendable.iter().map(|(_, m)| {
            carrier.submit_sms(OutboundSms {
                id: m.id.clone(),
                from: m.from_number.clone(),
                to: m.to_number.clone(),
                body: m.body.clone(),
                segments: u32::try_from(m.segments).unwrap_or(1),
            })
        }))
        .await;
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let mut db = tx.db();
        // Cancelling or failing a message returns its reservation and writes an audit event,
        // one message after another: the usage rows all of them need come first, in order.
        let returning: Vec<(&str, &str)> = killed
            .iter()
            .map(|(_, m)| m)
            .chain(
                sendable
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, outcome)| outcome.is_err())
                    .map(|((_, m), _)| m),
            )
            .map(|m| (m.account_id.as_str(), m.mid_id.as_str()))
            .collect();
        usage::lock_many(&mut db, &returning).await?;
        for (job, m) in &killed {
            self.cancel_message(&mut db, m, "kill_switch").await?;
            finished.push(job.id.clone());
        }
        let mut handed = Vec::new();
        for ((job, m), outcome) in sendable.iter().zip(outcomes) {
            match outcome {
                Ok(telco_ref) => {
                    handed.push((m.id.clone(), telco_ref));
                    finished.push(job.id.clone());
                }
                Err(SubmitError::Rejected(why)) => {
                    self.fail_before_hand_off(&mut db, m, &why, "rejected_by_carrier")
                        .await?;
                    finished.push(job.id.clone());
                }
                Err(SubmitError::Unavailable(why)) => {
                    let retry = u32::try_from(m.retry_count + 1).unwrap_or(u32::MAX);
                    match delivery::sms_retry_delay_ms(retry) {
                        Some(delay) => {
                            messages::count_retry(&mut db, &m.id, now, &why).await?;
                            outbox::reschedule(&mut db, &job.id, now + delay).await?;
                        }
                        None => {
                            self.fail_before_hand_off(&mut db, m, &why, "retries_exhausted")
                                .await?;
                            finished.push(job.id.clone());
                        }
                    }
                }
            }
        }
        let mut writes = Batch::default();
        messages::push_handed_off_many(&mut writes, &handed, now);
        outbox::push_done_many(&mut writes, &finished);
        writes.run(db).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A message the carrier will never take: failed, its reservation returned.
    async fn fail_before_hand_off(
        &self,
        db: &mut Db<'_>,
        m: &messages::Message,
        why: &str,
        cause: &str,
    ) -> Result<()> {
        let now = self.now();
        messages::transition(&mut *db, &m.id, "queued", "failed", now, Some(why)).await?;
        self.release_spend(&mut *db, &m.account_id, &m.mid_id, m.cost, m.created_at)
            .await?;
        let subject = Subject {
            account_id: Some(&m.account_id),
            entity_type: "sms",
            entity_id: &m.id,
            mid: Some(&m.mid_id),
        };
        self.audit(
            &mut *db,
            &Actor::System,
            "sms_failed",
            subject,
            json!({"from": "queued", "to": "failed", "cause": cause}),
        )
        .await?;
        let failed = messages::Message {
            status: SmsStatus::Failed.as_str().into(),
            error: Some(why.to_owned()),
            updated_at: now,
            ..m.clone()
        };
        self.emit_one(db, Emission::sms(WebhookEvent::SmsFailed, &failed))
            .await?;
        Ok(())
    }

    /// A queued message that will never be handed off: cancelled, its reservation returned.
    pub(crate) async fn cancel_message(
        &self,
        db: impl Into<Db<'_>>,
        m: &messages::Message,
        cause: &str,
    ) -> Result<()> {
        let mut db = db.into();
        let now = self.now();
        if messages::transition(&mut db, &m.id, "queued", "cancelled", now, Some(cause)).await? {
            self.release_spend(&mut db, &m.account_id, &m.mid_id, m.cost, m.created_at)
                .await?;
            outbox::forget(&mut db, &m.id).await?;
            let subject = Subject {
                account_id: Some(&m.account_id),
                entity_type: "sms",
                entity_id: &m.id,
                mid: Some(&m.mid_id),
            };
            self.audit(
                db,
                &Actor::System,
                "sms_cancelled",
                subject,
                json!({"cause": cause}),
            )
            .await?;
        }
        Ok(())
    }

    /// Applies events from the carrier's stream: the delivery reports among them in one
    /// transaction, the others one by one.
    pub async fn apply_carrier_events(&self, events: Vec<CarrierEvent>) -> Result<()> {
        let (reports, others): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| matches!(e, CarrierEvent::Sms { .. }));
        let reports: Vec<SmsReport> = reports
            .into_iter()
            .filter_map(|e| match e {
                CarrierEvent::Sms {
                    msg_id,
                    telco_ref,
                    status,
                    error,
                } => Some(SmsReport {
                    msg_id,
                    status,
                    telco_ref: Some(telco_ref),
                    error,
                }),
                _ => None,
            })
            .collect();
        if !reports.is_empty() {
            // A report for a message we do not know is the carrier's confusion, not ours: its
            // own answer is a refusal, the others apply.
            self.apply_sms_statuses(&Actor::Telco, &reports).await?;
        }
        for event in others {
            self.apply_carrier_event(event).await?;
        }
        Ok(())
    }

    /// Applies one event from the carrier's stream.
    pub async fn apply_carrier_event(&self, event: CarrierEvent) -> Result<()> {
        match event {
            CarrierEvent::Sms {
                msg_id,
                telco_ref,
                status,
                error,
            } => {
                match self
                    .apply_sms_status(
                        &Actor::Telco,
                        &msg_id,
                        status,
                        Some(&telco_ref),
                        error.as_deref(),
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    // A report for a message we do not know is the carrier's confusion, not ours.
                    Err(crate::Error::Refused { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            CarrierEvent::InboundSms {
                from,
                to,
                body,
                telco_ref,
            } => {
                let sms = crate::telco::InboundSms {
                    from: Some(from),
                    to: Some(to),
                    body: Some(body),
                    telco_ref: Some(telco_ref),
                };
                match self.receive_sms(&Actor::Telco, sms).await {
                    Ok(_) => Ok(()),
                    // Refused as the telco callback would be (unknown number, MID not active,
                    // kill-switch): the network gets its answer, our worker goes on.
                    Err(crate::Error::Refused { code, .. }) => {
                        tracing::info!(code = %code, "inbound SMS refused");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            CarrierEvent::Call {
                call_id,
                telco_ref,
                status,
                hangup_cause,
            } => {
                match self
                    .apply_call_status(
                        &Actor::Telco,
                        &call_id,
                        status,
                        Some(&telco_ref),
                        hangup_cause.as_deref(),
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    // A status for a call we do not know is the carrier's confusion, not ours.
                    Err(crate::Error::Refused { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            CarrierEvent::InboundCall {
                from,
                to,
                telco_ref,
            } => {
                let call = crate::inbound_calls::InboundCall {
                    from: Some(from),
                    to: Some(to),
                    telco_ref: Some(telco_ref),
                };
                match self.receive_call(&Actor::Telco, call).await {
                    Ok(_) => Ok(()),
                    Err(crate::Error::Refused { code, .. }) => {
                        tracing::info!(code = %code, "inbound call refused");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}
