//! The worker side of the outbox: hands queued SMS to the carrier and applies what the
//! carrier reports. Nothing here runs inside a request.
//!
//! What reaches the carrier, per operation (docs/durability.md):
//! - an SMS submission reaches it once. A claim's lease outlives the carrier's timeout, and
//!   the outcome is recorded only by the holder of the claim's fence. An attempt whose outcome
//!   was never recorded (a crash, a lost lease, a timeout) is settled by asking the carrier
//!   whether it has the message, when it can be asked; otherwise the message becomes
//!   `unknown` and is never submitted again;
//! - a call is placed at most once the same way (one the carrier cannot account for fails
//!   with `outcome_unknown`);
//! - a hang-up may reach the carrier more than once: asking twice to drop a call is harmless.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use ami_carrier::{Carrier, Lookup, OutboundSms, SubmitError};
use ami_core::delivery::{self, SmsStatus};
use ami_core::webhook_event::WebhookEvent;
use ami_store::{AccountId, Batch, Db, carrier_refs, kill_switches, messages, outbox, usage};

use crate::audit_log::Subject;
use crate::auth::Actor;
use crate::calls::{JOB_CALL_BUDGET_CHECK, JOB_HANG_UP, JOB_PLACE_CALL};
use crate::sms::JOB_SUBMIT_SMS;
use crate::webhooks::Emission;
use crate::{Result, Services};

/// How a dispatcher holds its jobs.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// The name this process holds its leases under; a restarted process of the same name
    /// takes them back at once.
    pub holder: String,
    /// How long a claimed job is ours before another worker may take it.
    pub lease_ms: i64,
    /// The longest wait for one carrier operation; after it the outcome is unknown.
    pub carrier_timeout: Duration,
    /// How long an SMS may wait queued while no connection to the network can take it;
    /// after that it fails (`validity_expired`) and its reservation is returned.
    pub sms_validity_ms: i64,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            holder: "ami".into(),
            lease_ms: 30_000,
            carrier_timeout: Duration::from_secs(10),
            sms_validity_ms: 86_400_000,
        }
    }
}

/// What a lease must still have left when a job goes to the carrier: the carrier's timeout
/// plus this, so the job's outcome is recorded before anybody else may claim it.
const LEASE_MARGIN_MS: i64 = 2_000;
/// When a job whose attempt timed out is looked up at the carrier.
pub(crate) const LOOKUP_AFTER_MS: i64 = 5_000;
/// When a job whose run failed is tried again.
const RETRY_FAILED_MS: i64 = 2_000;
/// How soon a message is offered again while every connection to the network is down.
const DOWN_RETRY_MS: i64 = 5_000;

/// Where one SMS job stands before its hand-off is recorded.
enum Fate {
    /// Gone, handed off already, or no longer queued: nothing to do but end the job.
    Finished,
    /// A kill-switch now covers it.
    Killed,
    /// Not at the carrier: submit it.
    Fresh,
    /// The carrier has it (a lookup found it, or the submission was taken).
    Handed(String),
    Rejected(String),
    Unavailable(String),
    /// No connection could take it: it waits, queued, without counting a retry.
    Down(String),
    /// It may have reached the carrier: never submitted again.
    Unknown(String),
}

impl Services {
    /// Claims and runs due jobs; returns how many were claimed.
    pub async fn run_due_jobs(&self, carrier: &dyn Carrier, batch: i64) -> Result<usize> {
        let d = &self.settings.dispatch;
        let jobs = {
            let _claiming = self.metrics.time_dispatch_claim();
            let mut tx = self.store.begin_write().await?;
            let jobs = outbox::claim(tx.db(), self.now(), d.lease_ms, batch, &d.holder).await?;
            tx.commit().await?;
            jobs
        };
        self.claims
            .jobs
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.run_jobs(carrier, &jobs).await?;
        Ok(jobs.len())
    }

