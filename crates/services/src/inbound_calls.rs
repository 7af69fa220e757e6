//! Calls from the network to a MID's number (PROTOCOL §3.6, §4) and the call statuses a
//! carrier reports over HTTP. The telco callback, the carrier's event stream and the
//! sandbox's inject endpoint all enter through [`Services::receive_call`]'s path: the number
//! must belong to a live MID that is active, has voice, is not stopped by a kill-switch
//! (§7) and has an `inbound_sip_uri` to forward the audio to.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use ami_core::delivery::CallStatus;
use ami_core::phone::E164;
use ami_core::webhook_event::WebhookEvent;
use ami_store::{AccountId, calls, mids};

use crate::audit_log::Subject;
use crate::auth::{Actor, CustomerCaller};
use crate::calls::CallView;
use crate::telco::{missing, no_such_route, sender, telco_ref};
use crate::webhooks::Emission;
use crate::{Error, Result, Services, validate};

/// `POST /v1/_telco/calls/inbound`, and the carrier's `InboundCall` event.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundCall {
    /// The caller, E.164.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub from: Option<String>,
    /// The phone number of a mobile identity, E.164.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub to: Option<String>,
    /// The carrier's reference. A repeated callback with the same reference gets the first
    /// call back instead of a second one.
    pub telco_ref: Option<String>,
}

/// `POST /v1/mobile-identities/{id}/sandbox/inbound-call`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxInboundCall {
    /// The caller, E.164.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub from: Option<String>,
}

/// Where the carrier must bridge an accepted inbound call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InboundCallRoute {
    pub call_id: String,
    /// The MID's `inbound_sip_uri` at the time the call arrived.
    pub forward_sip_uri: String,
    pub mid: String,
}

/// `POST /v1/_telco/calls/{id}/status`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallStatusReport {
    /// `ringing`, `in_progress`, `completed`, `failed`, `no_answer`, `busy` or `cancelled`
    /// (hyphens are read as underscores).
    #[schema(value_type = String, required = true, pattern = "\\S")]
    pub status: Option<String>,
    /// The carrier's reason, kept single-line and short.
    pub hangup_cause: Option<String>,
    /// The carrier's reference of the attempt the status is about.
    pub telco_ref: Option<String>,
}

/// The spellings a call status report may use.
const CALL_STATUSES: [&str; 7] = [
    "ringing",
    "in_progress",
    "completed",
    "failed",
    "no_answer",
    "busy",
    "cancelled",
];

/// Most characters of a reported hang-up cause accepted on the wire (it is cut further when
/// stored).
const MAX_CAUSE_INPUT_CHARS: usize = 1000;

/// Where an inbound call is going.
enum Destination<'a> {
    Number(&'a E164),
    Mid {
        account_id: &'a AccountId,
        mid_id: &'a str,
    },
}

impl Services {
    /// A call from the network to a MID's number (telco callback, carrier event).
    pub async fn receive_call(
        &self,
        actor: &Actor,
        input: InboundCall,
    ) -> Result<InboundCallRoute> {
        missing(&[("from", input.from.is_some()), ("to", input.to.is_some())])?;
        let from = sender(input.from.as_deref().unwrap_or_default())?;
        let to = E164::parse(input.to.as_deref().unwrap_or_default())
            .map_err(|_| Error::invalid("to", "to must be an E.164 number"))?;
        let reference = telco_ref(input.telco_ref.as_deref())?;
        self.accept_inbound_call(actor, Destination::Number(&to), from, reference)
            .await
    }

    /// The sandbox's inbound call for one of the caller's MIDs: the same path as the
    /// network's. The sandbox carrier then answers it and ends it on its timer.
    pub async fn sandbox_inbound_call(
        &self,
        caller: &CustomerCaller,
        mid_id: &str,
        input: SandboxInboundCall,
    ) -> Result<InboundCallRoute> {
        if !self.settings.sandbox {
            return Err(no_such_route());
        }
        validate::id("mid", "mobile_identity", mid_id)?;
        {
            let mut conn = self.store.reader().await?;
            mids::get(&mut conn, &caller.account_id, mid_id)
                .await?
                .ok_or_else(|| Error::not_found("mobile_identity"))?;
        }
        missing(&[("from", input.from.is_some())])?;
        let from = sender(input.from.as_deref().unwrap_or_default())?;
        let destination = Destination::Mid {
            account_id: &caller.account_id,
            mid_id,
        };
        self.accept_inbound_call(&caller.actor(), destination, from, None)
            .await
    }

