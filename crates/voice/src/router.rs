//! Inbound INVITEs: the offer is checked, the server decides through the directory, and
//! the call is answered toward the agent or bridged to the MID's SIP URI.

use std::sync::Arc;
use std::time::Duration;

use ami_carrier::{AgentStream, CarrierEvent};
use ami_core::delivery::CallStatus;
use ami_media::leg::{RemoteEndpoint, RtpLeg};
use ami_media::sdp;
use ami_sip::{CallEvent, InboundDecision, InboundInvite, InboundRouter, RouteFuture, UriInvite};
use tokio::sync::mpsc;
use tracing::debug;

use crate::call::{Call, Msg, remote};
use crate::carrier::{B_LEG, Live, Shared};
use crate::causes::{Side, outcome, refusal_for};
use crate::directory::InboundRoute;

/// What the bridged callee's answer may take less than the user agent's routing limit.
const ROUTE_MARGIN: Duration = Duration::from_secs(1);

pub(crate) struct Router {
    pub shared: Arc<Shared>,
}

impl InboundRouter for Router {
    fn route(&self, invite: InboundInvite) -> RouteFuture<'_> {
        Box::pin(self.decide(invite))
    }
}

fn refuse(code: u16, reason: &str) -> InboundDecision {
    InboundDecision::Refuse {
        code,
        reason: reason.to_owned(),
    }
}

impl Router {
    async fn decide(&self, invite: InboundInvite) -> InboundDecision {
        let shared = &self.shared;
        // Checked before the directory, so a call we could not carry is never recorded.
        let offered = sdp::parse_remote(&invite.sdp_offer)
            .and_then(|audio| sdp::negotiate(&audio, &shared.settings.codecs).map(|n| (audio, n)));
        let Ok((audio, negotiated)) = offered else {
            return refuse(488, "Not Acceptable Here");
        };
        let caller_remote = RemoteEndpoint::from_sdp(&audio, negotiated);
        let route = shared
            .directory
            .route_inbound(
                invite.from_e164.clone(),
                invite.to_e164.clone(),
                invite.sip_call_id.clone(),
            )
            .await;
        let (call_id, agent, sip_uri) = match route {
            InboundRoute::Refuse { code, reason } => return refuse(code, &reason),
            InboundRoute::Agent {
                call_id,
                mid_id,
                account_id,
                voice_url,
                signing_secret,
            } => {
                let agent = AgentStream {
                    voice_url,
                    signing_secret,
                    account_id,
                    mid_id,
                };
                (call_id, Some(agent), None)
            }
            InboundRoute::Bridge { call_id, sip_uri } => (call_id, None, Some(sip_uri)),
        };
        shared.metrics.started(true);
        let mut leg_a = match shared.bind_leg().await {
            Ok(leg) => leg,
            Err(_) => {
                self.emit(&call_id, &invite, CallStatus::Failed, "no_rtp_port");
                return refuse(503, "Service Unavailable");
            }
        };
        leg_a.set_remote(caller_remote);
        let answer = sdp::build_answer(&shared.local_audio(leg_a.local_port()), &negotiated);
        let (control, inbox) = mpsc::unbounded_channel();
        let live = Live {
            control: control.clone(),
            telco_ref: Some(invite.sip_call_id.clone()),
        };
        if !shared.insert(&call_id, live) {
            return refuse(482, "Loop Detected");
        }
        let mut call = Call {
            shared: shared.clone(),
            call_id: call_id.clone(),
            telco_ref: invite.sip_call_id.clone(),
            side: Side::Caller,
            from: invite.from_e164.clone().unwrap_or_default(),
            to: invite.to_e164.clone(),
            leg_a: Some(leg_a),
            leg_b: None,
            b_live: false,
            b_answered: false,
            agent,
            callback: String::new(),
            answered: false,
            rang: true,
            ours: None,
            server_hangup: false,
            control,
            media: None,
        };
        let mut inbox = inbox;
        if let Some(uri) = sip_uri {
            match self.bridge_first(&mut call, &mut inbox, &uri).await {
                Ok(leg_b) => {
                    call.leg_b = Some(leg_b);
                    call.b_live = true;
                    call.b_answered = true;
                }
                Err(refusal) => {
                    shared.remove(&call_id);
                    return refusal;
                }
            }
        }
        shared.tasks.spawn(call.run(inbox));
        InboundDecision::Answer {
            call_id,
            sdp_answer: answer,
        }
    }

