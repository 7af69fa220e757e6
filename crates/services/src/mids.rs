//! Mobile identity administration by its customer (PROTOCOL §3.4).

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use ami_core::limits::{Limits, LimitsError};
use ami_core::secret;
use ami_store::page::PageRequest;
use ami_store::{Conn, mids, numbers};

use crate::audit_log::Subject;
use crate::auth::{Actor, CustomerCaller};
use crate::memo::Memo;
use crate::views::{ActivatedMid, InboundConfig, LimitsView, MidList, MidView, RotatedToken};
use crate::{Error, Result, Services, validate};

const MID: &str = "mobile_identity";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundConfigInput {
    /// `sip:user@host[:port][;params]` or `sips:...`; null or "" clears it.
    pub inbound_sip_uri: Option<String>,
}

/// Everything a new MID is made of.
pub(crate) struct MidSource<'a> {
    pub id: String,
    pub account_id: &'a str,
    pub number: &'a numbers::Number,
    pub capabilities: &'a [String],
    pub inbound_sip_uri: Option<&'a str>,
    pub sim_request_id: Option<&'a str>,
    pub contract_id: Option<&'a str>,
}

/// `None` for absent or empty; otherwise a valid SIP URI or `400 invalid_inbound_sip_uri`.
pub(crate) fn parse_sip_uri(raw: Option<&str>) -> Result<Option<String>> {
    match raw {
        None | Some("") => Ok(None),
        Some(uri) => ami_core::sip::validate(uri)
            .map(|()| Some(uri.to_owned()))
            .map_err(|e| Error::invalid("inbound_sip_uri", e.to_string())),
    }
}

pub(crate) fn mid_subject<'a>(account_id: &'a str, mid_id: &'a str) -> Subject<'a> {
    Subject {
        account_id: Some(account_id),
        entity_type: MID,
        entity_id: mid_id,
        mid: Some(mid_id),
    }
}

/// Refuses an operation the MID was not contracted for: the agent must not retry it.
pub(crate) fn require_capability(mid: &mids::Mid, capability: &str) -> Result<()> {
    let contracted: Vec<String> = serde_json::from_str(&mid.capabilities).unwrap_or_default();
    if contracted.iter().any(|c| c == capability) {
        Ok(())
    } else {
        Err(missing_capability(capability))
    }
}

pub(crate) fn missing_capability(capability: &str) -> Error {
    Error::refused(
        403,
        "capability_not_contracted",
        format!("the mobile identity was not contracted with {capability}"),
    )
    .with("capability", capability)
}

pub(crate) fn not_active(status: &str) -> Error {
    Error::conflict(
        "mobile_identity_not_active",
        format!("the mobile identity is {status}"),
    )
}

impl Services {
    /// Inserts an active MID with default limits and its first agent token (returned once).
    pub(crate) async fn insert_mid(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        src: MidSource<'_>,
    ) -> Result<ActivatedMid> {
        let now = self.now();
        let row = mids::Mid {
            id: src.id,
            account_id: src.account_id.to_owned(),
            sim_request_id: src.sim_request_id.map(str::to_owned),
            contract_id: src.contract_id.map(str::to_owned),
            number_id: src.number.id.clone(),
            phone_number: src.number.phone_number.clone(),
            country: src.number.country.clone(),
            capabilities: json!(src.capabilities).to_string(),
            status: "active".into(),
            inbound_sip_uri: src.inbound_sip_uri.map(str::to_owned),
            limits: Limits {
                rate_burst: self.settings.rate_burst,
                ..Limits::default()
            }
            .to_json()
            .to_string(),
            created_at: now,
            updated_at: now,
            released_at: None,
        };
        mids::insert(conn, &row).await?;
        let token = secret::new_agent_token();
        mids::insert_token(
            conn,
            &self.row_account(&row.account_id),
            &row.id,
            &secret::hash(&token),
            &secret::display_prefix(&token),
            now,
        )
        .await?;
        let subject = mid_subject(&row.account_id, &row.id);
        self.audit(
            &mut *conn,
            actor,
            "mid_activated",
            subject,
            json!({"number_id": row.number_id, "country": row.country, "sim_request_id": row.sim_request_id}),
        )
        .await?;
        self.audit(
            conn,
            actor,
            "agent_token_issued",
            mid_subject(&row.account_id, &row.id),
            json!({"token_prefix": secret::display_prefix(&token)}),
        )
        .await?;
        let view = MidView::from(row);
        Ok(ActivatedMid {
            mobile_identity_id: view.id.clone(),
            mid: view,
            agent_token_hint: secret::hint(&token),
            agent_token: token,
        })
    }

