//! Requests inside a live dialog that the call itself does not act on.

use rsipstack::dialog::dialog::DialogState;
use rsipstack::sip::{Header, Method, StatusCode};

/// OPTIONS and INFO get 200. A re-INVITE or UPDATE (session refresh, or an offer we do
/// not act on) gets 200 with our current SDP, so the session stays as it is. Anything else
/// is dropped unanswered, which the stack turns into 501.
pub(crate) async fn answer_in_dialog(state: DialogState, local_sdp: &str) {
    let (request, handle) = match state {
        DialogState::Options(_, request, handle) | DialogState::Info(_, request, handle) => {
            handle.reply(StatusCode::OK).await.ok();
            let _ = request;
            return;
        }
        DialogState::Updated(_, request, handle) => (request, handle),
        _ => return,
    };
    let with_sdp = request.method == Method::Invite || !request.body.is_empty();
    if with_sdp && !local_sdp.is_empty() {
        let headers = vec![Header::ContentType("application/sdp".into())];
        handle
            .respond(
                StatusCode::OK,
                Some(headers),
                Some(local_sdp.as_bytes().to_vec()),
            )
            .await
            .ok();
    } else {
        handle.reply(StatusCode::OK).await.ok();
    }
}
