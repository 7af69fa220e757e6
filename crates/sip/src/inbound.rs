//! One inbound call: the source is checked against the trunks, the router decides, and an
//! answered call is followed to its end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rsipstack::dialog::dialog::{DialogState, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::call::{CallEvent, EndCause, InboundDecision, InboundInvite};
use crate::indialog::answer_in_dialog;
use crate::settings::Trunk;
use crate::ua::Inner;

pub(crate) async fn run(ua: Arc<Inner>, mut tx: Transaction) {
    let source = tx
        .connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok());
    let trunk = source.and_then(|s| ua.settings.trunk_for_source(s.ip()));
    let (Some(source), Some(trunk)) = (source, trunk) else {
        // Answered rather than dropped, so that a misconfigured trunk shows up at once.
        info!(?source, "INVITE from an address no trunk allows: 403");
        tx.reply(StatusCode::Forbidden).await.ok();
        return;
    };
    let Some((invite, called_user)) = read_invite(&tx, trunk, source) else {
        tx.reply(StatusCode::NotFound).await.ok();
        return;
    };
    let contact = ua.contact(&called_user);
    let (states, mut receiver) = ua.dialogs.new_dialog_state_channel();
    let dialog = match ua
        .dialogs
        .get_or_create_server_invite(&tx, states, None, contact)
    {
        Ok(dialog) => dialog,
        Err(e) => {
            debug!(error = %e, "no dialog for the INVITE");
            tx.reply(StatusCode::ServerInternalError).await.ok();
            return;
        }
    };
    // The dialog drives the INVITE transaction: 100 Trying now, then our final
    // response, then the ACK or a CANCEL.
    let mut driver = dialog.clone();
    tokio::spawn(async move {
        if let Err(e) = driver.handle(&mut tx).await {
            debug!(error = %e, "inbound INVITE transaction");
        }
    });

    let decision = tokio::time::timeout(ua.settings.route_timeout(), ua.router.route(invite)).await;
    let decision = match decision {
        Ok(decision) => decision,
        Err(_) => InboundDecision::Refuse {
            code: 503,
            reason: "routing timed out".to_string(),
        },
    };
    let (call_id, sdp_answer) = match decision {
        InboundDecision::Refuse { code, reason } => {
            let code = if (300..=699).contains(&code) {
                code
            } else {
                500
            };
            dialog
                .reject(Some(StatusCode::from(code)), Some(reason))
                .ok();
            ua.dialogs.remove_dialog(&dialog.id());
            return;
        }
        InboundDecision::Answer {
            call_id,
            sdp_answer,
        } => (call_id, sdp_answer),
    };
    let hangup = CancellationToken::new();
    let refused = if ua.stopping.load(Ordering::SeqCst) {
        Some((StatusCode::ServiceUnavailable, "shutting down"))
    } else if !ua.add_call(&call_id, hangup.clone()) {
        Some((StatusCode::ServerInternalError, "duplicate call id"))
    } else {
        None
    };
    if let Some((code, reason)) = refused {
        dialog.reject(Some(code), Some(reason.to_string())).ok();
        ua.dialogs.remove_dialog(&dialog.id());
        ua.signal(
            &call_id,
            CallEvent::Ended {
                cause: EndCause::Unreachable {
                    reason: reason.to_string(),
                },
            },
        )
        .await;
        return;
    }
    let cause = follow(&ua, &call_id, &dialog, &mut receiver, hangup, &sdp_answer).await;
    debug!(%call_id, ?cause, "inbound call ended");
    ua.dialogs.remove_dialog(&dialog.id());
    ua.remove_call(&call_id);
    ua.signal(&call_id, CallEvent::Ended { cause }).await;
}

/// The numbers, offer and Call-ID of an INVITE; `None` when the called number cannot be
/// read. The called number is the Request-URI's user part, else the To header's.
fn read_invite(
    tx: &Transaction,
    trunk: &Trunk,
    source: SocketAddr,
) -> Option<(InboundInvite, String)> {
    let request = &tx.original;
    let format = &trunk.number_format;
    let to_uri_user = request
        .to_header()
        .ok()
        .and_then(|h| h.typed().ok())
        .and_then(|to| to.uri.user().map(str::to_string));
    let (to_e164, called_user) = [request.uri.user().map(str::to_string), to_uri_user]
        .into_iter()
        .flatten()
        .find_map(|user| format.from_trunk(&user).map(|n| (n, user)))?;
    let from_e164 = request
        .from_header()
        .ok()
        .and_then(|h| h.typed().ok())
        .and_then(|from| from.uri.user().and_then(|u| format.from_trunk(u)));
    let sip_call_id = request.call_id_header().ok()?.value().to_string();
    Some((
        InboundInvite {
            trunk: trunk.name.clone(),
            from_e164,
            to_e164,
            sip_call_id,
            sdp_offer: String::from_utf8_lossy(&request.body).into_owned(),
            source,
        },
        called_user,
    ))
}

/// Answers with 200 OK and follows the dialog until it ends.
async fn follow(
    ua: &Inner,
    call_id: &str,
    dialog: &InviteDialog,
    states: &mut rsipstack::dialog::dialog::DialogStateReceiver,
    hangup: CancellationToken,
    sdp_answer: &str,
) -> EndCause {
    // The caller may have cancelled while the router decided.
    if matches!(dialog.state(), DialogState::Terminated(..)) {
        return EndCause::CallerCancelled;
    }
    let headers = vec![Header::ContentType("application/sdp".into())];
    if let Err(e) = dialog.accept(Some(headers), Some(sdp_answer.as_bytes().to_vec())) {
        return EndCause::Unreachable {
            reason: e.to_string(),
        };
    }
    let mut connected = false;
    let mut local: Option<EndCause> = None;
    loop {
        tokio::select! {
            state = states.recv() => match state {
                Some(DialogState::Confirmed(..)) if !connected => {
                    connected = true;
                    ua.signal(call_id, CallEvent::Connected).await;
                }
                Some(DialogState::Terminated(_, reason)) => {
                    return match reason {
                        TerminatedReason::UacBye => EndCause::RemoteHangup,
                        TerminatedReason::UasBye => EndCause::LocalHangup,
                        TerminatedReason::UacCancel => EndCause::CallerCancelled,
                        TerminatedReason::Timeout if !connected => EndCause::AckTimeout,
                        _ => local.unwrap_or(EndCause::RemoteHangup),
                    };
                }
                Some(other) => answer_in_dialog(other, sdp_answer).await,
                None => return local.unwrap_or(EndCause::RemoteHangup),
            },
            _ = hangup.cancelled(), if local.is_none() => {
                local = Some(EndCause::LocalHangup);
                let dialog = dialog.clone();
                tokio::spawn(async move {
                    if let Err(e) = dialog.bye().await {
                        debug!(error = %e, "BYE");
                    }
                });
            }
        }
    }
}