    /// Voids the leases a previous process of this holder left, so that its jobs are claimed
    /// at once: every lease on SQLite (one process owns the database), the holder's own on
    /// PostgreSQL. Returns how many.
    pub async fn take_back_leases(&self) -> Result<u64> {
        let holder = match self.store.engine() {
            ami_store::Engine::Sqlite => None,
            ami_store::Engine::Postgres => Some(self.settings.dispatch.holder.as_str()),
        };
        let mut tx = self.store.begin_write().await?;
        let jobs = outbox::take_back(tx.db(), holder).await?;
        ami_store::webhook_deliveries::take_back(tx.db(), holder).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    /// Runs jobs this process holds the lease of: the SMS together, every other job on its
    /// own. Jobs whose run fails (the store, mostly) are given back to be tried again after
    /// [`RETRY_FAILED_MS`], without holding back the others; an attempt of theirs that may have
    /// reached the carrier is recognised as such by whoever claims them. Returns the first
    /// failure.
    pub(crate) async fn run_jobs(&self, carrier: &dyn Carrier, jobs: &[outbox::Job]) -> Result<()> {
        let (sms, others): (Vec<_>, Vec<_>) = jobs.iter().partition(|j| j.kind == JOB_SUBMIT_SMS);
        let mut failed: Vec<&outbox::Job> = Vec::new();
        let mut first = None;
        if let Err(e) = self.submit_sms(carrier, &sms).await {
            failed.extend(&sms);
            first = Some(e);
        }
        for job in others {
            let run = match job.kind.as_str() {
                JOB_PLACE_CALL => self.run_place_call(carrier, job).await,
                JOB_HANG_UP => self.run_hang_up(carrier, job).await,
                JOB_CALL_BUDGET_CHECK => self.run_call_budget_check(job).await,
                other => Err(crate::Error::Internal(ami_store::StoreError::Corrupt(
                    format!("unknown outbox job kind {other:?}"),
                ))),
            };
            if let Err(e) = run {
                failed.push(job);
                first.get_or_insert(e);
            }
        }
        let Some(first) = first else {
            return Ok(());
        };
        let deferred = async {
            let mut tx = self.store.begin_write().await?;
            outbox::defer(tx.db(), &failed, self.now() + RETRY_FAILED_MS).await?;
            tx.commit().await?;
            Ok::<_, crate::Error>(())
        };
        if let Err(e) = deferred.await {
            tracing::warn!(error = %e, "leases not given back; the jobs are claimed again when they end");
        }
        Err(first)
    }

    /// `op` bounded by the carrier timeout; None when it ran out.
    pub(crate) async fn within_timeout<T>(&self, op: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.settings.dispatch.carrier_timeout, op)
            .await
            .ok()
    }

    /// Before jobs reach the carrier: leases too short to outlive its timeout are renewed,
    /// and, for a carrier that cannot be asked afterwards, the attempt is recorded as started.
    /// Returns the ids still ours.
    pub(crate) async fn prepare_attempts(
        &self,
        carrier: &dyn Carrier,
        jobs: &[&outbox::Job],
    ) -> Result<HashSet<String>> {
        let d = &self.settings.dispatch;
        let now = self.now();
        let timeout_ms = i64::try_from(d.carrier_timeout.as_millis()).unwrap_or(i64::MAX);
        let short: Vec<&outbox::Job> = jobs
            .iter()
            .copied()
            .filter(|j| j.lease_until - now < timeout_ms.saturating_add(LEASE_MARGIN_MS))
            .collect();
        let mark = !carrier.looks_up();
        let mut ours: HashSet<String> = jobs.iter().map(|j| j.id.clone()).collect();
        if short.is_empty() && !mark {
            return Ok(ours);
        }
        let mut tx = self.store.begin_write().await?;
        if !short.is_empty() {
            let renewed = outbox::renew(tx.db(), &short, now + d.lease_ms).await?;
            ours.retain(|id| renewed.contains(id) || !short.iter().any(|j| &j.id == id));
        }
        if mark {
            let kept: Vec<&outbox::Job> = jobs
                .iter()
                .copied()
                .filter(|j| ours.contains(&j.id))
                .collect();
            ours = outbox::mark_started(tx.db(), &kept).await?;
        }
        tx.commit().await?;
        Ok(ours)
    }

