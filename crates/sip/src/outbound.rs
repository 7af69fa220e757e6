//! One outbound call, from the INVITE to its end: dialog states become signals, a hang-up
//! becomes CANCEL or BYE, an unanswered call is cancelled at the ring timeout.

use std::sync::Arc;

use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Response, StatusCodeKind};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::call::{CallEvent, EndCause};
use crate::indialog::answer_in_dialog;
use crate::ua::Inner;

pub(crate) struct Call {
    pub call_id: String,
    pub dialog: InviteDialog,
    pub outcome: JoinHandle<rsipstack::Result<(DialogId, Option<Response>)>>,
    pub states: DialogStateReceiver,
    pub hangup: CancellationToken,
    pub local_sdp: String,
}

pub(crate) async fn run(ua: Arc<Inner>, mut call: Call) {
    let ring = tokio::time::sleep(ua.settings.ring_timeout());
    tokio::pin!(ring);
    let mut rang = false;
    let mut answered = false;
    let mut joined = false;
    let mut states_open = true;
    // What we asked for (CANCEL or BYE) and so how the call ends if the far end agrees.
    let mut local: Option<EndCause> = None;
    let cause = loop {
        tokio::select! {
            state = call.states.recv(), if states_open => match state {
                Some(DialogState::Early(..)) if !rang && !answered => {
                    rang = true;
                    ua.signal(&call.call_id, CallEvent::Ringing).await;
                }
                Some(DialogState::Confirmed(_, response)) if !answered && local.is_none() => {
                    answered = true;
                    ua.signal(&call.call_id, answer(&response)).await;
                }
                Some(DialogState::Terminated(_, reason)) if answered => {
                    break ended_after_answer(&reason, local.take());
                }
                // Before the answer the final response (below) tells more than the state.
                Some(DialogState::Terminated(..)) => {}
                Some(other) => answer_in_dialog(other, &call.local_sdp).await,
                None if joined => break local.take().unwrap_or(EndCause::RemoteHangup),
                None => states_open = false,
            },
            outcome = &mut call.outcome, if !joined => {
                joined = true;
                let response = match outcome {
                    Ok(Ok((_, response))) => response,
                    Ok(Err(e)) => break local.take().unwrap_or(EndCause::Unreachable { reason: e.to_string() }),
                    Err(e) => break local.take().unwrap_or(EndCause::Unreachable { reason: e.to_string() }),
                };
                let Some(response) = response else {
                    break local.take().unwrap_or(EndCause::Unreachable { reason: "no final response".to_string() });
                };
                let code = response.status_code.code();
                if response.status_code.kind() == StatusCodeKind::Successful {
                    // A 2xx crossing our CANCEL: the stack ends it with a BYE.
                    if let Some(cause) = local.take() {
                        break cause;
                    }
                    if !answered {
                        answered = true;
                        ua.signal(&call.call_id, answer(&response)).await;
                    }
                } else if code == 487 && local.is_some() {
                    break local.take().unwrap_or(EndCause::Cancelled);
                } else {
                    break EndCause::from_status(code, response.status_code.text());
                }
            },
            _ = call.hangup.cancelled(), if local.is_none() => {
                local = Some(if answered { EndCause::LocalHangup } else { EndCause::Cancelled });
                end(&call.dialog, answered);
            },
            _ = &mut ring, if !answered && local.is_none() => {
                local = Some(EndCause::NoAnswer);
                end(&call.dialog, false);
            },
        }
    };
    debug!(call_id = %call.call_id, ?cause, "outbound call ended");
    ua.dialogs.remove_dialog(&call.dialog.id());
    ua.remove_call(&call.call_id);
    ua.signal(&call.call_id, CallEvent::Ended { cause }).await;
}

fn answer(response: &Response) -> CallEvent {
    CallEvent::Answered {
        sdp_answer: String::from_utf8_lossy(&response.body).into_owned(),
    }
}

/// CANCEL or BYE, in the background: the outcome comes back as dialog states.
fn end(dialog: &InviteDialog, answered: bool) {
    let dialog = dialog.clone();
    tokio::spawn(async move {
        let sent = if answered {
            dialog.bye().await
        } else {
            dialog.cancel().await
        };
        if let Err(e) = sent {
            debug!(error = %e, "ending the call");
        }
    });
}

fn ended_after_answer(reason: &TerminatedReason, local: Option<EndCause>) -> EndCause {
    match reason {
        TerminatedReason::UasBye => EndCause::RemoteHangup,
        TerminatedReason::UacBye => EndCause::LocalHangup,
        _ => local.unwrap_or(EndCause::RemoteHangup),
    }
}
