//! `POST /v1/agent/policy/check`: what a send or a call made now would get, without
//! reserving or sending anything. It runs the send path's own steps (validation, the MID's
//! gate, the kill-switch, the §6 decision) under the same lock, and writes nothing but its
//! audit event: the counters the decision would leave are dropped.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use ami_core::limits::Limits;
use ami_core::policy::{self, DestinationUsage, Kind, Usage};
use ami_store::{kill_switches, mids, usage};

use crate::auth::{Actor, AgentCaller};
use crate::calls::{call_decision, callable};
use crate::sms::{kill_switch_refusal, limit_refusal, max_price};
use crate::sms_send::{Gate, Judgement, judge};
use crate::{Error, Result, Services};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCheck {
    /// `sms` or `call`.
    #[schema(value_type = String, required = true, pattern = "^(sms|call)$")]
    pub channel: Option<String>,
    /// The destination, as a send or call would name it.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub to: Option<String>,
    /// The SMS text (channel `sms` only; required there): it decides the cost.
    pub body: Option<String>,
    /// As on a send (channel `sms` only): a message that would cost more is refused.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_price_eur: Option<f64>,
}

/// A counter of the current window against its limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct Window {
    pub used: i64,
    pub limit: i64,
    pub remaining: i64,
}

impl Window {
    fn of(used: i64, limit: i64) -> Window {
        Window {
            used,
            limit,
            remaining: (limit - used).max(0),
        }
    }
}

/// The MID's counters as the decision saw them (windows rolled to now), before the check.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyCounters {
    pub sms_this_hour: Window,
    pub sms_today: Window,
    pub calls_this_hour: Window,
    pub calls_today: Window,
    /// This channel's messages or calls to this destination.
    pub to_this_hour: Window,
    pub to_today: Window,
    #[schema(value_type = f64)]
    pub spent_this_month_eur: Value,
    #[schema(value_type = f64)]
    pub monthly_budget_eur: Value,
    #[schema(value_type = f64)]
    pub remaining_budget_eur: Value,
}

/// What a send (or call) made now would get.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refusal {
    /// The HTTP status the send would answer.
    pub status: u16,
    /// The error body the send would answer: its `error` code, `reason` and `retry_after`
    /// for a limit, `scope` and `kill_switch_id` for a kill-switch.
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVerdict {
    /// `allow` or `refuse`.
    pub verdict: String,
    pub channel: String,
    /// Present when the verdict is `refuse`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
    /// SMS: segments × the price per segment to this destination; call: one started minute.
    #[schema(value_type = f64)]
    pub estimated_cost_eur: Value,
    /// SMS only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// SMS only: `GSM-7` or `UCS-2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Absent when the MID cannot send at all (not found, not active, not contracted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<PolicyCounters>,
}

/// What the check found, before it is rendered.
struct Found {
    refusal: Option<Error>,
    limits: Option<Limits>,
    usage: Usage,
    destination: DestinationUsage,
}

impl Services {
    /// Answers what a send or a call made now would get. Input errors are the send's own
    /// (`invalid_to`, `empty_body`, …) and are answered as errors; a refusal the send would
    /// answer after validation is the verdict `refuse`, with that refusal.
    pub async fn check_policy(
        &self,
        agent: &AgentCaller,
        input: PolicyCheck,
    ) -> Result<PolicyVerdict> {
        let channel = match input.channel.as_deref() {
            Some("sms") => Kind::Sms,
            Some("call") => Kind::Call,
            _ => return Err(Error::invalid("channel", "channel must be sms or call")),
        };
        match channel {
            Kind::Sms => self.check_sms(agent, input).await,
            Kind::Call => {
                if input.body.is_some() || input.max_price_eur.is_some() {
                    return Err(Error::invalid(
                        "channel",
                        "body and max_price_eur belong to channel sms",
                    ));
                }
                self.check_call(agent, input.to.as_deref()).await
            }
        }
    }

    async fn check_sms(&self, agent: &AgentCaller, input: PolicyCheck) -> Result<PolicyVerdict> {
        let max_price = max_price(input.max_price_eur)?;
        let mut job = self.prepare_sms(agent, input.to.as_deref(), input.body)?;
        job.max_price = max_price;
        let mut tx = self.store.begin_write().await?;
        let mut db = tx.db();
        let now = self.now();
        let gates = self.gates(&mut db, std::slice::from_ref(&job)).await?;
        let gate = gates.get(&job.mid_id).unwrap_or(&Gate::Missing);
        let refusal = match judge(gate, &job, now) {
            Judgement::Refused { error, .. } => Some(error),
            Judgement::Allowed { .. } => None,
        };
        let found = match gate {
            Gate::Open(open) => Found {
                refusal,
                limits: Some(open.limits.clone()),
                usage: open.usage.clone(),
                destination: open
                    .destinations
                    .get(job.to.as_str())
                    .cloned()
                    .unwrap_or_default(),
            },
            Gate::Killed(_) => {
                // The gate stops before the counters: read them for the answer.
                let pair = [(&job.account_id, job.mid_id.as_str())];
                let mid = mids::get_many(&mut db, &pair).await?.pop();
                let limits = mid.as_ref().map(crate::mids::stored_limits).transpose()?;
                let counters = usage::lock(&mut db, &job.account_id, &job.mid_id).await?;
                let pair = [(job.mid_id.as_str(), job.to.as_str())];
                let mut dest = usage::destinations(&mut db, Kind::Sms, &pair).await?;
                Found {
                    refusal,
                    limits,
                    usage: counters,
                    destination: dest
                        .remove(&(job.mid_id.clone(), job.to.as_str().to_owned()))
                        .unwrap_or_default(),
                }
            }
            _ => Found {
                refusal,
                limits: None,
                usage: Usage::default(),
                destination: DestinationUsage::default(),
            },
        };
        let verdict = render(Kind::Sms, found, job.cost, now);
        let verdict = PolicyVerdict {
            segments: Some(job.seg.segments),
            encoding: Some(job.seg.encoding.as_str().to_owned()),
            ..verdict
        };
        self.audit_check(&mut db, agent, &verdict, &job.to_masked)
            .await?;
        tx.commit().await?;
        Ok(verdict)
    }