    /// One transaction: the checks, the call (`ringing`, forwarded to the MID's SIP URI) and
    /// its `call_received` event. A refusal by kill-switch or for want of a SIP URI is
    /// audited as `call_blocked`.
    async fn accept_inbound_call(
        &self,
        actor: &Actor,
        destination: Destination<'_>,
        from: E164,
        reference: Option<String>,
    ) -> Result<InboundCallRoute> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let mid = match destination {
            Destination::Number(to) => {
                ami_store::system::mids::by_phone_number(self.system(), &mut tx, to.as_str())
                    .await?
                    .ok_or_else(|| {
                        Error::refused(
                            404,
                            "destination_not_found",
                            "no mobile identity has this number",
                        )
                    })?
            }
            Destination::Mid { account_id, mid_id } => mids::get(&mut tx, account_id, mid_id)
                .await?
                .ok_or_else(|| Error::not_found("mobile_identity"))?,
        };
        if let Some(reference) = reference.as_deref()
            && let Some(earlier) = ami_store::system::calls::inbound_by_telco_ref(
                self.system(),
                &mut tx,
                &mid.id,
                reference,
            )
            .await?
        {
            return Ok(InboundCallRoute {
                forward_sip_uri: earlier.callback_sip_uri.unwrap_or_default(),
                call_id: earlier.id,
                mid: earlier.mid_id,
            });
        }
        if mid.status != "active" {
            return Err(Error::conflict(
                "mobile_identity_not_active",
                format!("the mobile identity is {}", mid.status),
            ));
        }
        crate::mids::require_capability(&mid, "voice")?;
        let subject = crate::mids::mid_subject(&mid.account_id, &mid.id);
        let refusal = match self
            .check_kill_switch(&mut tx, &self.row_account(&mid.account_id), &mid.id)
            .await
        {
            Err(refusal) => Some(("kill_switch", refusal)),
            Ok(()) if mid.inbound_sip_uri.is_none() => Some((
                "no_inbound_sip_uri",
                Error::conflict(
                    "no_inbound_sip_uri",
                    "the mobile identity has no inbound_sip_uri to forward calls to",
                ),
            )),
            Ok(()) => None,
        };
        if let Some((reason, refusal)) = refusal {
            self.audit(
                &mut tx,
                actor,
                "call_blocked",
                subject,
                json!({"direction": "inbound", "reason": reason, "from": from.masked()}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Err(refusal);
        }
        let forward = mid.inbound_sip_uri.clone().unwrap_or_default();
        let call = calls::Call {
            id: ami_core::id::new_id_at("call", now),
            account_id: mid.account_id.clone(),
            mid_id: mid.id.clone(),
            direction: "inbound".into(),
            from_number: from.as_str().to_owned(),
            to_number: mid.phone_number.clone(),
            callback_sip_uri: Some(forward.clone()),
            status: CallStatus::Ringing.as_str().into(),
            created_at: now,
            handed_at: None,
            started_at: Some(now),
            answered_at: None,
            ended_at: None,
            duration_sec: None,
            hangup_cause: None,
            telco_ref: reference,
            retry_count: 0,
            cost: 0,
            updated_at: now,
        };
        calls::insert(&mut tx, &call).await?;
        self.audit(
            &mut tx,
            actor,
            "call_received",
            Subject {
                entity_type: "call",
                entity_id: &call.id,
                ..subject
            },
            json!({"from": from.masked(), "telco_ref": call.telco_ref}),
        )
        .await?;
        self.emit_one(&mut tx, Emission::call(WebhookEvent::CallInbound, &call))
            .await?;
        ami_store::commit(tx).await?;
        Ok(InboundCallRoute {
            call_id: call.id,
            forward_sip_uri: forward,
            mid: call.mid_id,
        })
    }

    /// A call status from the telco callback. Unlike the carrier's event stream, the
    /// carrier hears about a refused transition: 409 `invalid_call_transition` (the report is
    /// still audited as ignored and changes nothing).
    pub async fn call_status_report(
        &self,
        call_id: &str,
        report: CallStatusReport,
    ) -> Result<CallView> {
        let spelling = report
            .status
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase().replace('-', "_"))
            .unwrap_or_default();
        let status = CallStatus::parse(&spelling)
            .filter(|s| *s != CallStatus::Initiated)
            .ok_or_else(|| {
                Error::bad_request("unknown_status", "status is not a known call status")
                    .with("accepted", CALL_STATUSES.to_vec())
            })?;
        let reference = telco_ref(report.telco_ref.as_deref())?;
        let cause = validate::optional_text(
            "hangup_cause",
            report.hangup_cause.as_deref(),
            MAX_CAUSE_INPUT_CHARS,
        )?;
        validate::id("call", "call", call_id)?;
        let outcome = self
            .apply_call_status(
                &Actor::Telco,
                call_id,
                status,
                reference.as_deref(),
                cause.as_deref(),
            )
            .await?;
        if !outcome.applied {
            return Err(Error::conflict(
                "invalid_call_transition",
                format!(
                    "a {} call cannot become {}",
                    outcome.from.as_str(),
                    status.as_str()
                ),
            )
            .with("from", outcome.from.as_str())
            .with("to", status.as_str()));
        }
        Ok(outcome.call)
    }
}
