//! The carrier boundary (DESIGN §2). Everything that reaches a telephone network goes through
//! [`Carrier`]; everything the network tells us comes back as a [`CarrierEvent`] on the channel
//! the carrier was built with. The sandbox carrier is the default; SMPP and SIP adapters
//! implement the same trait.

mod clock;
mod sandbox;

use std::future::Future;
use std::pin::Pin;

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The carrier refused the submission for good (bad destination, barred, ...).
    Rejected(String),
    /// The carrier could not be reached or asked us to come back later.
    Unavailable(String),
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

pub trait Carrier: Send + Sync {
    fn name(&self) -> &'static str;
    /// Hands an SMS to the network; returns the carrier's reference.
    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>>;
    /// Starts a call; returns the carrier's reference.
    fn place_call(&self, call: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>>;
    fn hang_up(&self, telco_ref: String) -> BoxFuture<'_, Result<(), SubmitError>>;
}
