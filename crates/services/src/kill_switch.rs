//! Kill-switches (PROTOCOL §7): the operator's at mid, account and global scope, and the
//! customer's own for one MID. Engaging cancels queued SMS not yet handed to the carrier and
//! ends the calls in progress of the MIDs it covers (hung up at the carrier by the dispatcher).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use ami_core::webhook_event::WebhookEvent;
use ami_store::{AccountId, kill_switches, mids, usage};

use crate::audit_log::Subject;
use crate::auth::{Actor, AdminCaller, CustomerCaller};
use crate::webhooks::Emission;
use crate::{Error, Result, Services, validate};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EngageKillSwitch {
    /// `mid`, `account` or `global`.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub scope: Option<String>,
    /// The MID or account id; absent for `global`.
    pub target_id: Option<String>,
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub reason: Option<String>,
}

/// `POST /v1/admin/kill-switch/{id}/release`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseKillSwitch {
    /// Required (`missing_reason`), at most 500 characters.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchView {
    pub id: String,
    pub scope: String,
    pub target_id: Option<String>,
    pub reason: String,
    pub engaged_by: String,
    pub engaged_at: String,
    pub released_at: Option<String>,
    pub released_by: Option<String>,
    pub active: bool,
    /// SMS cancelled because they were still queued when the switch was engaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_sms: Option<usize>,
    /// Calls ended because they were in progress when the switch was engaged: cancelled if
    /// not yet answered, completed otherwise, and hung up at the carrier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hung_up_calls: Option<usize>,
}

