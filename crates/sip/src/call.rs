//! The types the server sees: calls are named by its own ids, numbers are E.164, media
//! descriptions are opaque SDP text. No SIP header crosses this boundary.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// An outbound call to a number through a trunk.
#[derive(Debug, Clone)]
pub struct OutboundInvite {
    /// Our id for the call (`call_...`); every signal about it carries it.
    pub call_id: String,
    pub from_e164: String,
    pub to_e164: String,
    /// The trunk's name; none: the first trunk.
    pub trunk: Option<String>,
    pub sdp_offer: String,
}

/// An outbound call to a SIP URI (a customer's own SIP engine), bypassing trunks.
#[derive(Debug, Clone)]
pub struct UriInvite {
    pub call_id: String,
    /// `sip:user@host[:port][;transport=tcp]`.
    pub target: String,
    /// Shown as the caller's user part (an E.164 number, as is).
    pub from: String,
    pub sdp_offer: String,
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSignal {
    pub call_id: String,
    pub event: CallEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// Outbound: the far end is alerting (180/183). Sent at most once.
    Ringing,
    /// Outbound: the far end answered (2xx, already acknowledged).
    Answered { sdp_answer: String },
    /// Inbound: the caller acknowledged our 200 OK; the call is up.
    Connected,
    /// The call is over; the last signal of a call.
    Ended { cause: EndCause },
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndCause {
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// 603 Decline.
    Declined,
    /// Not answered: our ring timeout, or 408/480 (or 487 after our timeout's CANCEL).
    NoAnswer,
    /// We hung up before the answer (CANCEL sent).
    Cancelled,
    /// Inbound: the caller gave up before our answer (CANCEL received).
    CallerCancelled,
    /// The far end hung up after the answer (BYE received).
    RemoteHangup,
    /// We hung up after the answer (BYE sent), or the user agent shut down.
    LocalHangup,
    /// Inbound: no ACK came for our 200 OK.
    AckTimeout,
    /// No response at all, or the request could not be sent.
    Unreachable { reason: String },
    /// Any other final response (3xx to 6xx, a second digest challenge included).
    Failed { code: u16, reason: String },
}

impl EndCause {
    /// The cause of a final non-2xx response to an outbound INVITE.
    pub(crate) fn from_status(code: u16, reason: &str) -> Self {
        match code {
            486 | 600 => EndCause::Busy,
            603 => EndCause::Declined,
            408 | 480 => EndCause::NoAnswer,
            _ => EndCause::Failed {
                code,
                reason: reason.to_string(),
            },
        }
    }
}

/// An INVITE from a trunk, for the server to decide on.
#[derive(Debug, Clone)]
pub struct InboundInvite {
    /// The trunk it came from (by source address).
    pub trunk: String,
    /// None for withheld or non-numeric callers (`anonymous`).
    pub from_e164: Option<String>,
    pub to_e164: String,
    /// The SIP Call-ID, kept as the call's `telco_ref`.
    pub sip_call_id: String,
    /// Empty when the INVITE carried no offer.
    pub sdp_offer: String,
    pub source: SocketAddr,
}

/// The server's answer to an inbound INVITE.
#[derive(Debug, Clone)]
pub enum InboundDecision {
    /// Sent as the final response (404, 403, 480, 486, 488, 503...).
    Refuse { code: u16, reason: String },
    /// 200 OK with this SDP; the call is then named `call_id` in signals.
    Answer { call_id: String, sdp_answer: String },
}

pub type RouteFuture<'a> = Pin<Box<dyn Future<Output = InboundDecision> + Send + 'a>>;

/// Decides on inbound calls. Called once per new INVITE from an allowed source; it should
/// commit the call to the store before answering `Answer`.
pub trait InboundRouter: Send + Sync + 'static {
    fn route(&self, invite: InboundInvite) -> RouteFuture<'_>;
}

/// Why an outbound call could not be started. Once started, failures are `Ended` signals.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("no trunk named `{0}`")]
    UnknownTrunk(String),
    #[error("no trunk is configured")]
    NoTrunk,
    #[error("`{0}` is not an E.164 number")]
    BadNumber(String),
    #[error("`{0}` is not a usable SIP URI")]
    BadUri(String),
    #[error("a call with id `{0}` is already live")]
    DuplicateCallId(String),
    #[error("the user agent is shutting down")]
    ShuttingDown,
    #[error("the SIP stack refused the request: {0}")]
    Stack(String),
}
