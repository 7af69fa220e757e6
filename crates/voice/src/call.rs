//! One call's task: its SIP signals, its media (bridge to the agent or relay to a SIP URI)
//! and the events that report it. Every event of the call leaves from here.

use std::sync::Arc;

use ami_carrier::{AgentStream, CarrierEvent};
use ami_core::delivery::CallStatus;
use ami_media::bridge::{BridgeControl, EndReason, spawn_bridge};
use ami_media::frames::{CallInfo, Direction};
use ami_media::leg::{RemoteEndpoint, RtpLeg};
use ami_media::relay::{RelayEndReason, spawn_relay};
use ami_media::sdp;
use ami_sip::{CallEvent, EndCause, UriInvite};
use tokio::sync::mpsc;
use tracing::debug;

use crate::carrier::{B_LEG, Shared};
use crate::causes::{Side, outcome};

/// What a call's task hears.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The first leg (the trunk's).
    A(CallEvent),
    /// The second leg (to the SIP URI).
    B(CallEvent),
    /// The server asks for the end (hang-up, kill-switch, budget).
    HangUp,
    /// The media ended by itself; the cause, none when we stopped it.
    MediaEnded(Option<String>),
}

pub(crate) struct Call {
    pub shared: Arc<Shared>,
    pub call_id: String,
    pub telco_ref: String,
    pub side: Side,
    pub from: String,
    pub to: String,
    pub leg_a: Option<RtpLeg>,
    pub leg_b: Option<RtpLeg>,
    /// The second leg has been invited and has not ended.
    pub b_live: bool,
    pub b_answered: bool,
    pub agent: Option<AgentStream>,
    /// Outbound without an agent: the SIP URI the answered call is bridged to.
    pub callback: String,
    pub answered: bool,
    /// `ringing` has been reported.
    pub rang: bool,
    /// How the call ends when we end it ourselves.
    pub ours: Option<(CallStatus, Option<String>)>,
    pub server_hangup: bool,
    pub control: mpsc::UnboundedSender<Msg>,
    pub media: Option<BridgeControl>,
}

