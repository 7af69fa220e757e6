//! Fan-out of events to webhooks, inside the transaction of the change that causes them:
//! the change and its deliveries are committed together or not at all, so a committed event
//! is never lost and a rolled-back change never announced.
//!
//! Each event gets one id (the `webhook-id` every webhook and every retry sees) and the next
//! `sequence` of its MID, taken only when at least one webhook hears it. A transaction that
//! emits for several MIDs takes their counters in id order, so concurrent emitters cannot
//! deadlock on them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use ami_core::webhook_event::{self, WebhookEvent};
use ami_store::webhook_deliveries::{self, NewDelivery};
use ami_store::{Conn, Db, calls, messages, webhooks};

use super::payload::{self, About};
use crate::Services;
use crate::calls::CallView;
use crate::sms::SmsView;

/// An event about one MID, to deliver to every active webhook that hears it.
#[derive(Debug, Clone)]
pub(crate) struct Emission {
    pub account_id: String,
    pub mid_id: String,
    pub event: WebhookEvent,
    pub data: Value,
}

impl Emission {
    /// `sms.inbound` carries the body: it is the customer's own message, going to the
    /// customer's own endpoint, and there is no other way to hear it without polling. The
    /// outbound status events leave it out: the customer wrote it.
    pub fn sms(event: WebhookEvent, m: &messages::Message) -> Emission {
        let mut data = serde_json::to_value(SmsView::from(m.clone())).unwrap_or_default();
        if event != WebhookEvent::SmsInbound
            && let Some(fields) = data.as_object_mut()
        {
            fields.remove("body");
        }
        Emission {
            account_id: m.account_id.clone(),
            mid_id: m.mid_id.clone(),
            event,
            data,
        }
    }

    pub fn call(event: WebhookEvent, c: &calls::Call) -> Emission {
        Emission {
            account_id: c.account_id.clone(),
            mid_id: c.mid_id.clone(),
            event,
            data: serde_json::to_value(CallView::from(c.clone())).unwrap_or_default(),
        }
    }

    /// `mid.suspended` / `mid.resumed`: a kill-switch covering the MID was engaged or released.
    pub fn kill_switch(
        event: WebhookEvent,
        account_id: &str,
        mid_id: &str,
        switch: &ami_store::kill_switches::KillSwitch,
        reason: &str,
    ) -> Emission {
        Emission {
            account_id: account_id.to_owned(),
            mid_id: mid_id.to_owned(),
            event,
            data: json!({"kill_switch_id": switch.id, "scope": switch.scope, "reason": reason}),
        }
    }

    /// `limit.blocked`: a §6 limit refused an SMS or a call (never the body, the destination
    /// masked as in the audit log).
    pub fn limit_blocked(
        account_id: &str,
        mid_id: &str,
        kind: &str,
        reason: &str,
        to_masked: &str,
        retry_after: Option<u64>,
    ) -> Emission {
        Emission {
            account_id: account_id.to_owned(),
            mid_id: mid_id.to_owned(),
            event: WebhookEvent::LimitBlocked,
            data: json!({"kind": kind, "reason": reason, "to": to_masked, "retry_after": retry_after}),
        }
    }
}

/// The active webhooks of some accounts, read once: a batch builds an event's payload only
/// when one of them hears it.
pub(crate) struct Hearers {
    subscriptions: Vec<webhooks::Subscription>,
    filters: Vec<Vec<String>>,
}

impl Hearers {
    /// The webhooks that hear `event` about this MID, by their index.
    fn of(&self, account_id: &str, mid_id: &str, event: WebhookEvent) -> Vec<usize> {
        self.subscriptions
            .iter()
            .zip(&self.filters)
            .enumerate()
            .filter(|(_, (s, filter))| {
                s.account_id == account_id
                    && s.mid_id.as_deref().is_none_or(|mid| mid == mid_id)
                    && webhook_event::matches(filter, event)
            })
            .map(|(i, _)| i)
            .collect()
    }

    pub(crate) fn hear(&self, account_id: &str, mid_id: &str, event: WebhookEvent) -> bool {
        !self.of(account_id, mid_id, event).is_empty()
    }
}

impl Services {
    /// The active webhooks of these accounts.
    pub(crate) async fn hearers(
        &self,
        db: impl Into<Db<'_>>,
        accounts: &[&str],
    ) -> crate::Result<Hearers> {
        let mut accounts = accounts.to_vec();
        accounts.sort_unstable();
        accounts.dedup();
        let subscriptions = if accounts.is_empty() {
            Vec::new()
        } else {
            ami_store::system::webhooks::subscriptions(self.system(), db, &accounts).await?
        };
        let filters = subscriptions
            .iter()
            .map(|s| serde_json::from_str(&s.events).unwrap_or_default())
            .collect();
        Ok(Hearers {
            subscriptions,
            filters,
        })
    }

    /// Writes one delivery per event and hearing webhook, in the caller's transaction.
    pub(crate) async fn emit(
        &self,
        db: impl Into<Db<'_>>,
        emissions: Vec<Emission>,
    ) -> crate::Result<()> {
        if emissions.is_empty() {
            return Ok(());
        }
        let mut db = db.into();
        let accounts: Vec<&str> = emissions.iter().map(|e| e.account_id.as_str()).collect();
        let hearers = self.hearers(&mut db, &accounts).await?;
        self.emit_to(db, &hearers, emissions).await
    }