impl From<kill_switches::KillSwitch> for KillSwitchView {
    fn from(k: kill_switches::KillSwitch) -> Self {
        let ts = ami_core::time::rfc3339;
        Self {
            active: k.released_at.is_none(),
            id: k.id,
            scope: k.scope,
            target_id: k.target_id,
            reason: k.reason,
            engaged_by: k.engaged_by,
            engaged_at: ts(k.engaged_at),
            released_at: k.released_at.map(ts),
            released_by: k.released_by,
            cancelled_sms: None,
            hung_up_calls: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchList {
    pub kill_switches: Vec<KillSwitchView>,
    pub count: usize,
}

fn required_reason(reason: Option<&str>) -> Result<String> {
    validate::optional_text("reason", reason, 500)?
        .ok_or_else(|| Error::bad_request("missing_reason", "a kill-switch needs a reason"))
}

impl Services {
    pub async fn engage_kill_switch(
        &self,
        admin: &AdminCaller,
        input: EngageKillSwitch,
    ) -> Result<KillSwitchView> {
        let reason = required_reason(input.reason.as_deref())?;
        let scope = input.scope.unwrap_or_default();
        let target = input.target_id.filter(|t| !t.is_empty());
        let mut tx = self.store.begin().await?;
        let account_id = match (scope.as_str(), target.as_deref()) {
            ("global", None) => None,
            ("global", Some(_)) => {
                return Err(Error::invalid(
                    "target_id",
                    "a global kill-switch takes no target_id",
                ));
            }
            ("account", Some(id)) => {
                ami_store::accounts::get(&mut tx, &admin.chosen_account(id))
                    .await?
                    .ok_or_else(|| Error::not_found("account"))?;
                Some(id.to_owned())
            }
            ("mid", Some(id)) => {
                validate::id("mid", "mobile_identity", id)?;
                Some(
                    ami_store::system::mids::by_id(admin.operator(), &mut tx, id)
                        .await?
                        .ok_or_else(|| Error::not_found("mobile_identity"))?
                        .account_id,
                )
            }
            ("account" | "mid", None) => {
                return Err(Error::missing_fields(vec!["target_id".into()]));
            }
            _ => {
                return Err(Error::invalid(
                    "scope",
                    "scope must be mid, account or global",
                ));
            }
        };
        let view = self
            .engage(
                &mut tx,
                &Actor::Admin,
                &scope,
                target.as_deref(),
                account_id.as_deref(),
                &reason,
            )
            .await?;
        ami_store::commit(tx).await?;
        // Hang-up jobs of the calls it ended.
        self.dispatch_wakeup.notify_one();
        Ok(view)
    }

    /// The customer's own stop button for one of its MIDs.
    pub async fn suspend_mid(
        &self,
        caller: &CustomerCaller,
        mid_id: &str,
        input: crate::admin::Reason,
    ) -> Result<KillSwitchView> {
        let reason = validate::reason(input.reason.as_deref(), "suspended_by_customer")?;
        validate::id("mid", "mobile_identity", mid_id)?;
        let mut tx = self.store.begin().await?;
        mids::get(&mut tx, &caller.account_id, mid_id)
            .await?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        let view = self
            .engage(
                &mut tx,
                &caller.actor(),
                "mid",
                Some(mid_id),
                Some(caller.account_id.as_str()),
                &reason,
            )
            .await?;
        ami_store::commit(tx).await?;
        self.dispatch_wakeup.notify_one();
        Ok(view)
    }

    async fn engage(
        &self,
        tx: &mut ami_store::Conn,
        actor: &Actor,
        scope: &str,
        target: Option<&str>,
        account_id: Option<&str>,
        reason: &str,
    ) -> Result<KillSwitchView> {
        let now = self.now();
        let already = kill_switches::active(tx)
            .await?
            .into_iter()
            .any(|k| k.scope == scope && k.target_id.as_deref() == target);
        if already {
            return Err(Error::conflict(
                "kill_switch_already_engaged",
                "an identical kill-switch is already engaged",
            ));
        }
        let k = kill_switches::KillSwitch {
            id: ami_core::id::new_id_at("ks", now),
            scope: scope.to_owned(),
            target_id: target.map(str::to_owned),
            account_id: account_id.map(str::to_owned),
            reason: reason.to_owned(),
            engaged_by: format!("{}:{}", actor.kind(), actor.id()),
            engaged_at: now,
            released_at: None,
            released_by: None,
            release_reason: None,
        };
        kill_switches::insert(tx, &k).await?;
        let (mid_filter, account_filter) = match scope {
            "mid" => (target, None),
            "account" => (None, target),
            _ => (None, None),
        };
        // The lock order of every path: calls, then usage rows (sorted), then the audit head.
        // Ending calls and cancelling messages returns reservations and writes audit events
        // one by one, so every usage row they need is locked before the first of them.
        let calls_account = if scope == "mid" {
            account_id
        } else {
            account_filter
        };
        let engine = self.store.engine();
        let live =
            ami_store::system::calls::live(self.system(), tx, engine, mid_filter, calls_account)
                .await?;
        let queued =
            ami_store::system::messages::cancellable(self.system(), tx, mid_filter, account_filter)
                .await?;
        let owners: Vec<(AccountId, &str)> = live
            .iter()
            .map(|c| (self.row_account(&c.account_id), c.mid_id.as_str()))
            .chain(
                queued
                    .iter()
                    .map(|m| (self.row_account(&m.account_id), m.mid_id.as_str())),
            )
            .collect();
        let owners: Vec<(&AccountId, &str)> = owners.iter().map(|(a, m)| (a, *m)).collect();
        usage::lock_many(&mut *tx, &owners).await?;
        let hung_up = self.end_calls(tx, actor, &live).await?;
        let mut cancelled = 0;
        for m in &queued {
            // One a dispatcher has leased may be inside the carrier: it is being handed off,
            // not cancelled (the dispatcher checks the switch itself before the hand-off).
            if ami_store::outbox::forget_unleased(tx, &m.id, self.now()).await? {
                self.cancel_message(&mut *tx, m, "kill_switch").await?;
                cancelled += 1;
            }
        }
        let subject = Subject {
            account_id,
            entity_type: "kill_switch",
            entity_id: &k.id,
            mid: mid_filter,
        };
        self.audit(&mut *tx, actor, "kill_switch_engaged", subject, json!({"scope": scope, "target_id": target, "reason": reason, "cancelled_sms": cancelled, "hung_up_calls": hung_up}))
            .await?;
        self.record_mid_events(tx, actor, "mid_suspended", &k, reason)
            .await?;
        let mut view = KillSwitchView::from(k);
        view.cancelled_sms = Some(cancelled);
        view.hung_up_calls = Some(hung_up);
        Ok(view)
    }

    /// One `mid_suspended` / `mid_resumed` audit event per affected MID, and the webhook events
    /// `mid.suspended` / `mid.resumed` for each of them (§7). A release resumes only the MIDs
    /// no other engaged switch still covers: the others stay stopped, and saying otherwise
    /// would invite their agents back.
    async fn record_mid_events(
        &self,
        tx: &mut ami_store::Conn,
        actor: &Actor,
        action: &str,
        k: &kill_switches::KillSwitch,
        reason: &str,
    ) -> Result<()> {
        let mut affected: Vec<(String, String)> = match (
            k.scope.as_str(),
            k.account_id.as_deref(),
            k.target_id.as_deref(),
        ) {
            ("mid", Some(account), Some(mid)) => vec![(account.to_owned(), mid.to_owned())],
            ("account", Some(account), _) => mids::ids_of_account(tx, &self.row_account(account))
                .await?
                .into_iter()
                .map(|m| (account.to_owned(), m))
                .collect(),
            // A global switch is one event on the operator's chain, not one per MID of the service.
            _ => Vec::new(),
        };
        let still_engaged = if action == "mid_resumed" {
            kill_switches::active(tx).await?
        } else {
            Vec::new()
        };
        let resumes = |(account, mid): &(String, String)| {
            kill_switches::broadest_covering(&still_engaged, account, mid).is_none()
        };
        affected.retain(resumes);
        for (account, mid) in &affected {
            let subject = crate::mids::mid_subject(account, mid);
            self.audit(
                &mut *tx,
                actor,
                action,
                subject,
                json!({"kill_switch_id": k.id, "scope": k.scope, "reason": reason}),
            )
            .await?;
        }
        // A global switch affects every MID; only those of accounts with a webhook can hear it.
        let mut heard = if k.scope == "global" {
            self.mids_of_accounts_with_webhooks(tx).await?
        } else {
            affected
        };
        heard.retain(resumes);
        let event = if action == "mid_suspended" {
            WebhookEvent::MidSuspended
        } else {
            WebhookEvent::MidResumed
        };
        let emissions = heard
            .iter()
            .map(|(account, mid)| Emission::kill_switch(event, account, mid, k, reason))
            .collect();
        self.emit(tx, emissions).await
    }

    pub async fn list_kill_switches(&self, _: &AdminCaller) -> Result<KillSwitchList> {
        let mut conn = self.store.reader().await?;
        let items: Vec<KillSwitchView> = kill_switches::active(&mut conn)
            .await?
            .into_iter()
            .map(KillSwitchView::from)
            .collect();
        drop(conn);
        self.audit_admin_read("kill_switches").await?;
        Ok(KillSwitchList {
            count: items.len(),
            kill_switches: items,
        })
    }

    pub async fn release_kill_switch(
        &self,
        _: &AdminCaller,
        id: &str,
        input: ReleaseKillSwitch,
    ) -> Result<KillSwitchView> {
        let reason = required_reason(input.reason.as_deref())?;
        validate::id("ks", "kill_switch", id)?;
        let mut tx = self.store.begin().await?;
        let k = kill_switches::get(&mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found("kill_switch"))?;
        let view = self.release(&mut tx, &Actor::Admin, k, &reason).await?;
        ami_store::commit(tx).await?;
        Ok(view)
    }

    /// Releases the customer's own switch on its MID; an operator's switch stays.
    pub async fn resume_mid(
        &self,
        caller: &CustomerCaller,
        mid_id: &str,
        input: crate::admin::Reason,
    ) -> Result<KillSwitchView> {
        let reason = validate::reason(input.reason.as_deref(), "resumed_by_customer")?;
        validate::id("mid", "mobile_identity", mid_id)?;
        let mut tx = self.store.begin().await?;
        mids::get(&mut tx, &caller.account_id, mid_id)
            .await?
            .ok_or_else(|| Error::not_found("mobile_identity"))?;
        let k = kill_switches::active_for_mid(&mut tx, mid_id)
            .await?
            .ok_or_else(|| {
                Error::conflict("not_suspended", "the mobile identity is not suspended")
            })?;
        if !k.engaged_by.starts_with("customer:") {
            return Err(Error::conflict(
                "kill_switch_engaged_by_admin",
                "the operator stopped this mobile identity",
            ));
        }
        let view = self.release(&mut tx, &caller.actor(), k, &reason).await?;
        ami_store::commit(tx).await?;
        Ok(view)
    }

    async fn release(
        &self,
        tx: &mut ami_store::Conn,
        actor: &Actor,
        k: kill_switches::KillSwitch,
        reason: &str,
    ) -> Result<KillSwitchView> {
        let by = format!("{}:{}", actor.kind(), actor.id());
        if !kill_switches::release(tx, &k.id, &by, reason, self.now()).await? {
            return Err(Error::conflict(
                "kill_switch_not_active",
                "the kill-switch is already released",
            ));
        }
        let mid = (k.scope == "mid")
            .then_some(k.target_id.as_deref())
            .flatten();
        let subject = Subject {
            account_id: k.account_id.as_deref(),
            entity_type: "kill_switch",
            entity_id: &k.id,
            mid,
        };
        self.audit(
            &mut *tx,
            actor,
            "kill_switch_released",
            subject,
            json!({"scope": k.scope, "target_id": k.target_id, "reason": reason}),
        )
        .await?;
        self.record_mid_events(tx, actor, "mid_resumed", &k, reason)
            .await?;
        let released = kill_switches::get(tx, &k.id)
            .await?
            .ok_or_else(|| Error::not_found("kill_switch"))?;
        Ok(KillSwitchView::from(released))
    }
}
