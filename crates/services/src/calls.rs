//! Agent calls (PROTOCOL §3.5): placed with the §6 policy checked and the call slots reserved
//! in the same transaction as the call, its audit event and its dispatch job; call states that
//! never move backwards; retries of unanswered attempts; a charge per started minute on
//! completion; hang-ups by the agent, by a kill-switch (§7) and by the budget (§6).
//!
//! A call keeps one id for its whole life. An attempt that fails before the answer, or is not
//! answered, is placed again after the §3.5 backoff: the call goes back to `initiated` with
//! `retry_count + 1` (and no carrier reference until the next hand-off), so a client polling
//! for a terminal status never sees one that is about to be undone. Events that name an
//! earlier attempt's carrier reference are ignored.
//!
//! Ending a call on our side (agent, kill-switch, budget) settles its status at once: before
//! the answer `cancelled`, after it `completed` and charged. If the carrier has the call, a
//! `call_hang_up` job asks it to drop the line; whatever it reports afterwards is ignored.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use ami_carrier::{Carrier, Lookup, OutboundCall, SubmitError};
use ami_core::delivery::{self, CallStatus};
use ami_core::limits::Limits;
use ami_core::phone::E164;
use ami_core::policy::{self, Decision, DestinationUsage, Kind, Usage};
use ami_core::webhook_event::WebhookEvent;
use ami_store::page::PageRequest;
use ami_store::{Conn, calls, kill_switches, mids, outbox, usage};

use crate::audit_log::Subject;
use crate::auth::{Actor, AgentCaller};
use crate::dispatch::LOOKUP_AFTER_MS;
use crate::sms::{limit_refusal, parse_destination};
use crate::webhooks::Emission;
use crate::{Error, Result, Services, validate};

/// Hands an `initiated` call (or its next attempt) to the carrier.
pub const JOB_PLACE_CALL: &str = "call_place";
/// Asks the carrier to drop a call we ended.
pub const JOB_HANG_UP: &str = "call_hang_up";
/// Ends a running call before it starts a minute the monthly budget cannot pay.
pub const JOB_CALL_BUDGET_CHECK: &str = "call_budget_check";

/// `hangup_cause` of a call the agent hung up.
pub const HANGUP_BY_AGENT: &str = "hangup_by_agent";
/// `hangup_cause` of a call ended because the next minute would cross the monthly budget.
pub const BUDGET_EXHAUSTED: &str = "budget_exhausted";
/// `hangup_cause` of a call ended because it reached the longest call the operator allows.
pub const MAX_DURATION: &str = "max_duration";
/// `hangup_cause` of a call ended by a kill-switch.
pub const KILL_SWITCH: &str = "kill_switch";
/// A call the carrier may have placed but cannot account for: failed, never placed again.
pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";

const MINUTE_MS: i64 = 60_000;
/// The budget is checked this long before each new minute of a running call starts, so a
/// call is ended before the minute the budget cannot pay is started (and billed).
const BUDGET_CHECK_LEAD_MS: i64 = 5_000;
/// Tries at asking the carrier to hang up (backoff 2, 4, 8, ... s) before giving up.
const HANG_UP_ATTEMPTS: i64 = 6;
/// Longest hang-up cause kept from a carrier.
const MAX_CAUSE_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    /// E.164; spaces, hyphens, dots and parentheses are removed first. The number must be
    /// valid in its country's numbering plan (length and ranges), else `invalid_to`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub to: Option<String>,
    /// Where the answered call's audio is bridged: `sip[s]:user@host[:port][;params]`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub callback_sip_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallView {
    pub id: String,
    pub mid: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub from: String,
    pub to: String,
    pub callback_sip_uri: Option<String>,
    /// `initiated`, `ringing`, `in_progress`, `completed`, `failed`, `no_answer`, `busy` or
    /// `cancelled`.
    pub status: String,
    pub created_at: String,
    /// When the (current attempt of the) call started ringing.
    pub started_at: Option<String>,
    /// Extension: when the callee answered.
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    /// Seconds from the answer to the end, rounded up; 0 for a call never answered; null
    /// while the call runs.
    pub duration_sec: Option<i64>,
    /// e.g. `normal_clearing`, `hangup_by_agent`, `budget_exhausted`, `kill_switch`, or the
    /// carrier's reason for a failure.
    pub hangup_cause: Option<String>,
    pub telco_ref: Option<String>,
    /// Attempts placed again after a failure before the answer or no answer (at most 2).
    pub retry_count: i64,
    /// Extension: what the call was charged, per started minute, once it ended.
    #[schema(value_type = f64)]
    pub cost_eur: serde_json::Value,
}

