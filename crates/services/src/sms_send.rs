//! The write side of `POST /v1/agent/sms/send`, for a group of sends at once (see
//! `group_commit`). Per MID of the group: the MID, its kill-switch and its usage row (locked)
//! are read once; then every send is decided in arrival order against the counters the
//! sends before it left, exactly as if each had its own transaction; then the reservations,
//! messages, dispatch jobs and audit events of the whole group are written with one
//! statement per table. Refusals are audited in the same transaction and reach no carrier.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::json;

use ami_core::delivery::SmsStatus;
use ami_core::phone::E164;
use ami_core::policy::{self, Decision, DestinationUsage, Kind, Usage};
use ami_core::sms::Segmentation;
use ami_store::{AccountId, Batch, Db, WriteTx, kill_switches, messages, mids, outbox, usage};

use crate::audit_log::{PendingEvent, push_events};
use crate::auth::Actor;
use crate::group_commit::Waiting;
use crate::sms::{JOB_SUBMIT_SMS, limit_refusal};
use crate::webhooks::Emission;
use crate::{Error, Result, Services};

/// Most sends written in one transaction.
pub(crate) const GROUP_MAX: usize = 128;

/// A send that passed validation, waiting for its group.
pub(crate) struct SendJob {
    pub account_id: AccountId,
    pub mid_id: String,
    pub to: E164,
    pub prefix: String,
    pub body: String,
    pub seg: Segmentation,
    pub cost: i64,
    /// The most the sender accepts to pay for this send (`max_price_eur`), if it set one.
    pub max_price: Option<i64>,
    /// The destination as the audit log shows it.
    pub to_masked: String,
}

/// An accepted send as its group answers it; the caller builds the response from it after
/// the commit, outside the write lock.
pub(crate) struct Accepted {
    pub message: messages::Message,
    pub remaining_budget: i64,
    pub remaining_sms_this_hour: i64,
}

pub(crate) type Group = Vec<Waiting<SendJob, Result<Accepted>>>;

/// The services and the transaction a group is written in.
type Opened = (Services, ami_store::Result<WriteTx>);

/// What stands between a MID and its sends, read once per group.
pub(crate) enum Gate {
    Missing,
    NotActive(String),
    NoSms,
    Killed(kill_switches::KillSwitch),
    Open(Box<OpenMid>),
}

pub(crate) struct OpenMid {
    account_id: AccountId,
    phone_number: String,
    pub(crate) limits: ami_core::limits::Limits,
    pub(crate) usage: Usage,
    pub(crate) destinations: HashMap<String, DestinationUsage>,
    /// Destinations whose counters this group changed.
    touched: Vec<String>,
}

impl Services {
    /// The steps of the task that writes the groups of sends. It holds the services weakly,
    /// so it ends with them.
    pub(crate) fn send_writer(
        &self,
    ) -> (
        impl Fn() -> BoxFuture<'static, Option<Opened>> + use<>,
        impl Fn(Opened, Group) -> BoxFuture<'static, ()> + use<>,
    ) {
        let shared = Arc::downgrade(&self.0);
        let open = move || {
            let services = shared.upgrade().map(Services);
            async move {
                let services = services?;
                let tx = services.store.begin_write().await;
                Some((services, tx))
            }
            .boxed()
        };
        let write = |(services, tx): Opened, group| services.write_sends(tx, group).boxed();
        (open, write)
    }

