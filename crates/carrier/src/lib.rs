//! The carrier boundary (DESIGN §2). Everything that reaches a telephone network goes through
//! [`Carrier`]; everything the network tells us comes back as an [`Inbound`] on the channel
//! the carrier was built with, carrying an [`Ack`] that the server answers only once the
//! event is committed. The sandbox carrier is the default; SMPP and SIP adapters implement
//! the same trait.

mod ack;
mod channels;
mod clock;
mod record;
mod sandbox;

use std::future::Future;
use std::pin::Pin;

pub use ack::{Ack, Inbound};
pub use channels::Channels;
pub use record::submission_counts;
pub use sandbox::{Sandbox, SandboxTimings, Submission};

use ami_core::delivery::{CallStatus, SmsStatus};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone)]
pub struct OutboundSms {
    /// Our message id; carriers echo it in delivery reports.
    pub id: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub segments: u32,
}

#[derive(Debug, Clone)]
pub struct OutboundCall {
    pub id: String,
    pub from: String,
    pub to: String,
    pub callback_sip_uri: String,
    /// Where the call's audio goes once answered: the agent's WebSocket. None: the carrier
    /// bridges the call to `callback_sip_uri`.
    pub agent: Option<AgentStream>,
}

/// The agent's media stream of a call: its voice URL and the MID's signing secret, with the
/// ids the stream's `start` frame names.
#[derive(Clone)]
pub struct AgentStream {
    /// `ws://` or `wss://`; checked against the SSRF guard when the stream opens.
    pub voice_url: String,
    /// `whsec_...`: signs the WebSocket upgrade.
    pub signing_secret: String,
    pub account_id: String,
    pub mid_id: String,
}

impl std::fmt::Debug for AgentStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentStream")
            .field("voice_url", &self.voice_url)
            .field("signing_secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("mid_id", &self.mid_id)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The carrier refused the submission for good (bad destination, barred, ...).
    Rejected(String),
    /// The carrier did not take it: it could not be reached, or asked us to come back later.
    /// Submitting again cannot make a duplicate.
    Unavailable(String),
    /// The submission may or may not have reached the network (no answer in time, the
    /// connection dropped after sending). Submitting again could make a duplicate.
    Unknown(String),
    /// No connection to the network can take it now (every route is down). Nothing was sent:
    /// it waits, still queued, until a connection is back or its validity ends.
    Down(String),
}

/// What a carrier knows of one of our submissions, asked after an attempt whose outcome we
/// never recorded (a crash, a lost lease, a timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The network has it, under this reference.
    Found(String),
    /// The network certainly does not have it: submitting it cannot make a duplicate.
    NotFound,
    /// The carrier cannot tell.
    Unknown,
}

/// What the network reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierEvent {
    Sms {
        msg_id: String,
        telco_ref: String,
        status: SmsStatus,
        error: Option<String>,
    },
    /// A delivery report that names only the carrier's own reference (SMPP receipts).
    Receipt {
        telco_ref: String,
        status: SmsStatus,
        error: Option<String>,
    },
    InboundSms {
        from: String,
        to: String,
        body: String,
        telco_ref: String,
    },
    Call {
        call_id: String,
        telco_ref: String,
        status: CallStatus,
        hangup_cause: Option<String>,
    },
    InboundCall {
        from: String,
        to: String,
        telco_ref: String,
    },
}

impl CarrierEvent {
    /// A short name of the event's kind, for logs and the operator's list of parked events.
    pub fn kind(&self) -> &'static str {
        match self {
            CarrierEvent::Sms { .. } => "sms_status",
            CarrierEvent::Receipt { .. } => "sms_receipt",
            CarrierEvent::InboundSms { .. } => "sms_inbound",
            CarrierEvent::Call { .. } => "call_status",
            CarrierEvent::InboundCall { .. } => "call_inbound",
        }
    }
}

pub trait Carrier: Send + Sync {
    fn name(&self) -> &'static str;

    /// Whether [`Carrier::find_sms`] and [`Carrier::find_call`] can answer `Found` or
    /// `NotFound`. A carrier that can is asked after every attempt whose outcome was not
    /// recorded, so the dispatcher needs no record of its own of which attempts started; one
    /// that cannot gets that record before each submission, and an attempt that may have
    /// started is never submitted again.
    fn looks_up(&self) -> bool {
        false
    }

    /// Whether its delivery reports name only its own reference ([`CarrierEvent::Receipt`]):
    /// then the dispatcher records which message each reference belongs to at the hand-off.
    fn reports_by_reference(&self) -> bool {
        false
    }

    /// Hands an SMS to the network; returns the carrier's reference.
    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>>;

    /// Hands several SMS to the network; one answer per message, in order.
    fn submit_sms_batch(
        &self,
        batch: Vec<OutboundSms>,
    ) -> BoxFuture<'_, Vec<Result<String, SubmitError>>> {
        Box::pin(futures_util::future::join_all(
            batch.into_iter().map(|sms| self.submit_sms(sms)),
        ))
    }

    /// Whether the network has our SMS `msg_id`.
    fn find_sms(&self, _msg_id: &str) -> BoxFuture<'_, Lookup> {
        Box::pin(async { Lookup::Unknown })
    }

    /// Starts a call; returns the carrier's reference.
    fn place_call(&self, call: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>>;

    /// Whether the network has our call `call_id`.
    fn find_call(&self, _call_id: &str) -> BoxFuture<'_, Lookup> {
        Box::pin(async { Lookup::Unknown })
    }

    /// Drops a call. Asking twice is harmless.
    fn hang_up(&self, telco_ref: String) -> BoxFuture<'_, Result<(), SubmitError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_secret_never_shows_in_debug() {
        let stream = AgentStream {
            voice_url: "wss://agent.example/voice".into(),
            signing_secret: "whsec_c2VjcmV0LXRoYXQtbXVzdC1ub3Qtc2hvdw==".into(),
            account_id: "acct_1".into(),
            mid_id: "mid_1".into(),
        };
        let shown = format!("{stream:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("wss://agent.example/voice"));
    }
}
