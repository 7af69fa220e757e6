//! The worker side of the outbox: hands queued SMS to the carrier and applies what the
//! carrier reports. Nothing here runs inside a request.

use serde_json::json;

use ami_carrier::{Carrier, CarrierEvent, OutboundSms, SubmitError};
use ami_core::delivery::{self, SmsStatus};
use ami_store::{kill_switches, messages, outbox};

use crate::audit_log::Subject;
use crate::auth::Actor;
use crate::calls::{JOB_CALL_BUDGET_CHECK, JOB_HANG_UP, JOB_PLACE_CALL};
use crate::sms::JOB_SUBMIT_SMS;
use crate::{Result, Services};

/// How long a claimed job is ours before another worker may take it.
pub const LEASE_MS: i64 = 30_000;

impl Services {
    /// Claims and runs due jobs; returns how many were claimed.
    pub async fn run_due_jobs(&self, carrier: &dyn Carrier, batch: i64) -> Result<usize> {
        let jobs = {
            let mut tx = self.store.begin().await?;
            let jobs =
                outbox::claim(&mut tx, self.store.engine(), self.now(), LEASE_MS, batch).await?;
            ami_store::commit(tx).await?;
            jobs
        };
        for job in &jobs {
            match job.kind.as_str() {
                JOB_SUBMIT_SMS => self.submit_sms(carrier, job).await?,
                JOB_PLACE_CALL => self.run_place_call(carrier, job).await?,
                JOB_HANG_UP => self.run_hang_up(carrier, job).await?,
                JOB_CALL_BUDGET_CHECK => self.run_call_budget_check(job).await?,
                other => tracing::warn!(kind = other, "unknown outbox job kind"),
            }
        }
        Ok(jobs.len())
    }

    async fn submit_sms(&self, carrier: &dyn Carrier, job: &outbox::Job) -> Result<()> {
        let mut conn = self.store.reader().await?;
        let Some(m) = messages::by_id(&mut conn, &job.ref_id).await? else {
            drop(conn);
            return self.finish_job(&job.id).await;
        };
        // Already handed off (a crash after the hand-off, before the job was closed) or no
        // longer queued (cancelled): nothing to send.
        if m.handed_at.is_some() || m.status != SmsStatus::Queued.as_str() {
            drop(conn);
            return self.finish_job(&job.id).await;
        }
        let killed = kill_switches::covering(&mut conn, &m.account_id, &m.mid_id)
            .await?
            .is_some();
        drop(conn);
        if killed {
            let mut tx = self.store.begin().await?;
            self.cancel_message(&mut tx, &m, "kill_switch").await?;
            outbox::done(&mut tx, &job.id).await?;
            return ami_store::commit(tx).await.map_err(Into::into);
        }
        let sms = OutboundSms {
            id: m.id.clone(),
            from: m.from_number.clone(),
            to: m.to_number.clone(),
            body: m.body.clone(),
            segments: u32::try_from(m.segments).unwrap_or(1),
        };
        let outcome = carrier.submit_sms(sms).await;
        let now = self.now();
        let mut tx = self.store.begin().await?;
        match outcome {
            Ok(telco_ref) => {
                messages::handed_off(&mut tx, &m.id, &telco_ref, now).await?;
                outbox::done(&mut tx, &job.id).await?;
            }
            Err(SubmitError::Rejected(why)) => {
                messages::transition(&mut tx, &m.id, "queued", "failed", now, Some(&why)).await?;
                self.release_spend(&mut tx, &m.account_id, &m.mid_id, m.cost, m.created_at)
                    .await?;
                let subject = Subject {
                    account_id: Some(&m.account_id),
                    entity_type: "sms",
                    entity_id: &m.id,
                    mid: Some(&m.mid_id),
                };
                self.audit(
                    &mut tx,
                    &Actor::System,
                    "sms_failed",
                    subject,
                    json!({"from": "queued", "to": "failed", "cause": "rejected_by_carrier"}),
                )
                .await?;
                outbox::done(&mut tx, &job.id).await?;
            }
            Err(SubmitError::Unavailable(why)) => {
                let retry = u32::try_from(m.retry_count + 1).unwrap_or(u32::MAX);
                match delivery::sms_retry_delay_ms(retry) {
                    Some(delay) => {
                        messages::count_retry(&mut tx, &m.id, now, &why).await?;
                        outbox::reschedule(&mut tx, &job.id, now + delay).await?;
                    }
                    None => {
                        messages::transition(&mut tx, &m.id, "queued", "failed", now, Some(&why))
                            .await?;
                        self.release_spend(&mut tx, &m.account_id, &m.mid_id, m.cost, m.created_at)
                            .await?;
                        let subject = Subject {
                            account_id: Some(&m.account_id),
                            entity_type: "sms",
                            entity_id: &m.id,
                            mid: Some(&m.mid_id),
                        };
                        self.audit(
                            &mut tx,
                            &Actor::System,
                            "sms_failed",
                            subject,
                            json!({"from": "queued", "to": "failed", "cause": "retries_exhausted"}),
                        )
                        .await?;
                        outbox::done(&mut tx, &job.id).await?;
                    }
                }
            }
        }
        ami_store::commit(tx).await?;
        Ok(())
    }

    async fn finish_job(&self, id: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        outbox::done(&mut tx, id).await?;
        ami_store::commit(tx).await?;
        Ok(())
    }

    /// A queued message that will never be handed off: cancelled, its reservation returned.
    pub(crate) async fn cancel_message(
        &self,
        conn: &mut ami_store::Conn,
        m: &messages::Message,
        cause: &str,
    ) -> Result<()> {
        if messages::transition(conn, &m.id, "queued", "cancelled", self.now(), Some(cause)).await?
        {
            self.release_spend(conn, &m.account_id, &m.mid_id, m.cost, m.created_at)
                .await?;
            outbox::forget(conn, &m.id).await?;
            let subject = Subject {
                account_id: Some(&m.account_id),
                entity_type: "sms",
                entity_id: &m.id,
                mid: Some(&m.mid_id),
            };
            self.audit(
                conn,
                &Actor::System,
                "sms_cancelled",
                subject,
                json!({"cause": cause}),
            )
            .await?;
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
