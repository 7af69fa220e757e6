//! Calls from the network to a MID's number (PROTOCOL §3.6, §4) and the call statuses a
//! carrier reports over HTTP. The telco callback, the carrier's event stream, the sandbox's
//! inject endpoint and the SIP side's [`Services::route_inbound_call`] all decide through
//! one path: the number must belong to a live MID that is active, has voice, is not stopped
//! by a kill-switch (§7) and has somewhere to send the call: the agent's `voice_url` (SIP
//! side only) or an `inbound_sip_uri` to bridge the audio to.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use ami_core::delivery::CallStatus;
use ami_core::phone::E164;
use ami_core::webhook_event::WebhookEvent;
use ami_store::{AccountId, calls, mids, voice_configs};

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

/// Which targets an accepted call may be handed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// A SIP bridge only: the HTTP callback answers with a SIP URI, the sandbox bridges.
    SipOnly,
    /// The agent's voice URL when one is set, else the SIP bridge: the SIP side, which can
    /// open the agent's media connection itself.
    AgentFirst,
}

/// What the SIP side does with an INVITE, decided by [`Services::route_inbound_call`].
pub enum InboundRoute {
    /// Connect the call to the agent at `voice_url`, signing the set-up with
    /// `signing_secret` (the MID's current one).
    Agent {
        call_id: String,
        account: String,
        mid: String,
        voice_url: String,
        signing_secret: String,
    },
    /// Bridge the call to the customer's SIP endpoint.
    Bridge {
        call_id: String,
        mid: String,
        sip_uri: String,
    },
    /// Refuse the INVITE; nothing was recorded but the refusal's audit event.
    Refuse { reason: RefuseReason },
}

/// The secret stays out of every `{:?}`, so no log line can carry it.
impl std::fmt::Debug for InboundRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InboundRoute::Agent {
                call_id,
                mid,
                voice_url,
                ..
            } => f
                .debug_struct("Agent")
                .field("call_id", call_id)
                .field("mid", mid)
                .field("voice_url", voice_url)
                .finish_non_exhaustive(),
            InboundRoute::Bridge {
                call_id,
                mid,
                sip_uri,
            } => f
                .debug_struct("Bridge")
                .field("call_id", call_id)
                .field("mid", mid)
                .field("sip_uri", sip_uri)
                .finish(),
            InboundRoute::Refuse { reason } => {
                f.debug_struct("Refuse").field("reason", reason).finish()
            }
        }
    }
}

/// Why an inbound call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// No live MID holds the number (a released number is held by nobody).
    NotFound,
    /// The MID is not active, or a kill-switch covers it (the customer's suspension, the
    /// operator's switch for the MID, its account or everything).
    NotActive,
    /// The MID has neither a voice URL nor an inbound SIP URI, or was not contracted
    /// with voice.
    NoRoute,
}

impl RefuseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::NotFound => "not_found",
            RefuseReason::NotActive => "not_active",
            RefuseReason::NoRoute => "no_route",
        }
    }
}

/// Where an accepted call goes.
enum Target {
    Agent {
        voice_url: String,
        signing_secret: String,
    },
    Bridge {
        sip_uri: String,
    },
}

/// What the shared path decided.
enum Decision {
    Accepted {
        call_id: String,
        account: String,
        mid: String,
        target: Target,
    },
    /// `error` is what the HTTP paths answer.
    Refused { reason: RefuseReason, error: Error },
}

