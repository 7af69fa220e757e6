//! Agent SMS (PROTOCOL §3.5): send with the §6 policy checked and reserved in the same
//! transaction as the message, its audit event and its dispatch job; delivery reports that
//! never move a status backwards.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use ami_core::delivery::SmsStatus;
use ami_core::phone::E164;
use ami_core::policy::{self, Decision, Kind};
use ami_core::sms::{self, BodyError};
use ami_store::page::PageRequest;
use ami_store::{Conn, kill_switches, messages, mids, outbox, usage};

use crate::audit_log::Subject;
use crate::auth::{Actor, AgentCaller};
use crate::{Error, Result, Services, validate};

pub const JOB_SUBMIT_SMS: &str = "sms_submit";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSms {
    /// E.164; spaces, hyphens, dots and parentheses are removed first.
    pub to: Option<String>,
    pub body: Option<String>,
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

/// What a successful send also reports: the room left (extension headers).
pub struct Sent {
    pub sms: SmsView,
    pub remaining_budget_eur: serde_json::Value,
    pub remaining_sms_this_hour: i64,
}

pub(crate) fn parse_destination(field: &str, raw: Option<&str>) -> Result<(E164, String)> {
    let to = E164::parse(raw.unwrap_or_default())
        .map_err(|_| Error::invalid(field, format!("{field} must be an E.164 number")))?;
    let prefix = to
        .calling_prefix()
        .ok_or_else(|| Error::invalid(field, format!("{field} has no country calling code")))?;
    Ok((to, prefix))
}

impl Services {
    /// The price of one SMS segment to this number's country, from the catalogue (the
    /// highest catalogue price for a country it does not list).
    fn sms_price(&self, to: &E164) -> i64 {
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
        account_id: &str,
        mid_id: &str,
    ) -> Result<()> {
        match kill_switches::covering(conn, account_id, mid_id).await? {
            None => Ok(()),
            Some(k) => Err(Error::refused(
                403,
                "kill_switch",
                format!("traffic is stopped by a {} kill-switch", k.scope),
            )
            .with("scope", k.scope)
            .with("kill_switch_id", k.id)),
        }
    }

    pub async fn send_sms(&self, agent: &AgentCaller, input: SendSms) -> Result<Sent> {
        let (to, prefix) = parse_destination("to", input.to.as_deref())?;
        let body = input.body.unwrap_or_default();
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
        let now = self.now();
        let actor = Actor::Agent {
            mid_id: agent.mid_id.clone(),
        };
        let subject = crate::mids::mid_subject(&agent.account_id, &agent.mid_id);
        let mut tx = self.store.begin().await?;
        let mid = mids::get(&mut tx, &agent.account_id, &agent.mid_id)
            .await?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        if mid.status != "active" {
            return Err(Error::conflict(
                "mobile_identity_not_active",
                format!("the mobile identity is {}", mid.status),
            ));
        }
        crate::mids::require_capability(&mid, "sms")?;
        if let Err(e) = self
            .check_kill_switch(&mut tx, &agent.account_id, &agent.mid_id)
            .await
        {
            self.audit(
                &mut tx,
                &actor,
                "sms_blocked",
                subject,
                json!({"reason": "kill_switch", "to": to.masked()}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Err(e);
        }
        let limits = crate::mids::stored_limits(&mid)?;
        let current = usage::lock(
            &mut tx,
            self.store.engine(),
            &agent.account_id,
            &agent.mid_id,
        )
        .await?;
        let dest = usage::destination(&mut tx, &agent.mid_id, Kind::Sms, to.as_str()).await?;
        let request = policy::Request {
            kind: Kind::Sms,
            now_ms: now,
            destination_prefix: &prefix,
            cost,
        };
        let (next, next_dest) = match policy::decide(&limits, &current, &dest, &request) {
            Decision::Allow { usage, destination } => (usage, destination),
            Decision::Refuse {
                reason,
                retry_after_secs,
            } => {
                // The refusal is recorded and nothing else: no message, no reservation, no carrier.
                self.audit(
                    &mut tx,
                    &actor,
                    "sms_blocked",
                    subject,
                    json!({"reason": reason.as_str(), "to": to.masked()}),
                )
                .await?;
                ami_store::commit(tx).await?;
                return Err(limit_refusal(
                    reason.as_str(),
                    &agent.mid_id,
                    retry_after_secs,
                ));
            }
        };
        usage::save(&mut tx, &agent.account_id, &agent.mid_id, &next).await?;
        usage::save_destination(&mut tx, &agent.mid_id, Kind::Sms, to.as_str(), &next_dest).await?;
        let message = messages::Message {
            id: ami_core::id::new_id_at("msg", now),
            account_id: agent.account_id.clone(),
            mid_id: agent.mid_id.clone(),
            direction: "outbound".into(),
            from_number: mid.phone_number.clone(),
            to_number: to.as_str().to_owned(),
            body,
            segments: i64::from(seg.segments),
            encoding: seg.encoding.as_str().into(),
            cost,
            status: SmsStatus::Queued.as_str().into(),
            created_at: now,
            handed_at: None,
            sent_at: None,
            delivered_at: None,
            telco_ref: None,
            retry_count: 0,
            error: None,
            updated_at: now,
        };
        messages::insert(&mut tx, &message).await?;
        outbox::enqueue(&mut tx, JOB_SUBMIT_SMS, &message.id, now, now).await?;
        self.audit(
            &mut tx,
            &actor,
            "sms_queued",
            Subject {
                entity_type: "sms",
                entity_id: &message.id,
                ..subject
            },
            json!({"to": to.masked(), "segments": seg.segments, "encoding": seg.encoding.as_str(),
                   "cost_eur": ami_core::money::to_json(cost)}),
        )
        .await?;
        ami_store::commit(tx).await?;
        self.dispatch_wakeup.notify_one();
        Ok(Sent {
            remaining_budget_eur: ami_core::money::to_json(
                (limits.monthly_budget - next.spend_month).max(0),
            ),
            remaining_sms_this_hour: (limits.sms_per_hour - next.sms_hour).max(0),
            sms: SmsView::from(message),
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
        let p =
            messages::list(&mut conn, &agent.account_id, &agent.mid_id, direction, page).await?;
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
        messages::get(&mut conn, &agent.account_id, &agent.mid_id, id)
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
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let m = messages::by_id(&mut tx, msg_id)
            .await?
            .ok_or_else(|| Error::not_found("sms"))?;
        let subject = Subject {
            account_id: Some(&m.account_id),
            entity_type: "sms",
            entity_id: &m.id,
            mid: Some(&m.mid_id),
        };
        let from = SmsStatus::parse(&m.status).unwrap_or(SmsStatus::Failed);
        if m.direction != "outbound" || !from.can_become(status) {
            self.audit(
                &mut tx,
                actor,
                "sms_status_ignored",
                subject,
                json!({"from": from.as_str(), "reported": status.as_str(), "telco_ref": telco_ref}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Ok(SmsView::from(m));
        }
        messages::transition(&mut tx, &m.id, from.as_str(), status.as_str(), now, error).await?;
        if status == SmsStatus::Failed {
            // The carrier took nothing: give the reservation back.
            self.release_spend(&mut tx, &m.account_id, &m.mid_id, m.cost, m.created_at)
                .await?;
        }
        let action = match status {
            SmsStatus::Delivered => "sms_delivered",
            SmsStatus::Failed => "sms_failed",
            _ => "sms_sent",
        };
        self.audit(
            &mut tx,
            actor,
            action,
            subject,
            json!({"from": from.as_str(), "to": status.as_str()}),
        )
        .await?;
        let updated = messages::by_id(&mut tx, &m.id)
            .await?
            .ok_or_else(|| Error::not_found("sms"))?;
        ami_store::commit(tx).await?;
        Ok(SmsView::from(updated))
    }

    /// Returns reserved money, only within the month it was reserved in.
    pub(crate) async fn release_spend(
        &self,
        conn: &mut Conn,
        account_id: &str,
        mid_id: &str,
        amount: i64,
        reserved_at: i64,
    ) -> Result<()> {
        let now = self.now();
        if amount <= 0 || policy::month_start(reserved_at) != policy::month_start(now) {
            return Ok(());
        }
        let current = usage::lock(conn, self.store.engine(), account_id, mid_id).await?;
        usage::save(
            conn,
            account_id,
            mid_id,
            &policy::charge(&current, now, -amount, 0),
        )
        .await?;
        Ok(())
    }
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