impl Call {
    pub async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Msg>) {
        while let Some(msg) = inbox.recv().await {
            match msg {
                Msg::A(CallEvent::Ringing) => {
                    self.emit(CallStatus::Ringing, None);
                }
                Msg::A(CallEvent::Answered { sdp_answer }) => {
                    self.answered = true;
                    self.on_answer(&sdp_answer).await;
                }
                Msg::A(CallEvent::Connected) => {
                    self.answered = true;
                    self.emit(CallStatus::InProgress, None);
                    self.start_media().await;
                }
                Msg::A(CallEvent::Ended { cause }) => {
                    self.finish(&cause);
                    break;
                }
                Msg::B(CallEvent::Answered { sdp_answer }) => {
                    self.b_answered = true;
                    match remote(&self.shared, &sdp_answer) {
                        Ok(remote) => {
                            if let Some(leg) = self.leg_b.as_mut() {
                                leg.set_remote(remote);
                            }
                            self.start_media().await;
                        }
                        Err(()) => self.end_ours(CallStatus::Completed, "no_common_codec"),
                    }
                }
                Msg::B(CallEvent::Ended { .. }) => {
                    self.b_live = false;
                    let cause = if self.b_answered {
                        "agent_hangup"
                    } else {
                        "agent_unreachable"
                    };
                    self.end_ours(CallStatus::Completed, cause);
                }
                Msg::B(_) => {}
                Msg::HangUp => {
                    self.server_hangup = true;
                    self.hang_up();
                }
                Msg::MediaEnded(Some(cause)) => self.end_ours(CallStatus::Completed, &cause),
                Msg::MediaEnded(None) => {}
            }
        }
        self.shared.remove(&self.call_id);
    }

    fn emit(&mut self, status: CallStatus, hangup_cause: Option<String>) {
        // The call record reaches in_progress, busy and no_answer only through ringing; a
        // far end that answers or refuses without a provisional response was reached all
        // the same.
        let through_ringing = matches!(
            status,
            CallStatus::InProgress | CallStatus::Busy | CallStatus::NoAnswer
        );
        if status == CallStatus::Ringing {
            if self.rang {
                return;
            }
            self.rang = true;
        } else if through_ringing && !self.rang {
            self.emit(CallStatus::Ringing, None);
        }
        let event = CarrierEvent::Call {
            call_id: self.call_id.clone(),
            telco_ref: self.telco_ref.clone(),
            status,
            hangup_cause,
        };
        if !self.shared.report(event) {
            debug!(call_id = %self.call_id, "call event dropped: nobody listens");
        }
    }

    /// Outbound: the callee answered.
    async fn on_answer(&mut self, sdp_answer: &str) {
        self.emit(CallStatus::InProgress, None);
        match remote(&self.shared, sdp_answer) {
            Ok(remote) => {
                if let Some(leg) = self.leg_a.as_mut() {
                    leg.set_remote(remote);
                }
                self.start_media().await;
            }
            Err(()) => self.end_ours(CallStatus::Completed, "no_common_codec"),
        }
    }

    /// The first leg is up: the agent's bridge, the relay once both legs are up, or the
    /// second leg's INVITE.
    async fn start_media(&mut self) {
        if self.media.is_some() || self.ours.is_some() || self.server_hangup {
            return;
        }
        if let Some(agent) = self.agent.clone() {
            let Some(leg) = self.leg_a.take() else {
                return;
            };
            let target = match crate::agent::target(&self.shared.settings.guard, &agent).await {
                Ok(target) => target,
                Err(reason) => {
                    debug!(call_id = %self.call_id, %reason, "voice URL refused");
                    self.end_ours(CallStatus::Completed, "agent_unreachable");
                    return;
                }
            };
            let info = CallInfo {
                account_id: agent.account_id.clone(),
                call_id: self.call_id.clone(),
                stream_id: format!("str_{:016x}", rand::random::<u64>()),
                mid_id: agent.mid_id.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
                direction: match self.side {
                    Side::Callee => Direction::Outbound,
                    Side::Caller => Direction::Inbound,
                },
            };
            let (control, handle) =
                spawn_bridge(leg, target, info, self.shared.settings.bridge.clone());
            self.media = Some(control);
            let mailbox = self.control.clone();
            tokio::spawn(async move {
                let cause = match handle.await {
                    Ok(end) => bridge_cause(&end.reason),
                    Err(_) => Some("media_error".to_owned()),
                };
                let _ = mailbox.send(Msg::MediaEnded(cause));
            });
            return;
        }
        if self.b_answered {
            let (Some(a), Some(b)) = (self.leg_a.take(), self.leg_b.take()) else {
                return;
            };
            let (control, handle) = spawn_relay(a, b, self.shared.settings.bridge.media_timeout);
            self.media = Some(control);
            let mailbox = self.control.clone();
            tokio::spawn(async move {
                let cause = match handle.await {
                    Ok(end) => match end.reason {
                        RelayEndReason::Stopped => None,
                        RelayEndReason::MediaTimeout => Some("media_timeout".to_owned()),
                        RelayEndReason::MediaError(_) => Some("media_error".to_owned()),
                    },
                    Err(_) => Some("media_error".to_owned()),
                };
                let _ = mailbox.send(Msg::MediaEnded(cause));
            });
            return;
        }
        if self.b_live {
            // Inbound bridge: the second leg answered first; the relay starts above once
            // it has (b_answered), so nothing waits here.
            return;
        }
        if self.callback.is_empty() {
            self.end_ours(CallStatus::Completed, "no_media_target");
            return;
        }
        self.invite_second_leg().await;
    }

    async fn invite_second_leg(&mut self) {
        let Some(ua) = self.shared.ua().cloned() else {
            return;
        };
        let leg = match self.shared.bind_leg().await {
            Ok(leg) => leg,
            Err(_) => {
                self.end_ours(CallStatus::Completed, "no_rtp_port");
                return;
            }
        };
        let offer = sdp::build_offer(
            &self.shared.local_audio(leg.local_port()),
            &self.shared.settings.codecs,
        );
        self.leg_b = Some(leg);
        let invite = UriInvite {
            call_id: format!("{}{B_LEG}", self.call_id),
            target: self.callback.clone(),
            from: self.from.clone(),
            sdp_offer: offer,
        };
        match ua.invite_uri(invite).await {
            Ok(_) => self.b_live = true,
            Err(e) => {
                debug!(call_id = %self.call_id, error = %e, "second leg not started");
                self.end_ours(CallStatus::Completed, "agent_unreachable");
            }
        }
    }

    /// We end the call: the first cause we name is the one reported.
    fn end_ours(&mut self, status: CallStatus, cause: &str) {
        if self.ours.is_none() && !self.server_hangup {
            self.ours = Some((status, Some(cause.to_owned())));
        }
        self.hang_up();
    }

    fn hang_up(&mut self) {
        if let Some(media) = self.media.take() {
            media.stop();
        }
        if let Some(ua) = self.shared.ua() {
            ua.hang_up(&self.call_id);
            if self.b_live {
                ua.hang_up(&format!("{}{B_LEG}", self.call_id));
            }
        }
    }

    /// The first leg ended: the last event of the call.
    fn finish(&mut self, cause: &EndCause) {
        if let Some(media) = self.media.take() {
            media.stop();
        }
        if self.b_live
            && let Some(ua) = self.shared.ua()
        {
            ua.hang_up(&format!("{}{B_LEG}", self.call_id));
        }
        let ended_here = matches!(cause, EndCause::LocalHangup | EndCause::Cancelled);
        let (status, hangup_cause) = if self.server_hangup && ended_here {
            // The server asked and has recorded why (agent hang-up, kill-switch, budget).
            let status = if self.answered {
                CallStatus::Completed
            } else {
                CallStatus::Cancelled
            };
            (status, None)
        } else if let Some(ours) = self.ours.take() {
            ours
        } else {
            outcome(cause, self.side)
        };
        self.emit(status, hangup_cause);
    }
}

/// The far end's answer made into the leg's remote side; Err when it shares no codec.
pub(crate) fn remote(shared: &Shared, body: &str) -> Result<RemoteEndpoint, ()> {
    let audio = sdp::parse_remote(body).map_err(|_| ())?;
    let negotiated = sdp::negotiate(&audio, &shared.settings.codecs).map_err(|_| ())?;
    Ok(RemoteEndpoint::from_sdp(&audio, negotiated))
}

fn bridge_cause(reason: &EndReason) -> Option<String> {
    let cause = match reason {
        EndReason::Stopped => return None,
        EndReason::AgentHangup => "agent_hangup",
        EndReason::AgentGone(_) => "agent_gone",
        EndReason::AgentUnreachable(_) => "agent_unreachable",
        EndReason::AgentProtocol => "agent_protocol_error",
        EndReason::MediaTimeout => "media_timeout",
        EndReason::MediaError(_) => "media_error",
    };
    Some(cause.to_owned())
}
