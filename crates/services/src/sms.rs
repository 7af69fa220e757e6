//! Agent SMS (PROTOCOL §3.5): send with the §6 policy checked and reserved in the same
//! transaction as the message, its audit event and its dispatch job; delivery reports that
//! never move a status backwards.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use ami_core::delivery::SmsStatus;
use ami_core::phone::E164;
use ami_core::policy;
use ami_core::sms::{self, BodyError};
use ami_core::webhook_event::WebhookEvent;
use ami_store::page::PageRequest;
use ami_store::{AccountId, Batch, Conn, Db, kill_switches, messages, usage};

use crate::audit_log::{PendingEvent, push_events};
use crate::auth::{Actor, AgentCaller};
use crate::memo::Memo;
use crate::sms_send::{GROUP_MAX, SendJob};
use crate::webhooks::Emission;
use crate::{Error, Result, Services, validate};

pub const JOB_SUBMIT_SMS: &str = "sms_submit";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    /// E.164; spaces, hyphens, dots and parentheses are removed first. The number must be
    /// valid in its country's numbering plan (length and ranges), else `invalid_to`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub to: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub body: Option<String>,
    /// The most this message may cost, in EUR (0 to 1000). A message that would cost more
    /// is refused with `422 over_max_price` and nothing is reserved or sent.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_price_eur: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsView {
    pub id: String,
    pub mid: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub segments: i64,
    /// `GSM-7` or `UCS-2`.
    pub encoding: String,
    #[schema(value_type = f64)]
    pub cost_eur: serde_json::Value,
    /// `queued`, `sent`, `delivered`, `failed`, `cancelled` or `received`.
    pub status: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    pub telco_ref: Option<String>,
    pub retry_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<messages::Message> for SmsView {
    fn from(m: messages::Message) -> Self {
        let ts = ami_core::time::rfc3339;
        Self {
            id: m.id,
            mid: m.mid_id,
            direction: m.direction,
            from: m.from_number,
            to: m.to_number,
            body: m.body,
            segments: m.segments,
            encoding: m.encoding,
            cost_eur: ami_core::money::to_json(m.cost),
            status: m.status,
            created_at: ts(m.created_at),
            sent_at: m.sent_at.map(ts),
            delivered_at: m.delivered_at.map(ts),
            telco_ref: m.telco_ref,
            retry_count: m.retry_count,
            error: m.error,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsList {
    pub messages: Vec<SmsView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

/// One delivery report of an SMS.
#[derive(Debug, Clone)]
pub struct SmsReport {
    pub msg_id: String,
    pub status: SmsStatus,
    pub telco_ref: Option<String>,
    pub error: Option<String>,
}

/// What a successful send also reports: the room left (extension headers).
pub struct Sent {
    pub sms: SmsView,
    pub remaining_budget_eur: serde_json::Value,
    pub remaining_sms_this_hour: i64,
}

/// A destination of a send or a call: E.164, and a number the numbering plan accepts in
/// full, or `400 invalid_<field>` before anything is reserved, audited or queued. The plan's
/// answer is kept per number (it is a pure function of it), so a destination is checked
/// once, and what it found (the country) comes with the number for free afterwards.
pub(crate) fn parse_destination(field: &str, raw: Option<&str>) -> Result<(E164, String)> {
    static CHECKED: LazyLock<Memo<Option<E164>>> = LazyLock::new(|| Memo::new(8192));
    let parsed = E164::parse(raw.unwrap_or_default())
        .map_err(|_| Error::invalid(field, format!("{field} must be an E.164 number")))?;
    let to = CHECKED
        .get_or_insert(parsed.as_str(), || {
            parsed.is_valid().then(|| parsed.clone())
        })
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("{field} is not a valid number in its country's numbering plan"),
            )
        })?;
    let prefix = to
        .calling_prefix()
        .ok_or_else(|| Error::invalid(field, format!("{field} has no country calling code")))?;
    Ok((to, prefix))
}

impl Services {
    /// The price of one SMS segment to this number's country, from the catalogue (the
    /// highest catalogue price for a country it does not list).
    pub(crate) fn sms_price(&self, to: &E164) -> i64 {
        let iso = to.country().and_then(|c| c.iso);
        let countries = &self.settings.countries;
        countries
            .iter()
            .find(|c| Some(&c.code) == iso.as_ref())
            .map(|c| c.sms_price_eur)
            .unwrap_or_else(|| countries.iter().map(|c| c.sms_price_eur).max().unwrap_or(0))
    }

    /// Refuses when a kill-switch covers the MID: the agent must stop, not retry.
    pub(crate) async fn check_kill_switch(
        &self,
        conn: &mut Conn,
        account_id: &AccountId,
        mid_id: &str,
    ) -> Result<()> {
        match kill_switches::covering(conn, account_id, mid_id).await? {
            None => Ok(()),
            Some(k) => Err(kill_switch_refusal(&k)),
        }
    }

    /// Validates the send, then writes it together with whatever other sends are waiting
    /// (`sms_send`): the §6 policy is checked and reserved, the message, its dispatch job and
    /// its audit event written, all in one transaction.
    pub async fn send_sms(&self, agent: &AgentCaller, input: SendSms) -> Result<Sent> {
        let max_price = max_price(input.max_price_eur)?;
        let mut job = self.prepare_sms(agent, input.to.as_deref(), input.body)?;
        job.max_price = max_price;
        let _answered = self.metrics.time_sms_send();
        let accepted = self
            .sms_sends
            .submit(job, GROUP_MAX, || self.send_writer())
            .await
            .unwrap_or_else(|| Err(Error::refused(500, "internal", "send not answered")))?;
        Ok(Sent {
            sms: SmsView::from(accepted.message),
            remaining_budget_eur: ami_core::money::to_json(accepted.remaining_budget),
            remaining_sms_this_hour: accepted.remaining_sms_this_hour,
        })
    }

    /// Everything a send checks before the policy, in the order it checks it: the
    /// destination, its route, the body; and what the send would cost. The send, the policy
    /// check and the preview all start here.
    pub(crate) fn prepare_sms(
        &self,
        agent: &AgentCaller,
        to: Option<&str>,
        body: Option<String>,
    ) -> Result<SendJob> {
        let (to, prefix) = parse_destination("to", to)?;
        if let Some(routes) = &self.settings.sms_routes
            && !routes.iter().any(|r| to.as_str().starts_with(r.as_str()))
        {
            return Err(Error::refused(
                422,
                "destination_not_routable",
                "no SMS route of this server covers the destination",
            ));
        }
        let body = body.unwrap_or_default();
        sms::validate_body(&body).map_err(|e| match e {
            BodyError::Empty => Error::bad_request("empty_body", "body must not be empty"),
            BodyError::TooLong { max, got } => Error::bad_request(
                "body_too_long",
                format!("body has {got} characters, at most {max}"),
            )
            .with("max", max)
            .with("got", got),
            BodyError::ControlCharacters => {
                Error::invalid("body", "body contains control characters")
            }
        })?;
        let seg = sms::segment(&body);
        let cost = i64::from(seg.segments) * self.sms_price(&to);
        Ok(SendJob {
            account_id: agent.account_id.clone(),
            mid_id: agent.mid_id.to_string(),
            to_masked: to.masked(),
            to,
            prefix,
            body,
            seg,
            cost,
            max_price: None,
        })
    }

    pub async fn list_sms(
        &self,
        agent: &AgentCaller,
        direction: Option<&str>,
        page: &PageRequest,
    ) -> Result<SmsList> {
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
        let p = messages::list(
            &mut conn,
            &agent.account_id,
            agent.mid_id.as_str(),
            direction,
            page,
        )
        .await?;
        let items: Vec<SmsView> = p.items.into_iter().map(SmsView::from).collect();
        Ok(SmsList {
            count: items.len(),
            messages: items,
            next_cursor: p.next_cursor,
        })
    }

    pub async fn get_sms(&self, agent: &AgentCaller, id: &str) -> Result<SmsView> {
        validate::id("msg", "sms", id)?;
        let mut conn = self.store.reader().await?;
        messages::get(&mut conn, &agent.account_id, agent.mid_id.as_str(), id)
            .await?
            .map(SmsView::from)
            .ok_or_else(|| Error::not_found("sms"))
    }

    /// A delivery report, from the carrier's event stream or the telco callback. Statuses only
    /// move forward; a late or repeated report is audited and ignored.
    pub async fn apply_sms_status(
        &self,
        actor: &Actor,
        msg_id: &str,
        status: SmsStatus,
        telco_ref: Option<&str>,
        error: Option<&str>,
    ) -> Result<SmsView> {
        let report = SmsReport {
            msg_id: msg_id.to_owned(),
            status,
            telco_ref: telco_ref.map(str::to_owned),
            error: error.map(str::to_owned),
        };
        let Applied {
            mut messages,
            mut answers,
        } = self
            .apply_reports(actor, std::slice::from_ref(&report))
            .await?;
        match answers.pop() {
            Some(Ok(i)) => Ok(SmsView::from(messages.swap_remove(i))),
            Some(Err(e)) => Err(e),
            None => Err(Error::not_found("sms")),
        }
    }

    /// Many delivery reports in one transaction, applied in their order (a `sent` and a
    /// `delivered` of one message in the same batch both count). A report for a message we
    /// do not know refuses that report alone; returns how many were refused.
    pub async fn apply_sms_statuses(&self, actor: &Actor, reports: &[SmsReport]) -> Result<usize> {
        let applied = self.apply_reports(actor, reports).await?;
        Ok(applied.answers.iter().filter(|a| a.is_err()).count())
    }

    /// Applies `reports` in one transaction. Everything a report's answer needs is built by
    /// the caller after the commit: the write lock is held for the writes alone.
    async fn apply_reports(&self, actor: &Actor, reports: &[SmsReport]) -> Result<Applied> {
        let now = self.now();
        let mut tx = self.store.begin_write().await?;
        let mut db = tx.db();
        let ids: Vec<String> = reports.iter().map(|r| r.msg_id.clone()).collect();
        // Each message as the reports leave it, and what it was before them.
        let mut messages =
            ami_store::system::messages::lock_by_ids(self.system(), &mut db, &ids).await?;
        let before: Vec<Before> = messages.iter().map(Before::of).collect();
        let index: HashMap<String, usize> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        // A failure returns the message's reservation: the usage rows of all of them are
        // locked at once, in order, as the send path locks them.
        let returning: Vec<(AccountId, &str)> = reports
            .iter()
            .filter(|r| r.status == SmsStatus::Failed)
            .filter_map(|r| index.get(&r.msg_id).map(|&i| &messages[i]))
            .map(|m| (self.row_account(&m.account_id), m.mid_id.as_str()))
            .collect();
        let returning: Vec<(&AccountId, &str)> = returning.iter().map(|(a, m)| (a, *m)).collect();
        usage::lock_many(&mut db, &returning).await?;
        let accounts: Vec<&str> = messages.iter().map(|m| m.account_id.as_str()).collect();
        let hearers = self.hearers(&mut db, &accounts).await?;
        let mut answers = Vec::with_capacity(reports.len());
        let mut events = Vec::new();
        let mut changed = vec![false; messages.len()];
        let mut emissions = Vec::new();
        for r in reports {
            let Some(&i) = index.get(&r.msg_id) else {
                answers.push(Err(Error::not_found("sms")));
                continue;
            };
            let m = &mut messages[i];
            let event = |action, data| PendingEvent {
                actor: actor.clone(),
                action,
                account_id: m.account_id.clone(),
                mid_id: Some(m.mid_id.clone()),
                entity_type: "sms",
                entity_id: m.id.clone(),
                data,
            };
            let from = SmsStatus::parse(&m.status).unwrap_or(SmsStatus::Failed);
            answers.push(Ok(i));
            if m.direction != "outbound" || !from.can_become(r.status) {
                events.push(event(
                    "sms_status_ignored",
                    json!({"from": from.as_str(), "reported": r.status.as_str(), "telco_ref": r.telco_ref})
                        .to_string(),
                ));
                continue;
            }
            let action = match r.status {
                SmsStatus::Delivered => "sms_delivered",
                SmsStatus::Failed => "sms_failed",
                _ => "sms_sent",
            };
            // Both values are fixed status names: no escaping needed.
            events.push(event(
                action,
                format!(
                    r#"{{"from":"{}","to":"{}"}}"#,
                    from.as_str(),
                    r.status.as_str()
                ),
            ));
            m.status = r.status.as_str().into();
            m.updated_at = now;
            if r.error.is_some() {
                m.error.clone_from(&r.error);
            }
            if r.status == SmsStatus::Sent
                || (r.status == SmsStatus::Delivered && m.sent_at.is_none())
            {
                m.sent_at = Some(now);
            }
            if r.status == SmsStatus::Delivered {
                m.delivered_at = Some(now);
            }
            if r.status == SmsStatus::Failed {
                // The carrier took nothing: give the reservation back.
                self.release_spend(
                    &mut db,
                    &self.row_account(&m.account_id),
                    &m.mid_id,
                    m.cost,
                    m.created_at,
                )
                .await?;
            }
            changed[i] = true;
            if let Some(event) = outcome_event(r.status)
                && hearers.hear(&m.account_id, &m.mid_id, event)
            {
                emissions.push(Emission::sms(event, m));
            }
        }
        // One statement per kind of change: a batch of reports is mostly one kind.
        let mut changes: Vec<(messages::StatusChange<'_>, Vec<&str>)> = Vec::new();
        for (i, (after, before)) in messages.iter().zip(&before).enumerate() {
            if !changed[i] {
                continue;
            }
            let change = messages::StatusChange {
                expected: &before.status,
                status: &after.status,
                error: if after.error == before.error {
                    None
                } else {
                    after.error.as_deref()
                },
                stamp_sent: after.sent_at != before.sent_at,
                stamp_delivered: after.delivered_at != before.delivered_at,
                now,
            };
            match changes.iter_mut().find(|(c, _)| c.same_as(&change)) {
                Some((_, ids)) => ids.push(&after.id),
                None => changes.push((change, vec![&after.id])),
            }
        }
        let mut writes = Batch::default();
        for (change, ids) in &changes {
            ami_store::system::messages::push_change_status(
                self.system(),
                &mut writes,
                ids,
                change,
            );
        }
        push_events(&mut db, &mut writes, &events, now).await?;
        writes.run(&mut db).await?;
        self.emit_to(&mut db, &hearers, emissions).await?;
        tx.commit().await?;
        Ok(Applied { messages, answers })
    }

    /// Returns reserved money, only within the month it was reserved in.
    pub(crate) async fn release_spend(
        &self,
        db: impl Into<Db<'_>>,
        account_id: &AccountId,
        mid_id: &str,
        amount: i64,
        reserved_at: i64,
    ) -> Result<()> {
        let now = self.now();
        if amount <= 0 || policy::month_start(reserved_at) != policy::month_start(now) {
            return Ok(());
        }
        let mut db = db.into();
        let current = usage::lock(&mut db, account_id, mid_id).await?;
        usage::save(
            db,
            account_id,
            mid_id,
            &policy::charge(&current, now, -amount, 0),
        )
        .await?;
        Ok(())
    }
}

/// What a batch of delivery reports left: the messages they name, and per report the index
/// of its message or its refusal.
struct Applied {
    messages: Vec<messages::Message>,
    answers: Vec<Result<usize>>,
}

/// The fields of a message a status change compares against.
struct Before {
    status: String,
    error: Option<String>,
    sent_at: Option<i64>,
    delivered_at: Option<i64>,
}

impl Before {
    fn of(m: &messages::Message) -> Before {
        Before {
            status: m.status.clone(),
            error: m.error.clone(),
            sent_at: m.sent_at,
            delivered_at: m.delivered_at,
        }
    }
}

/// The webhook event of an outbound SMS reaching a final status.
fn outcome_event(status: SmsStatus) -> Option<WebhookEvent> {
    match status {
        SmsStatus::Delivered => Some(WebhookEvent::SmsDelivered),
        SmsStatus::Failed => Some(WebhookEvent::SmsFailed),
        _ => None,
    }
}

/// The most a sender may cap one message at, in EUR.
const MAX_PRICE_CAP_EUR: f64 = 1000.0;

/// `max_price_eur` as micro-units: a finite amount from 0 to 1000 EUR, or `400
/// invalid_max_price_eur` before anything is reserved.
pub(crate) fn max_price(eur: Option<f64>) -> Result<Option<i64>> {
    eur.map(|v| {
        ami_core::money::from_units(v, MAX_PRICE_CAP_EUR).ok_or_else(|| {
            Error::invalid(
                "max_price_eur",
                "max_price_eur must be a number from 0 to 1000",
            )
        })
    })
    .transpose()
}

/// The 403 of a kill-switch (§7), naming its scope.
pub(crate) fn kill_switch_refusal(k: &kill_switches::KillSwitch) -> Error {
    Error::refused(
        403,
        "kill_switch",
        format!("traffic is stopped by a {} kill-switch", k.scope),
    )
    .with("scope", k.scope.clone())
    .with("kill_switch_id", k.id.clone())
}

/// The §6 429 body.
pub(crate) fn limit_refusal(reason: &str, mid_id: &str, retry_after: Option<u64>) -> Error {
    Error::refused(429, reason, format!("limit reached: {reason}"))
        .with("reason", reason)
        .with("mid", mid_id)
        .with(
            "retry_after",
            retry_after.map_or(serde_json::Value::Null, serde_json::Value::from),
        )
}