impl From<calls::Call> for CallView {
    fn from(c: calls::Call) -> Self {
        let ts = ami_core::time::rfc3339;
        Self {
            id: c.id,
            mid: c.mid_id,
            direction: c.direction,
            from: c.from_number,
            to: c.to_number,
            callback_sip_uri: c.callback_sip_uri,
            status: c.status,
            created_at: ts(c.created_at),
            started_at: c.started_at.map(ts),
            answered_at: c.answered_at.map(ts),
            ended_at: c.ended_at.map(ts),
            duration_sec: c.duration_sec,
            hangup_cause: c.hangup_cause,
            telco_ref: c.telco_ref,
            retry_count: c.retry_count,
            cost_eur: ami_core::money::to_json(c.cost),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallList {
    pub calls: Vec<CallView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

/// What a reported call status did.
#[derive(Debug, Clone)]
pub struct CallStatusOutcome {
    /// The call after the report.
    pub call: CallView,
    /// The status before the report.
    pub from: CallStatus,
    /// False when the report was ignored (it would move the call backwards, or it names
    /// another attempt's carrier reference); the ignored report is in the audit log.
    pub applied: bool,
    /// True when the report repeats the call's current status for the same attempt: carriers
    /// resend, so this is no refusal, and nothing is written.
    pub repeated: bool,
}

fn status_of(c: &calls::Call) -> CallStatus {
    // A status this server did not write cannot move anywhere.
    CallStatus::parse(&c.status).unwrap_or(CallStatus::Failed)
}

fn subject(c: &calls::Call) -> Subject<'_> {
    Subject {
        account_id: Some(&c.account_id),
        entity_type: "call",
        entity_id: &c.id,
        mid: Some(&c.mid_id),
    }
}

/// Whole seconds from `from` to `to`, rounded up (a call answered and ended within the same
/// second lasted 1 s and started a minute); 0 if `to` is not after `from`.
fn elapsed_secs(from: i64, to: i64) -> i64 {
    let ms = to.saturating_sub(from).max(0);
    ms / 1000 + i64::from(ms % 1000 != 0)
}

/// A carrier's hang-up cause as we keep it: single-line, at most [`MAX_CAUSE_CHARS`].
fn clean_cause(raw: &str) -> Option<String> {
    let s: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CAUSE_CHARS)
        .collect();
    (!s.is_empty()).then_some(s)
}

fn audit_action(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Completed => "call_completed",
        CallStatus::Cancelled => "call_cancelled",
        CallStatus::Ringing => "call_ringing",
        CallStatus::InProgress => "call_in_progress",
        CallStatus::Initiated => "call_placed",
        CallStatus::Failed | CallStatus::NoAnswer | CallStatus::Busy => "call_failed",
    }
}

/// The MID an outbound call is placed from: it exists, is active and has voice.
pub(crate) fn callable(mid: Option<mids::Mid>) -> Result<mids::Mid> {
    let mid = mid.ok_or_else(|| Error::not_found("mobile_identity"))?;
    if mid.status != "active" {
        return Err(Error::conflict(
            "mobile_identity_not_active",
            format!("the mobile identity is {}", mid.status),
        ));
    }
    crate::mids::require_capability(&mid, "voice")?;
    Ok(mid)
}

/// The §6 decision of a placement, shared by the placement and the policy check: the
/// counters it leaves, or the refusing reason and its `retry_after`.
pub(crate) fn call_decision(
    limits: &Limits,
    current: &Usage,
    dest: &DestinationUsage,
    prefix: &str,
    price_per_minute: i64,
    now: i64,
) -> std::result::Result<(Usage, DestinationUsage), (&'static str, Option<u64>)> {
    // Nothing is spent at placement: the call reserves its rate and count slots here and
    // is charged per started minute when it ends (§6).
    let request = policy::Request {
        kind: Kind::Call,
        now_ms: now,
        destination_prefix: prefix,
        cost: 0,
    };
    match policy::decide(limits, current, dest, &request) {
        Decision::Allow { usage, destination } => {
            // A call the budget cannot pay one minute of never rings anyone.
            if usage.spend_month + price_per_minute > limits.monthly_budget {
                Err(("monthly_budget", None))
            } else {
                Ok((usage, destination))
            }
        }
        Decision::Refuse {
            reason,
            retry_after_secs,
        } => Err((reason.as_str(), retry_after_secs)),
    }
}

impl Services {
    /// The price of one started minute to this number's country, from the catalogue (the
    /// highest catalogue price for a country it does not list).
    pub fn call_price(&self, to: &str) -> i64 {
        let iso = E164::parse(to)
            .ok()
            .and_then(|n| n.country())
            .and_then(|c| c.iso);
        let countries = &self.settings.countries;
        countries
            .iter()
            .find(|c| Some(&c.code) == iso.as_ref())
            .map(|c| c.call_per_min_eur)
            .unwrap_or_else(|| {
                countries
                    .iter()
                    .map(|c| c.call_per_min_eur)
                    .max()
                    .unwrap_or(0)
            })
    }