    /// Hands a batch of queued SMS to the carrier, all at once, and records the hand-offs in
    /// one transaction. A message already handed off or no longer queued (cancelled) is not
    /// sent again; one a kill-switch now covers is cancelled instead; one an earlier holder
    /// may have handed off is looked up at the carrier, or, if the carrier cannot tell,
    /// recorded as `unknown`.
    async fn submit_sms(&self, carrier: &dyn Carrier, jobs: &[&outbox::Job]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let looks_up = carrier.looks_up();
        let ids: Vec<String> = jobs.iter().map(|j| j.ref_id.clone()).collect();
        let mut found: HashMap<String, messages::Message> = {
            let mut conn = self.store.read_conn().await?;
            ami_store::system::messages::by_ids(self.system(), &mut conn, &ids)
                .await?
                .into_iter()
                .map(|m| (m.id.clone(), m))
                .collect()
        };
        let mut work: Vec<(&outbox::Job, Option<messages::Message>, Fate)> = jobs
            .iter()
            .map(|job| match found.remove(&job.ref_id) {
                Some(m) if m.handed_at.is_none() && m.status == SmsStatus::Queued.as_str() => {
                    (*job, Some(m), Fate::Fresh)
                }
                m => (*job, m, Fate::Finished),
            })
            .collect();
        {
            let queued: Vec<&messages::Message> = work
                .iter()
                .filter(|(_, _, f)| matches!(f, Fate::Fresh))
                .filter_map(|(_, m, _)| m.as_ref())
                .collect();
            let accounts: Vec<&str> = queued.iter().map(|m| m.account_id.as_str()).collect();
            let mids: Vec<&str> = queued.iter().map(|m| m.mid_id.as_str()).collect();
            let mut conn = self.store.read_conn().await?;
            let engaged = kill_switches::engaged_over(&mut conn, &accounts, &mids).await?;
            for (_, m, fate) in &mut work {
                if let (Fate::Fresh, Some(m)) = (&*fate, m.as_ref())
                    && kill_switches::broadest_covering(&engaged, &m.account_id, &m.mid_id)
                        .is_some()
                {
                    *fate = Fate::Killed;
                }
            }
        }
        // Attempts an earlier holder may have made: the carrier says whether it has them.
        for (job, m, fate) in &mut work {
            if !matches!(fate, Fate::Fresh) || !job.maybe_started(looks_up) {
                continue;
            }
            let Some(m) = m.as_ref() else { continue };
            let lookup = if looks_up {
                self.within_timeout(carrier.find_sms(&m.id))
                    .await
                    .unwrap_or(Lookup::Unknown)
            } else {
                Lookup::Unknown
            };
            *fate = match lookup {
                Lookup::Found(telco_ref) => Fate::Handed(telco_ref),
                Lookup::NotFound => Fate::Fresh,
                Lookup::Unknown => Fate::Unknown("an earlier attempt's outcome is unknown".into()),
            };
        }
        let fresh: Vec<&outbox::Job> = work
            .iter()
            .filter(|(_, _, f)| matches!(f, Fate::Fresh))
            .map(|(j, _, _)| *j)
            .collect();
        let ready = self.prepare_attempts(carrier, &fresh).await?;
        let sending: Vec<usize> = work
            .iter()
            .enumerate()
            .filter(|(_, (j, _, f))| matches!(f, Fate::Fresh) && ready.contains(&j.id))
            .map(|(i, _)| i)
            .collect();
        let batch: Vec<OutboundSms> = sending
            .iter()
            .filter_map(|&i| work[i].1.as_ref())
            .map(|m| OutboundSms {
                id: m.id.clone(),
                from: m.from_number.clone(),
                to: m.to_number.clone(),
                body: m.body.clone(),
                segments: u32::try_from(m.segments).unwrap_or(1),
            })
            .collect();
        let _handing = (!batch.is_empty()).then(|| self.metrics.time_dispatch_hand_off());
        if !batch.is_empty() {
            let count = batch.len();
            let outcomes = self
                .within_timeout(carrier.submit_sms_batch(batch))
                .await
                .unwrap_or_else(|| {
                    vec![
                        Err(SubmitError::Unknown(
                            "the carrier did not answer in time".into()
                        ));
                        count
                    ]
                });
            for (&i, outcome) in sending.iter().zip(outcomes) {
                self.metrics.count_submission(&outcome);
                work[i].2 = match outcome {
                    Ok(telco_ref) => Fate::Handed(telco_ref),
                    Err(SubmitError::Rejected(why)) => Fate::Rejected(why),
                    Err(SubmitError::Unavailable(why)) => Fate::Unavailable(why),
                    Err(SubmitError::Unknown(why)) => Fate::Unknown(why),
                    Err(SubmitError::Down(why)) => Fate::Down(why),
                };
            }
        }
        // Fresh ones that lost their lease before reaching the carrier are left to the holder.
        work.retain(|(_, _, f)| !matches!(f, Fate::Fresh));
        let early = self
            .record_sms_outcomes(work, looks_up, carrier.reports_by_reference())
            .await?;
        self.apply_early_receipts(early).await
    }