    /// [`Services::emit`] with the accounts' webhooks already read.
    pub(crate) async fn emit_to(
        &self,
        db: impl Into<Db<'_>>,
        hearers: &Hearers,
        emissions: Vec<Emission>,
    ) -> crate::Result<()> {
        if hearers.subscriptions.is_empty() {
            return Ok(());
        }
        let mut db = db.into();
        let subscriptions = &hearers.subscriptions;
        let hearers: Vec<Vec<usize>> = emissions
            .iter()
            .map(|e| hearers.of(&e.account_id, &e.mid_id, e.event))
            .collect();

        // The next sequence numbers of each MID, for the events somebody hears.
        let mut per_mid: BTreeMap<&str, i64> = BTreeMap::new();
        for (e, who) in emissions.iter().zip(&hearers) {
            if !who.is_empty() {
                *per_mid.entry(e.mid_id.as_str()).or_default() += 1;
            }
        }
        if per_mid.is_empty() {
            return Ok(());
        }
        let mut next: BTreeMap<&str, i64> = BTreeMap::new();
        for (mid, n) in &per_mid {
            let first = webhook_deliveries::reserve_sequences(&mut db, mid, *n).await?;
            next.insert(mid, first);
        }

        let now = self.now();
        let mut rendered = Vec::new();
        for (e, who) in emissions.iter().zip(&hearers) {
            if who.is_empty() {
                continue;
            }
            let Some(sequence) = next.get_mut(e.mid_id.as_str()) else {
                continue;
            };
            let event_id = ami_core::id::new_id_at("evt", now);
            let body = payload::render(
                &event_id,
                e.event.as_str(),
                now,
                About::Mid(&e.mid_id),
                *sequence,
                &e.data,
            );
            rendered.push((e, who, event_id, *sequence, body));
            *sequence += 1;
        }
        let rows: Vec<NewDelivery<'_>> = rendered
            .iter()
            .flat_map(|(e, who, event_id, sequence, body)| {
                who.iter().map(|&i| NewDelivery {
                    id: ami_core::id::new_id_at("dlv", now),
                    account_id: &e.account_id,
                    webhook_id: &subscriptions[i].id,
                    event_id,
                    event: e.event.as_str(),
                    mid_id: Some(&e.mid_id),
                    sequence: *sequence,
                    payload: body,
                    redelivery_of: None,
                    now,
                })
            })
            .collect();
        webhook_deliveries::insert_many(&mut db, &rows).await?;
        // Before the commit: on SQLite the worker's claim waits for this transaction's write
        // lock and then sees the rows; on PostgreSQL a claim that comes too early finds
        // nothing and the next poll takes them.
        self.webhook_wakeup.notify_one();
        Ok(())
    }

    /// Every MID of the accounts that have an active webhook, as (account, MID).
    pub(crate) async fn mids_of_accounts_with_webhooks(
        &self,
        conn: &mut Conn,
    ) -> crate::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for account in
            ami_store::system::webhooks::accounts_with_active(self.system(), conn).await?
        {
            for mid in ami_store::mids::ids_of_account(conn, &self.row_account(&account)).await? {
                out.push((account.clone(), mid));
            }
        }
        Ok(out)
    }

    /// [`Services::emit`] for one event.
    pub(crate) async fn emit_one(
        &self,
        db: impl Into<Db<'_>>,
        emission: Emission,
    ) -> crate::Result<()> {
        self.emit(db, vec![emission]).await
    }
}

impl Services {
    /// An event about the account itself (`kyc.*`), to every active account-scoped webhook
    /// that hears it, in the caller's transaction. Its `sequence` counts the account's own
    /// events; the payload names the account instead of a MID.
    pub(crate) async fn emit_account(
        &self,
        db: impl Into<Db<'_>>,
        account_id: &str,
        event: WebhookEvent,
        data: Value,
    ) -> crate::Result<()> {
        let mut db = db.into();
        let subscriptions =
            ami_store::system::webhooks::subscriptions(self.system(), &mut db, &[account_id])
                .await?;
        let hearing: Vec<&webhooks::Subscription> = subscriptions
            .iter()
            .filter(|s| {
                s.account_id == account_id
                    && s.mid_id.is_none()
                    && webhook_event::matches(
                        &serde_json::from_str::<Vec<String>>(&s.events).unwrap_or_default(),
                        event,
                    )
            })
            .collect();
        if hearing.is_empty() {
            return Ok(());
        }
        let sequence = webhook_deliveries::reserve_sequences(&mut db, account_id, 1).await?;
        let now = self.now();
        let event_id = ami_core::id::new_id_at("evt", now);
        let body = payload::render(
            &event_id,
            event.as_str(),
            now,
            About::Account(account_id),
            sequence,
            &data,
        );
        let rows: Vec<NewDelivery<'_>> = hearing
            .iter()
            .map(|s| NewDelivery {
                id: ami_core::id::new_id_at("dlv", now),
                account_id,
                webhook_id: &s.id,
                event_id: &event_id,
                event: event.as_str(),
                mid_id: None,
                sequence,
                payload: &body,
                redelivery_of: None,
                now,
            })
            .collect();
        webhook_deliveries::insert_many(&mut db, &rows).await?;
        self.webhook_wakeup.notify_one();
        Ok(())
    }
}