    pub async fn place_call(&self, agent: &AgentCaller, input: PlaceCall) -> Result<CallView> {
        let (to, prefix) = parse_destination("to", input.to.as_deref())?;
        let callback = match input.callback_sip_uri.as_deref() {
            None | Some("") => {
                return Err(Error::invalid(
                    "callback_sip_uri",
                    "callback_sip_uri is required: the SIP URI the answered call is bridged to",
                ));
            }
            Some(uri) => {
                ami_core::sip::validate(uri)
                    .map_err(|e| Error::invalid("callback_sip_uri", e.to_string()))?;
                uri.to_owned()
            }
        };
        let now = self.now();
        let actor = Actor::Agent {
            mid_id: agent.mid_id.to_string(),
        };
        let mid_subject =
            crate::mids::mid_subject(agent.account_id.as_str(), agent.mid_id.as_str());
        let mut tx = self.store.begin().await?;
        let mid = callable(mids::get(&mut tx, &agent.account_id, agent.mid_id.as_str()).await?)?;
        if let Err(e) = self
            .check_kill_switch(&mut tx, &agent.account_id, agent.mid_id.as_str())
            .await
        {
            self.audit(
                &mut tx,
                &actor,
                "call_blocked",
                mid_subject,
                json!({"reason": "kill_switch", "to": to.masked()}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Err(e);
        }
        let limits = crate::mids::stored_limits(&mid)?;
        let current = usage::lock(&mut tx, &agent.account_id, agent.mid_id.as_str()).await?;
        let dest =
            usage::destination(&mut tx, agent.mid_id.as_str(), Kind::Call, to.as_str()).await?;
        let price = self.call_price(to.as_str());
        let (next, next_dest) = match call_decision(&limits, &current, &dest, &prefix, price, now) {
            Ok(next) => next,
            Err((reason, retry_after_secs)) => {
                return Err(self
                    .refuse_call(tx, agent, &to, reason, retry_after_secs)
                    .await?);
            }
        };
        usage::save(&mut tx, &agent.account_id, agent.mid_id.as_str(), &next).await?;
        usage::save_destination(
            &mut tx,
            agent.mid_id.as_str(),
            Kind::Call,
            to.as_str(),
            &next_dest,
        )
        .await?;
        let call = calls::Call {
            id: ami_core::id::new_id_at("call", now),
            account_id: agent.account_id.to_string(),
            mid_id: agent.mid_id.to_string(),
            direction: "outbound".into(),
            from_number: mid.phone_number.clone(),
            to_number: to.as_str().to_owned(),
            callback_sip_uri: Some(callback),
            status: CallStatus::Initiated.as_str().into(),
            created_at: now,
            handed_at: None,
            started_at: None,
            answered_at: None,
            ended_at: None,
            duration_sec: None,
            hangup_cause: None,
            telco_ref: None,
            retry_count: 0,
            cost: 0,
            updated_at: now,
        };
        calls::insert(&mut tx, &call).await?;
        outbox::enqueue(&mut tx, JOB_PLACE_CALL, &call.id, now, now).await?;
        self.audit(
            &mut tx,
            &actor,
            "call_placed",
            subject(&call),
            json!({"to": to.masked(), "call_per_min_eur": ami_core::money::to_json(self.call_price(to.as_str()))}),
        )
        .await?;
        ami_store::commit(tx).await?;
        self.dispatch_wakeup.notify_one();
        Ok(CallView::from(call))
    }

    /// A placement a §6 limit refuses: recorded (`call_blocked`, `limit.blocked`) and nothing
    /// else: no call, no reservation, no carrier. Returns the 429 to answer.
    async fn refuse_call(
        &self,
        mut tx: ami_store::Tx,
        agent: &AgentCaller,
        to: &E164,
        reason: &str,
        retry_after: Option<u64>,
    ) -> Result<Error> {
        let actor = Actor::Agent {
            mid_id: agent.mid_id.to_string(),
        };
        self.audit(
            &mut tx,
            &actor,
            "call_blocked",
            crate::mids::mid_subject(agent.account_id.as_str(), agent.mid_id.as_str()),
            json!({"reason": reason, "to": to.masked()}),
        )
        .await?;
        let blocked = Emission::limit_blocked(
            agent.account_id.as_str(),
            agent.mid_id.as_str(),
            "call",
            reason,
            &to.masked(),
            retry_after,
        );
        self.emit_one(&mut tx, blocked).await?;
        ami_store::commit(tx).await?;
        Ok(limit_refusal(reason, agent.mid_id.as_str(), retry_after))
    }

    pub async fn list_calls(
        &self,
        agent: &AgentCaller,
        direction: Option<&str>,
        page: &PageRequest,
    ) -> Result<CallList> {
        if let Some(d) = direction
            && d != "outbound"
            && d != "inbound"
        {
            return Err(Error::invalid(
                "direction",
                "direction must be outbound or inbound",
            ));
        }
        let mut conn = self.store.reader().await?;
        let p = calls::list(
            &mut conn,
            &agent.account_id,
            agent.mid_id.as_str(),
            direction,
            page,
        )
        .await?;
        let items: Vec<CallView> = p.items.into_iter().map(CallView::from).collect();
        Ok(CallList {
            count: items.len(),
            calls: items,
            next_cursor: p.next_cursor,
        })
    }

    pub async fn get_call(&self, agent: &AgentCaller, id: &str) -> Result<CallView> {
        validate::id("call", "call", id)?;
        let mut conn = self.store.reader().await?;
        calls::get(&mut conn, &agent.account_id, agent.mid_id.as_str(), id)
            .await?
            .map(CallView::from)
            .ok_or_else(|| Error::not_found("call"))
    }

    /// The agent hangs up: before the answer the call is `cancelled`, after it `completed`
    /// with `hangup_cause: "hangup_by_agent"`. A call that already ended is returned as it is.
    /// Allowed whatever the MID's state: stopping traffic is never refused.
    pub async fn hang_up_call(&self, agent: &AgentCaller, id: &str) -> Result<CallView> {
        validate::id("call", "call", id)?;
        let mut tx = self.store.begin().await?;
        let mut call = calls::lock_scoped(
            &mut tx,
            self.store.engine(),
            &agent.account_id,
            agent.mid_id.as_str(),
            id,
        )
        .await?
        .ok_or_else(|| Error::not_found("call"))?;
        if status_of(&call).is_terminal() {
            drop(tx);
            return Ok(CallView::from(call));
        }
        let actor = Actor::Agent {
            mid_id: agent.mid_id.to_string(),
        };
        self.end_call(&mut tx, &actor, &mut call, HANGUP_BY_AGENT)
            .await?;
        ami_store::commit(tx).await?;
        self.dispatch_wakeup.notify_one();
        Ok(CallView::from(call))
    }

    /// A call status reported by the network (the carrier's event stream or the telco
    /// callback). Statuses only move forward (§3.5); a report that would move a call
    /// backwards, or that names another attempt's carrier reference, is audited
    /// (`call_status_ignored`) and ignored: `applied` is false and the call is unchanged.
    pub async fn apply_call_status(
        &self,
        actor: &Actor,
        call_id: &str,
        status: CallStatus,
        telco_ref: Option<&str>,
        hangup_cause: Option<&str>,
    ) -> Result<CallStatusOutcome> {
        let now = self.now();
        let cause = hangup_cause.and_then(clean_cause);
        let telco_ref = telco_ref.filter(|r| !r.is_empty());
        let mut tx = self.store.begin().await?;
        let mut call =
            ami_store::system::calls::lock(self.system(), &mut tx, self.store.engine(), call_id)
                .await?
                .ok_or_else(|| Error::not_found("call"))?;
        let from = status_of(&call);
        let other_attempt = matches!((telco_ref, call.telco_ref.as_deref()), (Some(theirs), Some(ours)) if theirs != ours);
        if !other_attempt && from == status {
            return Ok(CallStatusOutcome {
                call: CallView::from(call),
                from,
                applied: false,
                repeated: true,
            });
        }
        if other_attempt || !from.can_become(status) {
            self.audit(
                &mut tx,
                actor,
                "call_status_ignored",
                subject(&call),
                json!({"from": from.as_str(), "reported": status.as_str(), "telco_ref": telco_ref,
                       "other_attempt": other_attempt}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Ok(CallStatusOutcome {
                call: CallView::from(call),
                from,
                applied: false,
                repeated: false,
            });
        }
        if call.telco_ref.is_none() {
            call.telco_ref = telco_ref.map(str::to_owned);
        }
        let outbound = call.direction == "outbound";
        let retry = u32::try_from(call.retry_count + 1).unwrap_or(u32::MAX);
        match status {
            CallStatus::Ringing | CallStatus::InProgress => {
                call.status = status.as_str().into();
                call.started_at = call.started_at.or(Some(now));
                if status == CallStatus::InProgress {
                    call.answered_at = Some(now);
                    if outbound {
                        // The first check runs at once: can the budget pay the first minute?
                        outbox::enqueue(&mut tx, JOB_CALL_BUDGET_CHECK, &call.id, now, now).await?;
                    }
                }
                call.updated_at = now;
                ami_store::system::calls::save(self.system(), &mut tx, &call).await?;
                self.audit(
                    &mut tx,
                    actor,
                    audit_action(status),
                    subject(&call),
                    json!({"from": from.as_str(), "to": status.as_str()}),
                )
                .await?;
            }
            CallStatus::Failed | CallStatus::NoAnswer | CallStatus::Busy
                if outbound
                    && status.retryable(call.answered_at.is_some())
                    && retry <= delivery::CALL_MAX_RETRIES
                    && delivery::call_retry_delay_ms(retry).is_some() =>
            {
                self.schedule_retry(&mut tx, actor, &mut call, status, cause.as_deref())
                    .await?;
            }
            CallStatus::Completed
            | CallStatus::Failed
            | CallStatus::NoAnswer
            | CallStatus::Busy
            | CallStatus::Cancelled => {
                outbox::forget(&mut tx, &call.id).await?;
                let cause = cause.unwrap_or_else(|| status.as_str().to_owned());
                self.settle(&mut tx, actor, &mut call, status, &cause)
                    .await?;
            }
            // No status leads back to `initiated` (`can_become` refused it above).
            CallStatus::Initiated => {}
        }
        ami_store::commit(tx).await?;
        self.dispatch_wakeup.notify_one();
        Ok(CallStatusOutcome {
            call: CallView::from(call),
            from,
            applied: true,
            repeated: false,
        })
    }

    /// Ends a live call on our side (agent hang-up, kill-switch, budget): `cancelled` before
    /// the answer, `completed` and charged after it. If the carrier has (or may have) the
    /// call, a hang-up job asks it to drop the line. The caller holds the call's row lock.
    pub(crate) async fn end_call(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        call: &mut calls::Call,
        cause: &str,
    ) -> Result<()> {
        let now = self.now();
        let handed = call.handed_at.is_some() || call.telco_ref.is_some();
        // Pending placements and budget checks of this call are moot now. A placement the
        // dispatcher is running right now finds the call ended and hangs it up itself.
        outbox::forget(&mut *conn, &call.id).await?;
        let to = if status_of(call) == CallStatus::InProgress {
            CallStatus::Completed
        } else {
            CallStatus::Cancelled
        };
        self.settle(conn, actor, call, to, cause).await?;
        if handed {
            outbox::enqueue(conn, JOB_HANG_UP, &call.id, now, now).await?;
        }
        Ok(())
    }

    /// Moves a call to a terminal status, charges the started minutes of an answered
    /// outbound call, and audits it.
    async fn settle(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        call: &mut calls::Call,
        to: CallStatus,
        cause: &str,
    ) -> Result<()> {
        let now = self.now();
        let from = status_of(call);
        let secs = call.answered_at.map_or(0, |a| elapsed_secs(a, now));
        let minutes = delivery::billable_minutes(secs);
        let cost = if call.direction == "outbound" {
            minutes.saturating_mul(self.call_price(&call.to_number))
        } else {
            0
        };
        if call.direction == "outbound" && (cost > 0 || secs > 0) {
            let current = usage::lock(
                &mut *conn,
                &self.row_account(&call.account_id),
                &call.mid_id,
            )
            .await?;
            usage::save(
                &mut *conn,
                &self.row_account(&call.account_id),
                &call.mid_id,
                &policy::charge(&current, now, cost, secs),
            )
            .await?;
        }
        call.status = to.as_str().into();
        call.ended_at = Some(now);
        call.duration_sec = Some(secs);
        call.hangup_cause = Some(cause.to_owned());
        call.cost = cost;
        call.updated_at = now;
        ami_store::system::calls::save(self.system(), conn, call).await?;
        self.audit(
            &mut *conn,
            actor,
            audit_action(to),
            subject(call),
            json!({"from": from.as_str(), "to": to.as_str(), "hangup_cause": cause,
                   "duration_sec": secs, "minutes": minutes,
                   "cost_eur": ami_core::money::to_json(cost), "retry_count": call.retry_count}),
        )
        .await?;
        // Every call that ends is announced once: completed, or failed (which includes
        // no answer, busy and cancelled; `data.status` tells them apart).
        let event = if to == CallStatus::Completed {
            WebhookEvent::CallCompleted
        } else {
            WebhookEvent::CallFailed
        };
        self.emit_one(conn, Emission::call(event, call)).await?;
        Ok(())
    }

    /// An attempt that failed before the answer, or was not answered: the call waits for its
    /// next attempt in `initiated`, placed again after the §3.5 backoff.
    async fn schedule_retry(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        call: &mut calls::Call,
        outcome: CallStatus,
        cause: Option<&str>,
    ) -> Result<i64> {
        let now = self.now();
        let from = status_of(call);
        let retry = call.retry_count + 1;
        let delay =
            delivery::call_retry_delay_ms(u32::try_from(retry).unwrap_or(u32::MAX)).unwrap_or(0);
        outbox::forget(&mut *conn, &call.id).await?;
        call.status = CallStatus::Initiated.as_str().into();
        call.retry_count = retry;
        call.handed_at = None;
        call.telco_ref = None;
        call.started_at = None;
        call.hangup_cause = None;
        call.updated_at = now;
        ami_store::system::calls::save(self.system(), conn, call).await?;
        outbox::enqueue(conn, JOB_PLACE_CALL, &call.id, now + delay, now).await?;
        self.audit(
            conn,
            actor,
            "call_retry_scheduled",
            subject(call),
            json!({"from": from.as_str(), "outcome": outcome.as_str(), "cause": cause,
                   "retry": retry, "delay_ms": delay}),
        )
        .await?;
        Ok(delay)
    }

    /// Ends the live calls a kill-switch covers, locked by the caller: calls not yet handed to
    /// the carrier are cancelled, the others are ended and hung up. Returns how many.
    pub(crate) async fn end_calls(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        live: &[calls::Call],
    ) -> Result<usize> {
        for mut call in live.iter().cloned() {
            self.end_call(conn, actor, &mut call, KILL_SWITCH).await?;
        }
        Ok(live.len())
    }

    /// Dispatch job `call_place`: hands the call's current attempt to the carrier.
    pub(crate) async fn run_place_call(
        &self,
        carrier: &dyn Carrier,
        job: &outbox::Job,
    ) -> Result<()> {
        let mut conn = self.store.reader().await?;
        let Some(call) =
            ami_store::system::calls::by_id(self.system(), &mut conn, &job.ref_id).await?
        else {
            drop(conn);
            return self.close_job(&job.id).await;
        };
        // Already handed off (a crash after the hand-off, before the job was closed) or no
        // longer waiting (ended by the agent or a kill-switch): nothing to place.
        if call.handed_at.is_some() || status_of(&call) != CallStatus::Initiated {
            drop(conn);
            return self.close_job(&job.id).await;
        }
        let account = self.row_account(&call.account_id);
        let killed = kill_switches::covering(&mut conn, &account, &call.mid_id)
            .await?
            .is_some();
        // The agent hears the call on its voice URL, when the MID has one.
        let stored = ami_store::voice_configs::get(&mut conn, &account, &call.mid_id).await?;
        let agent = self
            .opened_voice_config(stored)?
            .and_then(|v| Some((v.voice_url?, v.signing_secret?)))
            .map(|(voice_url, signing_secret)| ami_carrier::AgentStream {
                voice_url,
                signing_secret,
                account_id: call.account_id.clone(),
                mid_id: call.mid_id.clone(),
            });
        drop(conn);
        if killed {
            let mut tx = self.store.begin().await?;
            if let Some(mut current) = ami_store::system::calls::lock(
                self.system(),
                &mut tx,
                self.store.engine(),
                &call.id,
            )
            .await?
                && !status_of(&current).is_terminal()
            {
                self.end_call(&mut tx, &Actor::System, &mut current, KILL_SWITCH)
                    .await?;
            }
            outbox::done(&mut tx, &job.id).await?;
            ami_store::commit(tx).await?;
            self.dispatch_wakeup.notify_one();
            return Ok(());
        }
        let looks_up = carrier.looks_up();
        // An earlier holder may have placed it: the carrier says whether it did.
        let settled = if job.maybe_started(looks_up) {
            let lookup = if looks_up {
                self.within_timeout(carrier.find_call(&call.id))
                    .await
                    .unwrap_or(Lookup::Unknown)
            } else {
                Lookup::Unknown
            };
            match lookup {
                Lookup::Found(telco_ref) => Some(Ok(telco_ref)),
                Lookup::NotFound => None,
                Lookup::Unknown => Some(Err(SubmitError::Unknown(
                    "an earlier attempt's outcome is unknown".into(),
                ))),
            }
        } else {
            None
        };
        let outcome = match settled {
            Some(outcome) => outcome,
            None => {
                if !self
                    .prepare_attempts(carrier, &[job])
                    .await?
                    .contains(&job.id)
                {
                    // Another worker holds it now.
                    return Ok(());
                }
                let placing = carrier.place_call(OutboundCall {
                    id: call.id.clone(),
                    from: call.from_number.clone(),
                    to: call.to_number.clone(),
                    callback_sip_uri: call.callback_sip_uri.clone().unwrap_or_default(),
                    agent,
                });
                self.within_timeout(placing).await.unwrap_or_else(|| {
                    Err(SubmitError::Unknown(
                        "the carrier did not answer in time".into(),
                    ))
                })
            }
        };
        let now = self.now();
        let mut tx = self.store.begin().await?;
        if !outbox::held(&mut tx, &[job]).await?.contains(&job.id) {
            tracing::warn!(job = %job.id, "lease lost while the carrier placed the call; its next holder settles it");
            return ami_store::commit(tx).await.map_err(Into::into);
        }
        let Some(mut current) =
            ami_store::system::calls::lock(self.system(), &mut tx, self.store.engine(), &call.id)
                .await?
        else {
            outbox::done(&mut tx, &job.id).await?;
            return ami_store::commit(tx).await.map_err(Into::into);
        };
        let same_attempt = current.retry_count == call.retry_count;
        let waiting = same_attempt && status_of(&current) == CallStatus::Initiated;
        let mut wake = false;
        match outcome {
            Ok(telco_ref) if same_attempt && !status_of(&current).is_terminal() => {
                current.handed_at = Some(now);
                // An early event may have named the call already; the reference is the same.
                if current.telco_ref.is_none() {
                    current.telco_ref = Some(telco_ref);
                }
                current.updated_at = now;
                ami_store::system::calls::save(self.system(), &mut tx, &current).await?;
            }
            Ok(telco_ref) => {
                if same_attempt {
                    // Ended (agent hang-up, kill-switch) while the carrier was placing it:
                    // the line the carrier just opened is dropped at once.
                    if current.telco_ref.is_none() {
                        current.telco_ref = Some(telco_ref);
                        ami_store::system::calls::save(self.system(), &mut tx, &current).await?;
                    }
                    outbox::enqueue(&mut tx, JOB_HANG_UP, &current.id, now, now).await?;
                    wake = true;
                }
                // Otherwise the attempt was already reported over and a new one is scheduled.
            }
            Err(SubmitError::Rejected(why)) if waiting => {
                // Refused for good (bad destination, barred): no retry helps.
                let cause = clean_cause(&why).unwrap_or_else(|| "rejected_by_carrier".into());
                self.settle(
                    &mut tx,
                    &Actor::System,
                    &mut current,
                    CallStatus::Failed,
                    &cause,
                )
                .await?;
            }
            Err(SubmitError::Unavailable(why)) if waiting => {
                let retry = u32::try_from(current.retry_count + 1).unwrap_or(u32::MAX);
                if retry <= delivery::CALL_MAX_RETRIES
                    && delivery::call_retry_delay_ms(retry).is_some()
                {
                    // schedule_retry replaces this job with the next attempt's.
                    self.schedule_retry(
                        &mut tx,
                        &Actor::System,
                        &mut current,
                        CallStatus::Failed,
                        clean_cause(&why).as_deref(),
                    )
                    .await?;
                } else {
                    self.settle(
                        &mut tx,
                        &Actor::System,
                        &mut current,
                        CallStatus::Failed,
                        "carrier_unavailable",
                    )
                    .await?;
                }
            }
            Err(SubmitError::Unknown(_)) if waiting && looks_up => {
                // Asked again shortly: the carrier will say whether it placed it.
                outbox::reschedule(&mut tx, &job.id, now + LOOKUP_AFTER_MS).await?;
                return ami_store::commit(tx).await.map_err(Into::into);
            }
            Err(SubmitError::Unknown(_)) if waiting => {
                // Never placed twice: a call the carrier cannot account for has failed.
                self.settle(
                    &mut tx,
                    &Actor::System,
                    &mut current,
                    CallStatus::Failed,
                    OUTCOME_UNKNOWN,
                )
                .await?;
            }
            Err(_) => {}
        }
        outbox::done(&mut tx, &job.id).await?;
        ami_store::commit(tx).await?;
        if wake {
            self.dispatch_wakeup.notify_one();
        }
        Ok(())
    }

    /// Dispatch job `call_hang_up`: asks the carrier to drop a call we ended.
    pub(crate) async fn run_hang_up(&self, carrier: &dyn Carrier, job: &outbox::Job) -> Result<()> {
        let mut conn = self.store.reader().await?;
        let telco_ref = ami_store::system::calls::by_id(self.system(), &mut conn, &job.ref_id)
            .await?
            .and_then(|c| c.telco_ref);
        drop(conn);
        let Some(telco_ref) = telco_ref else {
            return self.close_job(&job.id).await;
        };
        let outcome = self
            .within_timeout(carrier.hang_up(telco_ref))
            .await
            .unwrap_or_else(|| {
                Err(SubmitError::Unknown(
                    "the carrier did not answer in time".into(),
                ))
            });
        match outcome {
            // Rejected: the carrier no longer has the call, which is what we wanted.
            Ok(()) | Err(SubmitError::Rejected(_)) => self.close_job(&job.id).await,
            // Asking again is harmless: a hang-up may reach the carrier more than once.
            Err(
                SubmitError::Unavailable(why) | SubmitError::Unknown(why) | SubmitError::Down(why),
            ) if job.attempts < HANG_UP_ATTEMPTS => {
                let delay = 1000_i64 << job.attempts.clamp(1, 10);
                tracing::warn!(call = %job.ref_id, error = %why, "hang-up not delivered; retrying");
                let mut tx = self.store.begin().await?;
                outbox::reschedule(&mut tx, &job.id, self.now() + delay).await?;
                ami_store::commit(tx).await.map_err(Into::into)
            }
            Err(
                SubmitError::Unavailable(why) | SubmitError::Unknown(why) | SubmitError::Down(why),
            ) => {
                tracing::error!(call = %job.ref_id, error = %why, "hang-up never delivered; giving up");
                self.close_job(&job.id).await
            }
        }
    }

    /// Dispatch job `call_budget_check`: a running call whose next minute would cross the
    /// MID's monthly budget is ended now (`hangup_cause: "budget_exhausted"`), as is one that
    /// has lasted the longest call allowed (`"max_duration"`); otherwise the check comes back
    /// shortly before the next minute starts, or when the longest call ends. Calls are charged when they end,
    /// so the spend read here holds what has ended, not other calls running at the same time.
    pub(crate) async fn run_call_budget_check(&self, job: &outbox::Job) -> Result<()> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let call = ami_store::system::calls::lock(
            self.system(),
            &mut tx,
            self.store.engine(),
            &job.ref_id,
        )
        .await?;
        let Some((mut call, answered_at)) = call
            .filter(|c| status_of(c) == CallStatus::InProgress)
            .and_then(|c| c.answered_at.map(|a| (c, a)))
        else {
            outbox::done(&mut tx, &job.id).await?;
            return ami_store::commit(tx).await.map_err(Into::into);
        };
        let Some(mid) =
            ami_store::system::mids::by_id(self.system(), &mut tx, &call.mid_id).await?
        else {
            outbox::done(&mut tx, &job.id).await?;
            return ami_store::commit(tx).await.map_err(Into::into);
        };
        let limits = crate::mids::stored_limits(&mid)?;
        let current =
            usage::lock(&mut tx, &self.row_account(&call.account_id), &call.mid_id).await?;
        let spent = policy::rolled(&current, now).spend_month;
        let started = delivery::billable_minutes(elapsed_secs(answered_at, now));
        let price = self.call_price(&call.to_number);
        let with_next_minute =
            spent.saturating_add(started.saturating_add(1).saturating_mul(price));
        let longest_end = answered_at.saturating_add(self.settings.max_call_ms);
        let cause = if with_next_minute > limits.monthly_budget {
            Some(BUDGET_EXHAUSTED)
        } else if now >= longest_end {
            Some(MAX_DURATION)
        } else {
            None
        };
        let ended = cause.is_some();
        if let Some(cause) = cause {
            self.end_call(&mut tx, &Actor::System, &mut call, cause)
                .await?;
        } else {
            let next_minute = answered_at.saturating_add((started + 1).saturating_mul(MINUTE_MS));
            let due = (next_minute - BUDGET_CHECK_LEAD_MS)
                .min(longest_end)
                .max(now + 1000);
            outbox::reschedule(&mut tx, &job.id, due).await?;
        }
        ami_store::commit(tx).await?;
        if ended {
            self.dispatch_wakeup.notify_one();
        }
        Ok(())
    }

    async fn close_job(&self, id: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        outbox::done(&mut tx, id).await?;
        ami_store::commit(tx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_seconds_round_up() {
        assert_eq!(elapsed_secs(1_000, 1_000), 0);
        assert_eq!(elapsed_secs(1_000, 900), 0);
        assert_eq!(elapsed_secs(0, 1), 1);
        assert_eq!(elapsed_secs(0, 1_000), 1);
        assert_eq!(elapsed_secs(0, 1_001), 2);
        assert_eq!(elapsed_secs(0, 60_000), 60);
    }

    #[test]
    fn carrier_causes_are_kept_short_and_single_line() {
        assert_eq!(
            clean_cause("  normal_clearing \n"),
            Some("normal_clearing".into())
        );
        assert_eq!(clean_cause("a\r\nb"), Some("ab".into()));
        assert_eq!(clean_cause(" \t "), None);
        assert_eq!(
            clean_cause(&"x".repeat(1000)).map(|s| s.chars().count()),
            Some(MAX_CAUSE_CHARS)
        );
    }
}