    pub(crate) async fn owned_mid(
        &self,
        conn: &mut Conn,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<mids::Mid> {
        validate::id("mid", MID, id)?;
        mids::get(conn, &caller.account_id, id)
            .await?
            .ok_or_else(|| Error::not_found(MID))
    }

    pub async fn get_mid(&self, caller: &CustomerCaller, id: &str) -> Result<MidView> {
        let mut conn = self.store.reader().await?;
        Ok(MidView::from(self.owned_mid(&mut conn, caller, id).await?))
    }

    pub async fn list_mids(&self, caller: &CustomerCaller, page: &PageRequest) -> Result<MidList> {
        let mut conn = self.store.reader().await?;
        let p = mids::list(&mut conn, &caller.account_id, page).await?;
        let items: Vec<MidView> = p.items.into_iter().map(MidView::from).collect();
        Ok(MidList {
            count: items.len(),
            mobile_identities: items,
            next_cursor: p.next_cursor,
        })
    }

    pub async fn rotate_agent_token(
        &self,
        caller: &CustomerCaller,
        id: &str,
    ) -> Result<RotatedToken> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let mid = self.owned_mid(&mut tx, caller, id).await?;
        if mid.status != "active" {
            return Err(not_active(&mid.status));
        }
        let revoked = mids::revoke_tokens(&mut tx, &caller.account_id, id, now).await?;
        let token = secret::new_agent_token();
        let prefix = secret::display_prefix(&token);
        mids::insert_token(
            &mut tx,
            &caller.account_id,
            id,
            &secret::hash(&token),
            &prefix,
            now,
        )
        .await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "agent_token_rotated",
            mid_subject(caller.account_id.as_str(), id),
            json!({"token_prefix": prefix, "revoked_previous": revoked}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(RotatedToken {
            mid: id.to_owned(),
            agent_token_hint: secret::hint(&token),
            agent_token: token,
            revoked_previous: revoked,
            rotated_at: ami_core::time::rfc3339(now),
        })
    }

    pub async fn set_inbound_config(
        &self,
        caller: &CustomerCaller,
        id: &str,
        input: InboundConfigInput,
    ) -> Result<InboundConfig> {
        let uri = parse_sip_uri(input.inbound_sip_uri.as_deref())?;
        let mut tx = self.store.begin().await?;
        let mid = self.owned_mid(&mut tx, caller, id).await?;
        if mid.status == "released" {
            return Err(not_active(&mid.status));
        }
        mids::set_inbound_sip_uri(&mut tx, &caller.account_id, id, uri.as_deref(), self.now())
            .await?;
        // The URI is the customer's own routing target, not PII; record whether it is set.
        self.audit(
            &mut tx,
            &caller.actor(),
            "inbound_config_changed",
            mid_subject(caller.account_id.as_str(), id),
            json!({"inbound_sip_uri_set": uri.is_some()}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(InboundConfig {
            mid: id.to_owned(),
            inbound_sip_uri: uri,
        })
    }

    pub async fn get_limits(&self, caller: &CustomerCaller, id: &str) -> Result<LimitsView> {
        let mut conn = self.store.reader().await?;
        let mid = self.owned_mid(&mut conn, caller, id).await?;
        let limits = stored_limits(&mid)?.to_json();
        Ok(LimitsView {
            mid: mid.id,
            limits,
        })
    }

    pub async fn update_limits(
        &self,
        caller: &CustomerCaller,
        id: &str,
        patch: &Value,
    ) -> Result<LimitsView> {
        let mut tx = self.store.begin().await?;
        let mid = self.owned_mid(&mut tx, caller, id).await?;
        let next = stored_limits(&mid)?.patched(patch).map_err(|e| match e {
            LimitsError::Invalid(field) => Error::invalid(
                field,
                format!("{field} is out of range or of the wrong type"),
            ),
            LimitsError::UnknownField(field) => {
                Error::bad_request("unknown_field", format!("unknown limit {field}"))
                    .with("field", field)
            }
            LimitsError::NotAnObject => {
                Error::bad_request("invalid_json", "limits must be a JSON object")
            }
        })?;
        if mid.status == "released" {
            return Err(not_active(&mid.status));
        }
        let json = next.to_json();
        mids::set_limits(
            &mut tx,
            &caller.account_id,
            id,
            &json.to_string(),
            self.now(),
        )
        .await?;
        let changed: Vec<&String> = patch
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        self.audit(
            &mut tx,
            &caller.actor(),
            "limits_changed",
            mid_subject(caller.account_id.as_str(), id),
            json!({"fields": changed, "limits": json}),
        )
        .await?;
        ami_store::commit(tx).await?;
        Ok(LimitsView {
            mid: id.to_owned(),
            limits: json,
        })
    }

    /// Gives the number back: tokens revoked, number quarantined, MID terminal.
    pub async fn release_mid(&self, caller: &CustomerCaller, id: &str) -> Result<MidView> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let mid = self.owned_mid(&mut tx, caller, id).await?;
        if mid.status == "released"
            || !mids::set_status(
                &mut tx,
                &caller.account_id,
                id,
                &mid.status,
                "released",
                now,
            )
            .await?
        {
            return Err(not_active(&mid.status));
        }
        let revoked = mids::revoke_tokens(&mut tx, &caller.account_id, id, now).await?;
        let until = now + self.settings.quarantine_ms;
        numbers::set_status(
            &mut tx,
            &mid.number_id,
            "assigned",
            "quarantined",
            Some(until),
            now,
        )
        .await?;
        self.audit(
            &mut tx,
            &caller.actor(),
            "mid_released",
            mid_subject(caller.account_id.as_str(), id),
            json!({"from": mid.status, "tokens_revoked": revoked, "number_id": mid.number_id,
                   "quarantined_until": ami_core::time::rfc3339(until)}),
        )
        .await?;
        let released = mids::get(&mut tx, &caller.account_id, id)
            .await?
            .ok_or_else(|| Error::not_found(MID))?;
        ami_store::commit(tx).await?;
        Ok(MidView::from(released))
    }
}

/// A MID's limits as stored. They are decoded once per distinct text: every group of sends
/// needs them, and the text changes only when the customer sets new limits.
pub(crate) fn stored_limits(mid: &mids::Mid) -> Result<Limits> {
    static DECODED: LazyLock<Memo<Limits>> = LazyLock::new(|| Memo::new(4096));
    DECODED.get_or_try_insert(&mid.limits, || {
        let corrupt = |e: &dyn std::fmt::Display| {
            Error::Internal(ami_store::StoreError::Corrupt(format!(
                "limits of {}: {e}",
                mid.id
            )))
        };
        let v: Value = serde_json::from_str(&mid.limits).map_err(|e| corrupt(&e))?;
        Limits::from_json(&v).map_err(|e| corrupt(&e))
    })
}
