//! What the server tells the carrier about a call arriving on one of its numbers.

use std::future::Future;
use std::pin::Pin;

/// Where an inbound call goes. The server has recorded the call (`ringing`) for `Agent` and
/// `Bridge`; the carrier reports everything after that as events on `call_id`.
#[derive(Clone, PartialEq, Eq)]
pub enum InboundRoute {
    /// Answer, and stream the audio to the agent's WebSocket.
    Agent {
        call_id: String,
        mid_id: String,
        account_id: String,
        voice_url: String,
        signing_secret: String,
    },
    /// Call `sip_uri` and, once it answers, answer the caller and relay the audio.
    Bridge { call_id: String, sip_uri: String },
    /// Refuse with this SIP final response (404 unknown number, 403 or 480 not active...).
    Refuse { code: u16, reason: String },
}

impl std::fmt::Debug for InboundRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InboundRoute::Agent {
                call_id,
                mid_id,
                voice_url,
                ..
            } => f
                .debug_struct("Agent")
                .field("call_id", call_id)
                .field("mid_id", mid_id)
                .field("voice_url", voice_url)
                .finish_non_exhaustive(),
            InboundRoute::Bridge { call_id, sip_uri } => f
                .debug_struct("Bridge")
                .field("call_id", call_id)
                .field("sip_uri", sip_uri)
                .finish(),
            InboundRoute::Refuse { code, reason } => f
                .debug_struct("Refuse")
                .field("code", code)
                .field("reason", reason)
                .finish(),
        }
    }
}

pub type DirectoryFuture<'a> = Pin<Box<dyn Future<Output = InboundRoute> + Send + 'a>>;

/// The server's side of inbound calls.
pub trait CallDirectory: Send + Sync + 'static {
    /// Decides on a call from `from` (None: withheld) to `to` (E.164); `telco_ref` is the
    /// SIP Call-ID, the same for a repeated INVITE.
    fn route_inbound(
        &self,
        from: Option<String>,
        to: String,
        telco_ref: String,
    ) -> DirectoryFuture<'_>;
}