    /// Writes a group of sends in `tx` and answers each. If the group's transaction fails,
    /// each send is tried again on its own, so one send's failure is that send's alone.
    pub(crate) async fn write_sends(self, tx: ami_store::Result<WriteTx>, group: Group) {
        let (jobs, replies): (Vec<SendJob>, Vec<_>) = group.into_iter().unzip();
        let written = match tx {
            Ok(tx) => self.write_send_group(tx, &jobs).await,
            Err(e) => Err(e.into()),
        };
        match written {
            Ok(answers) => {
                for (answer, reply) in answers.into_iter().zip(replies) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, sends = jobs.len(), "group of sends failed; writing each alone");
                for (job, reply) in jobs.iter().zip(replies) {
                    let alone = match self.store.begin_write().await {
                        Ok(tx) => self.write_send_group(tx, std::slice::from_ref(job)).await,
                        Err(e) => Err(e.into()),
                    };
                    let answer = match alone {
                        Ok(mut answers) => answers.pop().unwrap_or_else(|| {
                            Err(Error::refused(500, "internal", "send not answered"))
                        }),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }

    async fn write_send_group(
        &self,
        mut tx: WriteTx,
        jobs: &[SendJob],
    ) -> Result<Vec<Result<Accepted>>> {
        let now = self.now();
        let mut db = tx.db();
        let mut gates = self.gates(&mut db, jobs).await?;
        let mut missing = Gate::Missing;
        let mut answers = Vec::with_capacity(jobs.len());
        let mut events = Vec::new();
        let mut blocked_by_limits = Vec::new();
        for job in jobs {
            let gate = gates.get_mut(&job.mid_id).unwrap_or(&mut missing);
            let actor = Actor::Agent {
                mid_id: job.mid_id.clone(),
            };
            let blocked = |reason: &str| PendingEvent {
                actor: actor.clone(),
                action: "sms_blocked",
                account_id: job.account_id.to_string(),
                mid_id: Some(job.mid_id.clone()),
                entity_type: "mobile_identity",
                entity_id: job.mid_id.clone(),
                data: json!({"reason": reason, "to": job.to_masked}).to_string(),
            };
            let (usage, destination) = match judge(gate, job, now) {
                Judgement::Refused {
                    error,
                    audited,
                    limit,
                } => {
                    if let Some(reason) = audited {
                        events.push(blocked(reason));
                    }
                    if let Some((reason, retry_after_secs)) = limit {
                        blocked_by_limits.push(Emission::limit_blocked(
                            job.account_id.as_str(),
                            &job.mid_id,
                            "sms",
                            reason.as_str(),
                            &job.to_masked,
                            retry_after_secs,
                        ));
                    }
                    answers.push(Err(error));
                    continue;
                }
                Judgement::Allowed { usage, destination } => (usage, destination),
            };
            // Only an open gate allows a send.
            let Gate::Open(open) = gate else {
                answers.push(Err(Error::refused(500, "internal", "send not decided")));
                continue;
            };
            open.usage = usage;
            open.destinations
                .insert(job.to.as_str().to_owned(), destination);
            if !open.touched.iter().any(|d| d == job.to.as_str()) {
                open.touched.push(job.to.as_str().to_owned());
            }
            let message = queued_message(job, &open.phone_number, now);
            events.push(PendingEvent {
                actor: actor.clone(),
                action: "sms_queued",
                account_id: job.account_id.to_string(),
                mid_id: Some(job.mid_id.clone()),
                entity_type: "sms",
                entity_id: message.id.clone(),
                data: json!({"to": job.to_masked, "segments": job.seg.segments,
                             "encoding": job.seg.encoding.as_str(),
                             "cost_eur": ami_core::money::to_json(job.cost)})
                .to_string(),
            });
            answers.push(Ok(Accepted {
                message,
                remaining_budget: (open.limits.monthly_budget - open.usage.spend_month).max(0),
                remaining_sms_this_hour: (open.limits.sms_per_hour - open.usage.sms_hour).max(0),
            }));
        }

        let mut counters = Vec::new();
        let mut destinations = Vec::new();
        for (mid_id, gate) in &gates {
            let Gate::Open(open) = gate else { continue };
            if open.touched.is_empty() {
                continue;
            }
            counters.push((&open.account_id, mid_id.as_str(), open.usage.clone()));
            for d in &open.touched {
                destinations.push((mid_id.as_str(), d.as_str(), open.destinations[d].clone()));
            }
        }
        // The group's writes read nothing back: they go to the store together.
        let mut writes = Batch::default();
        usage::push_save_many(&mut writes, &counters);
        usage::push_save_destinations(&mut writes, Kind::Sms, &destinations);
        let accepted: Vec<&messages::Message> = answers
            .iter()
            .filter_map(|a| a.as_ref().ok())
            .map(|a| &a.message)
            .collect();
        messages::push_insert_many(&mut writes, accepted.iter().copied());
        let ids: Vec<&str> = accepted.iter().map(|m| m.id.as_str()).collect();
        let lease = self.own_lease(now);
        let jobs = outbox::push_enqueue_many(&mut writes, JOB_SUBMIT_SMS, &ids, now, now, lease);
        push_events(&mut db, &mut writes, &events, now).await?;
        writes.run(&mut db).await?;
        self.emit(&mut db, blocked_by_limits).await?;
        tx.commit().await?;
        if lease.is_some() {
            self.hand_to_own_dispatcher(jobs);
        } else {
            self.dispatch_wakeup.notify_one();
        }
        Ok(answers)
    }

    /// Reads what decides the group's sends, for all its MIDs at once: the MIDs, the
    /// kill-switches covering them, their usage rows (locked until the transaction ends) and
    /// the counters of the group's destinations.
    pub(crate) async fn gates(
        &self,
        db: &mut Db<'_>,
        jobs: &[SendJob],
    ) -> Result<HashMap<String, Gate>> {
        let mut pairs: Vec<(&AccountId, &str)> = jobs
            .iter()
            .map(|j| (&j.account_id, j.mid_id.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let accounts: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
        let mid_ids: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        let found = mids::get_many(&mut *db, &pairs).await?;
        let engaged = kill_switches::engaged_over(&mut *db, &accounts, &mid_ids).await?;
        let mut gates = HashMap::with_capacity(found.len());
        for mid in found {
            // `get_many` returns only the pairs asked for: the MID's account is its jobs'.
            let Some(account_id) = pairs
                .iter()
                .find(|(a, id)| **a == mid.account_id && *id == mid.id)
                .map(|p| p.0.clone())
            else {
                continue;
            };
            let gate = if mid.status != "active" {
                Gate::NotActive(mid.status.clone())
            } else if crate::mids::require_capability(&mid, "sms").is_err() {
                Gate::NoSms
            } else if let Some(k) =
                kill_switches::broadest_covering(&engaged, &mid.account_id, &mid.id)
            {
                Gate::Killed(k.clone())
            } else {
                Gate::Open(Box::new(OpenMid {
                    account_id,
                    phone_number: mid.phone_number.clone(),
                    limits: crate::mids::stored_limits(&mid)?,
                    usage: Usage::default(),
                    destinations: HashMap::new(),
                    touched: Vec::new(),
                }))
            };
            gates.insert(mid.id, gate);
        }
        let open: Vec<(&AccountId, &str)> = pairs
            .iter()
            .copied()
            .filter(|(_, mid)| matches!(gates.get(*mid), Some(Gate::Open(_))))
            .collect();
        let mut counters = usage::lock_many(&mut *db, &open).await?;
        let mut wanted: Vec<(&str, &str)> = jobs
            .iter()
            .filter(|j| matches!(gates.get(&j.mid_id), Some(Gate::Open(_))))
            .map(|j| (j.mid_id.as_str(), j.to.as_str()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let known = usage::destinations(db, Kind::Sms, &wanted).await?;
        for (mid_id, gate) in &mut gates {
            if let Gate::Open(open) = gate {
                open.usage = counters.remove(mid_id).unwrap_or_default();
            }
        }
        for ((mid_id, destination), d) in known {
            if let Some(Gate::Open(open)) = gates.get_mut(&mid_id) {
                open.destinations.insert(destination, d);
            }
        }
        Ok(gates)
    }
}

/// What the send path answers one send, given its MID's gate and the counters the sends
/// before it left: a refusal, with the `sms_blocked` reason it audits and the limit it
/// reports (`limit.blocked`), or the counters an accepted send leaves. The policy check
/// calls this same function, so a check and a send at the same instant cannot disagree.
pub(crate) enum Judgement {
    Refused {
        error: Error,
        audited: Option<&'static str>,
        limit: Option<(policy::Reason, Option<u64>)>,
    },
    Allowed {
        usage: Usage,
        destination: DestinationUsage,
    },
}

pub(crate) fn judge(gate: &Gate, job: &SendJob, now: i64) -> Judgement {
    let refused = |error, audited| Judgement::Refused {
        error,
        audited,
        limit: None,
    };
    let open = match gate {
        Gate::Missing => return refused(Error::not_found("mobile_identity"), None),
        Gate::NotActive(status) => {
            return refused(
                Error::conflict(
                    "mobile_identity_not_active",
                    format!("the mobile identity is {status}"),
                ),
                None,
            );
        }
        Gate::NoSms => return refused(crate::mids::missing_capability("sms"), None),
        Gate::Killed(k) => {
            return refused(crate::sms::kill_switch_refusal(k), Some("kill_switch"));
        }
        Gate::Open(open) => open,
    };
    if let Some(max) = job.max_price
        && job.cost > max
    {
        return refused(over_max_price(job.cost, max), Some("over_max_price"));
    }
    let dest = open
        .destinations
        .get(job.to.as_str())
        .cloned()
        .unwrap_or_default();
    let request = policy::Request {
        kind: Kind::Sms,
        now_ms: now,
        destination_prefix: &job.prefix,
        cost: job.cost,
    };
    match policy::decide(&open.limits, &open.usage, &dest, &request) {
        Decision::Refuse {
            reason,
            retry_after_secs,
        } => Judgement::Refused {
            error: limit_refusal(reason.as_str(), &job.mid_id, retry_after_secs),
            audited: Some(reason.as_str()),
            limit: Some((reason, retry_after_secs)),
        },
        Decision::Allow { usage, destination } => Judgement::Allowed { usage, destination },
    }
}

/// The 422 of a send that would cost more than the sender's `max_price_eur`: nothing is
/// reserved or sent.
fn over_max_price(cost: i64, max: i64) -> Error {
    Error::refused(
        422,
        "over_max_price",
        "the message would cost more than max_price_eur",
    )
    .with("cost_eur", ami_core::money::to_json(cost))
    .with("max_price_eur", ami_core::money::to_json(max))
}

fn queued_message(job: &SendJob, from: &str, now: i64) -> messages::Message {
    messages::Message {
        id: ami_core::id::new_id_at("msg", now),
        account_id: job.account_id.to_string(),
        mid_id: job.mid_id.clone(),
        direction: "outbound".into(),
        from_number: from.to_owned(),
        to_number: job.to.as_str().to_owned(),
        body: job.body.clone(),
        segments: i64::from(job.seg.segments),
        encoding: job.seg.encoding.as_str().into(),
        cost: job.cost,
        status: SmsStatus::Queued.as_str().into(),
        created_at: now,
        handed_at: None,
        sent_at: None,
        delivered_at: None,
        telco_ref: None,
        retry_count: 0,
        error: None,
        updated_at: now,
    }
}