    async fn check_call(&self, agent: &AgentCaller, to: Option<&str>) -> Result<PolicyVerdict> {
        let (to, prefix) = crate::sms::parse_destination("to", to)?;
        let price = self.call_price(to.as_str());
        let mut tx = self.store.begin().await?;
        let now = self.now();
        let mid_id = agent.mid_id.as_str();
        let mid = mids::get(&mut tx, &agent.account_id, mid_id).await?;
        let found = match callable(mid) {
            Err(e) => Found {
                refusal: Some(e),
                limits: None,
                usage: Usage::default(),
                destination: DestinationUsage::default(),
            },
            Ok(mid) => {
                let killed = kill_switches::covering(&mut tx, &agent.account_id, mid_id).await?;
                let limits = crate::mids::stored_limits(&mid)?;
                let current = usage::lock(&mut tx, &agent.account_id, mid_id).await?;
                let dest = usage::destination(&mut tx, mid_id, Kind::Call, to.as_str()).await?;
                let refusal = match killed {
                    Some(k) => Some(kill_switch_refusal(&k)),
                    None => call_decision(&limits, &current, &dest, &prefix, price, now)
                        .err()
                        .map(|(reason, retry)| limit_refusal(reason, mid_id, retry)),
                };
                Found {
                    refusal,
                    limits: Some(limits),
                    usage: current,
                    destination: dest,
                }
            }
        };
        let verdict = render(Kind::Call, found, price, now);
        self.audit_check(&mut tx, agent, &verdict, &to.masked())
            .await?;
        ami_store::commit(tx).await?;
        Ok(verdict)
    }

    /// `policy_checked`: the verdict and its code, the masked destination.
    async fn audit_check(
        &self,
        db: impl Into<ami_store::Db<'_>>,
        agent: &AgentCaller,
        verdict: &PolicyVerdict,
        to_masked: &str,
    ) -> Result<()> {
        let code = verdict
            .refusal
            .as_ref()
            .and_then(|r| r.body.get("error").cloned());
        self.audit(
            db,
            &Actor::Agent {
                mid_id: agent.mid_id.to_string(),
            },
            "policy_checked",
            crate::mids::mid_subject(agent.account_id.as_str(), agent.mid_id.as_str()),
            json!({"channel": verdict.channel, "to": to_masked, "verdict": verdict.verdict,
                   "error": code}),
        )
        .await?;
        Ok(())
    }
}

fn render(kind: Kind, found: Found, cost: i64, now: i64) -> PolicyVerdict {
    let money = ami_core::money::to_json;
    let counters = found.limits.map(|l| {
        let u = policy::rolled(&found.usage, now);
        let d = policy::rolled_destination(&found.destination, now);
        let (to_hour, to_day) = match kind {
            Kind::Sms => (
                l.sms_per_destination_per_hour,
                l.sms_per_destination_per_day,
            ),
            Kind::Call => (
                l.calls_per_destination_per_hour,
                l.calls_per_destination_per_day,
            ),
        };
        PolicyCounters {
            sms_this_hour: Window::of(u.sms_hour, l.sms_per_hour),
            sms_today: Window::of(u.sms_day, l.sms_per_day),
            calls_this_hour: Window::of(u.calls_hour, l.calls_per_hour),
            calls_today: Window::of(u.calls_day, l.calls_per_day),
            to_this_hour: Window::of(d.hour_count, to_hour),
            to_today: Window::of(d.day_count, to_day),
            spent_this_month_eur: money(u.spend_month),
            monthly_budget_eur: money(l.monthly_budget),
            remaining_budget_eur: money((l.monthly_budget - u.spend_month).max(0)),
        }
    });
    let refusal = found.refusal.map(|e| Refusal {
        status: e.status(),
        body: e.body(),
    });
    PolicyVerdict {
        verdict: if refusal.is_some() { "refuse" } else { "allow" }.into(),
        channel: match kind {
            Kind::Sms => "sms",
            Kind::Call => "call",
        }
        .into(),
        refusal,
        estimated_cost_eur: money(cost),
        segments: None,
        encoding: None,
        counters,
    }
}