    /// Records what became of a batch of SMS jobs, in one transaction, for the jobs whose
    /// claim is still ours; the others' outcomes belong to whoever holds them now. For a
    /// carrier whose receipts name only its own reference, also which message each reference
    /// names; returns the receipts that arrived before their reference did.
    async fn record_sms_outcomes(
        &self,
        work: Vec<(&outbox::Job, Option<messages::Message>, Fate)>,
        looks_up: bool,
        by_reference: bool,
    ) -> Result<Vec<carrier_refs::Early>> {
        if work.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let mut db = tx.db();
        let jobs: Vec<&outbox::Job> = work.iter().map(|(j, _, _)| *j).collect();
        let ours = outbox::held(&mut db, &jobs).await?;
        let mut finished: Vec<String> = Vec::new();
        let mut handed = Vec::new();
        let mut changing = Vec::new();
        for (job, m, fate) in work {
            if !ours.contains(&job.id) {
                if let Fate::Handed(telco_ref) = &fate {
                    tracing::warn!(job = %job.id, telco_ref = %telco_ref, "lease lost while the carrier took the message; its next holder settles it");
                }
                continue;
            }
            match (fate, m) {
                (Fate::Handed(telco_ref), Some(m)) => {
                    handed.push((m.id.clone(), telco_ref));
                    finished.push(job.id.clone());
                }
                (Fate::Finished | Fate::Handed(_), _) | (_, None) => finished.push(job.id.clone()),
                (fate, Some(m)) => changing.push((job, m, fate)),
            }
        }
        // Cancelling or failing a message returns its reservation and writes an audit event,
        // one message after another: the usage rows all of them need come first, in order.
        let returning: Vec<(AccountId, &str)> = changing
            .iter()
            .filter(|(_, _, f)| {
                matches!(
                    f,
                    Fate::Killed | Fate::Rejected(_) | Fate::Unavailable(_) | Fate::Down(_)
                )
            })
            .map(|(_, m, _)| (self.row_account(&m.account_id), m.mid_id.as_str()))
            .collect();
        let returning: Vec<(&AccountId, &str)> = returning.iter().map(|(a, m)| (a, *m)).collect();
        usage::lock_many(&mut db, &returning).await?;
        for (job, m, fate) in &changing {
            match fate {
                Fate::Killed => {
                    self.cancel_message(&mut db, m, "kill_switch").await?;
                    finished.push(job.id.clone());
                }
                Fate::Rejected(why) => {
                    self.fail_before_hand_off(&mut db, m, why, "rejected_by_carrier")
                        .await?;
                    finished.push(job.id.clone());
                }
                Fate::Unavailable(why) => {
                    let retry = u32::try_from(m.retry_count + 1).unwrap_or(u32::MAX);
                    match delivery::sms_retry_delay_ms(retry) {
                        Some(delay) => {
                            ami_store::system::messages::count_retry(
                                self.system(),
                                &mut db,
                                &m.id,
                                now,
                                why,
                            )
                            .await?;
                            outbox::reschedule(&mut db, &job.id, now + delay).await?;
                        }
                        None => {
                            self.fail_before_hand_off(&mut db, m, why, "retries_exhausted")
                                .await?;
                            finished.push(job.id.clone());
                        }
                    }
                }
                Fate::Down(why) if now - m.created_at < self.settings.dispatch.sms_validity_ms => {
                    tracing::debug!(sms = %m.id, reason = %why, "no connection to the network; the message waits");
                    outbox::reschedule(&mut db, &job.id, now + DOWN_RETRY_MS).await?;
                }
                Fate::Down(why) => {
                    self.fail_before_hand_off(&mut db, m, why, "validity_expired")
                        .await?;
                    finished.push(job.id.clone());
                }
                Fate::Unknown(_) if looks_up => {
                    // Asked again shortly: the carrier will say whether it got it.
                    outbox::reschedule(&mut db, &job.id, now + LOOKUP_AFTER_MS).await?;
                }
                Fate::Unknown(why) => {
                    self.mark_outcome_unknown(&mut db, m, why).await?;
                    finished.push(job.id.clone());
                }
                Fate::Finished | Fate::Fresh | Fate::Handed(_) => {}
            }
        }
        let early = if by_reference && !handed.is_empty() {
            let refs: Vec<(String, String)> = handed
                .iter()
                .map(|(msg_id, telco_ref)| (telco_ref.clone(), msg_id.clone()))
                .collect();
            carrier_refs::bind_many(&mut db, &refs, now).await?
        } else {
            Vec::new()
        };
        let mut writes = Batch::default();
        ami_store::system::messages::push_handed_off_many(self.system(), &mut writes, &handed, now);
        outbox::push_done_many(&mut writes, &finished);
        writes.run(db).await?;
        tx.commit().await?;
        Ok(early)
    }