    /// Calls the MID's SIP URI and waits for its answer; the caller is answered only then.
    /// A refusal has already been reported on the call.
    async fn bridge_first(
        &self,
        call: &mut Call,
        inbox: &mut mpsc::UnboundedReceiver<Msg>,
        uri: &str,
    ) -> Result<RtpLeg, InboundDecision> {
        let shared = &self.shared;
        let emit = |status, cause: Option<String>| {
            let event = CarrierEvent::Call {
                call_id: call.call_id.clone(),
                telco_ref: call.telco_ref.clone(),
                status,
                hangup_cause: cause,
            };
            let _ = shared.report(event);
        };
        let Some(ua) = shared.ua().cloned() else {
            return Err(refuse(503, "Service Unavailable"));
        };
        let mut leg_b = match shared.bind_leg().await {
            Ok(leg) => leg,
            Err(_) => {
                emit(CallStatus::Failed, Some("no_rtp_port".into()));
                return Err(refuse(503, "Service Unavailable"));
            }
        };
        let b_id = format!("{}{B_LEG}", call.call_id);
        let invite = UriInvite {
            call_id: b_id.clone(),
            target: uri.to_owned(),
            from: call.from.clone(),
            sdp_offer: sdp::build_offer(
                &shared.local_audio(leg_b.local_port()),
                &shared.settings.codecs,
            ),
        };
        if let Err(e) = ua.invite_uri(invite).await {
            debug!(call_id = %call.call_id, error = %e, "bridge target not called");
            emit(CallStatus::Failed, Some("bridge_unreachable".into()));
            return Err(refuse(480, "Temporarily Unavailable"));
        }
        let limit = shared
            .settings
            .sip
            .route_timeout()
            .saturating_sub(ROUTE_MARGIN)
            .max(Duration::from_millis(500));
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Msg::B(CallEvent::Answered { sdp_answer })) => {
                        return match remote(shared, &sdp_answer) {
                            Ok(r) => {
                                leg_b.set_remote(r);
                                Ok(leg_b)
                            }
                            Err(()) => {
                                ua.hang_up(&b_id);
                                emit(CallStatus::Failed, Some("no_common_codec".into()));
                                Err(refuse(488, "Not Acceptable Here"))
                            }
                        };
                    }
                    Some(Msg::B(CallEvent::Ended { cause })) => {
                        let (status, hangup_cause) = outcome(&cause, Side::Callee);
                        emit(status, hangup_cause);
                        let (code, reason) = refusal_for(&cause);
                        return Err(refuse(code, reason));
                    }
                    Some(Msg::A(CallEvent::Ended { .. })) => {
                        ua.hang_up(&b_id);
                        emit(CallStatus::Cancelled, Some("cancelled_by_caller".into()));
                        return Err(refuse(487, "Request Terminated"));
                    }
                    Some(Msg::HangUp) => {
                        ua.hang_up(&b_id);
                        emit(CallStatus::Cancelled, None);
                        return Err(refuse(480, "Temporarily Unavailable"));
                    }
                    Some(_) => {}
                    None => return Err(refuse(500, "Server Internal Error")),
                },
                () = &mut deadline => {
                    ua.hang_up(&b_id);
                    emit(CallStatus::NoAnswer, Some("bridge_no_answer".into()));
                    return Err(refuse(480, "Temporarily Unavailable"));
                }
            }
        }
    }

    fn emit(&self, call_id: &str, invite: &InboundInvite, status: CallStatus, cause: &str) {
        let event = CarrierEvent::Call {
            call_id: call_id.to_owned(),
            telco_ref: invite.sip_call_id.clone(),
            status,
            hangup_cause: Some(cause.to_owned()),
        };
        let _ = self.shared.report(event);
    }
}