impl Decision {
    /// The HTTP callback's and the sandbox's answer: a SIP URI to bridge to, or the error.
    fn into_http(self) -> Result<InboundCallRoute> {
        match self {
            Decision::Accepted {
                call_id,
                mid,
                target,
                ..
            } => Ok(InboundCallRoute {
                call_id,
                mid,
                forward_sip_uri: match target {
                    Target::Bridge { sip_uri } => sip_uri,
                    // SipOnly never chooses the agent; an earlier agent call replayed
                    // here has no SIP URI to give.
                    Target::Agent { .. } => String::new(),
                },
            }),
            Decision::Refused { error, .. } => Err(error),
        }
    }
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
        self.decide_inbound_call(
            actor,
            Destination::Number(&to),
            from,
            reference,
            Routing::SipOnly,
        )
        .await?
        .into_http()
    }

    /// An INVITE from the SIP side for `to`: where the call goes. The call is recorded, audited
    /// (`call_received`) and announced (`call.inbound` webhooks) exactly as on the HTTP
    /// callback; a refusal of a known MID is audited as `call_blocked` with its reason. The
    /// agent's voice URL wins over the `inbound_sip_uri` when both are set. A malformed
    /// `from`, `to` or `telco_ref` is an error (400 family), not a routing decision.
    pub async fn route_inbound_call(
        &self,
        from: &str,
        to: &str,
        telco_ref: Option<&str>,
    ) -> Result<InboundRoute> {
        let from = sender(from)?;
        let to = E164::parse(to).map_err(|_| Error::invalid("to", "to must be an E.164 number"))?;
        let reference = crate::telco::telco_ref(telco_ref)?;
        let decision = self
            .decide_inbound_call(
                &Actor::Telco,
                Destination::Number(&to),
                from,
                reference,
                Routing::AgentFirst,
            )
            .await?;
        Ok(match decision {
            Decision::Accepted {
                call_id,
                account,
                mid,
                target:
                    Target::Agent {
                        voice_url,
                        signing_secret,
                    },
            } => InboundRoute::Agent {
                call_id,
                account,
                mid,
                voice_url,
                signing_secret,
            },
            Decision::Accepted {
                call_id,
                mid,
                target: Target::Bridge { sip_uri },
                ..
            } => InboundRoute::Bridge {
                call_id,
                mid,
                sip_uri,
            },
            Decision::Refused { reason, .. } => InboundRoute::Refuse { reason },
        })
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
        self.decide_inbound_call(&caller.actor(), destination, from, None, Routing::SipOnly)
            .await?
            .into_http()
    }

    /// One transaction: the checks, the call (`ringing`, handed to its target) and its
    /// `call_received` event and `call.inbound` webhooks. A refusal of a known MID (not
    /// active, no voice, kill-switch, nowhere to send the call) is audited as `call_blocked`
    /// with its reason; an unknown number has no tenant to audit under and is only refused.
    async fn decide_inbound_call(
        &self,
        actor: &Actor,
        destination: Destination<'_>,
        from: E164,
        reference: Option<String>,
        routing: Routing,
    ) -> Result<Decision> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        let found = match destination {
            Destination::Number(to) => {
                ami_store::system::mids::by_phone_number(self.system(), &mut tx, to.as_str())
                    .await?
                    .ok_or_else(|| {
                        Error::refused(
                            404,
                            "destination_not_found",
                            "no mobile identity has this number",
                        )
                    })
            }
            Destination::Mid { account_id, mid_id } => mids::get(&mut tx, account_id, mid_id)
                .await?
                .ok_or_else(|| Error::not_found("mobile_identity")),
        };
        let mid = match found {
            Ok(mid) => mid,
            Err(error) => {
                return Ok(Decision::Refused {
                    reason: RefuseReason::NotFound,
                    error,
                });
            }
        };
        let account = self.row_account(&mid.account_id);
        let voice = match routing {
            Routing::AgentFirst => {
                let stored = voice_configs::get(&mut tx, &account, &mid.id).await?;
                self.opened_voice_config(stored)?
                    .and_then(|c| c.voice_url.zip(c.signing_secret))
            }
            Routing::SipOnly => None,
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
            // A repeated INVITE or callback: the first call, to the target it had (an agent
            // call is connected with the MID's current secret).
            let target = match (earlier.callback_sip_uri, voice) {
                (Some(sip_uri), _) => Target::Bridge { sip_uri },
                (None, Some((voice_url, signing_secret))) => Target::Agent {
                    voice_url,
                    signing_secret,
                },
                (None, None) => Target::Bridge {
                    sip_uri: String::new(),
                },
            };
            return Ok(Decision::Accepted {
                call_id: earlier.id,
                account: earlier.account_id,
                mid: earlier.mid_id,
                target,
            });
        }
        let refusal = if mid.status != "active" {
            Some((
                RefuseReason::NotActive,
                "mobile_identity_not_active",
                Error::conflict(
                    "mobile_identity_not_active",
                    format!("the mobile identity is {}", mid.status),
                ),
            ))
        } else if let Err(e) = crate::mids::require_capability(&mid, "voice") {
            Some((RefuseReason::NoRoute, "capability_not_contracted", e))
        } else if let Err(e) = self.check_kill_switch(&mut tx, &account, &mid.id).await {
            Some((RefuseReason::NotActive, "kill_switch", e))
        } else if voice.is_none() && mid.inbound_sip_uri.is_none() {
            let (code, message) = match routing {
                Routing::SipOnly => (
                    "no_inbound_sip_uri",
                    "the mobile identity has no inbound_sip_uri to forward calls to",
                ),
                Routing::AgentFirst => (
                    "no_route",
                    "the mobile identity has neither a voice_url nor an inbound_sip_uri",
                ),
            };
            Some((RefuseReason::NoRoute, code, Error::conflict(code, message)))
        } else {
            None
        };
        let subject = crate::mids::mid_subject(&mid.account_id, &mid.id);
        if let Some((reason, code, error)) = refusal {
            self.audit(
                &mut tx,
                actor,
                "call_blocked",
                subject,
                json!({"direction": "inbound", "reason": code, "from": from.masked()}),
            )
            .await?;
            ami_store::commit(tx).await?;
            return Ok(Decision::Refused { reason, error });
        }
        let target = match (voice, mid.inbound_sip_uri.clone()) {
            (Some((voice_url, signing_secret)), _) => Target::Agent {
                voice_url,
                signing_secret,
            },
            (None, sip_uri) => Target::Bridge {
                sip_uri: sip_uri.unwrap_or_default(),
            },
        };
        let (route, forward) = match &target {
            Target::Agent { .. } => ("agent", None),
            Target::Bridge { sip_uri } => ("bridge", Some(sip_uri.clone())),
        };
        let call = calls::Call {
            id: ami_core::id::new_id_at("call", now),
            account_id: mid.account_id.clone(),
            mid_id: mid.id.clone(),
            direction: "inbound".into(),
            from_number: from.as_str().to_owned(),
            to_number: mid.phone_number.clone(),
            callback_sip_uri: forward,
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
            json!({"from": from.masked(), "telco_ref": call.telco_ref, "route": route}),
        )
        .await?;
        self.emit_one(&mut tx, Emission::call(WebhookEvent::CallInbound, &call))
            .await?;
        ami_store::commit(tx).await?;
        Ok(Decision::Accepted {
            call_id: call.id,
            account: call.account_id,
            mid: call.mid_id,
            target,
        })
    }

    /// A call status from the telco callback. Unlike the carrier's event stream, the
    /// carrier hears about a refused transition: 409 `invalid_call_transition` (the report is
    /// still audited as ignored and changes nothing). A report of the status the call already
    /// has is a resend: 200 with the unchanged call.
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
        if !outcome.applied && !outcome.repeated {
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