    /// A message the carrier may or may not have: `unknown`, still charged, never submitted
    /// again. A later delivery report settles it.
    async fn mark_outcome_unknown(
        &self,
        db: &mut Db<'_>,
        m: &messages::Message,
        why: &str,
    ) -> Result<()> {
        let now = self.now();
        if !ami_store::system::messages::transition(
            self.system(),
            &mut *db,
            &m.id,
            "queued",
            "unknown",
            now,
            Some(why),
        )
        .await?
        {
            return Ok(());
        }
        self.audit(
            db,
            &Actor::System,
            "sms_outcome_unknown",
            sms_subject(m),
            json!({"from": "queued", "to": "unknown"}),
        )
        .await?;
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
        ami_store::system::messages::transition(
            self.system(),
            &mut *db,
            &m.id,
            "queued",
            "failed",
            now,
            Some(why),
        )
        .await?;
        self.release_spend(
            &mut *db,
            &self.row_account(&m.account_id),
            &m.mid_id,
            m.cost,
            m.created_at,
        )
        .await?;
        self.audit(
            &mut *db,
            &Actor::System,
            "sms_failed",
            sms_subject(m),
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
        if ami_store::system::messages::transition(
            self.system(),
            &mut db,
            &m.id,
            "queued",
            "cancelled",
            now,
            Some(cause),
        )
        .await?
        {
            self.release_spend(
                &mut db,
                &self.row_account(&m.account_id),
                &m.mid_id,
                m.cost,
                m.created_at,
            )
            .await?;
            outbox::forget(&mut db, &m.id).await?;
            self.audit(
                db,
                &Actor::System,
                "sms_cancelled",
                sms_subject(m),
                json!({"cause": cause}),
            )
            .await?;
        }
        Ok(())
    }
}

/// The audit subject of an SMS.
fn sms_subject(m: &messages::Message) -> Subject<'_> {
    Subject {
        account_id: Some(&m.account_id),
        entity_type: "sms",
        entity_id: &m.id,
        mid: Some(&m.mid_id),
    }
}
