//! SIP signalling toward a carrier's trunk: registration, outbound and inbound calls.
//! The rest of the server sees calls by its own ids, numbers in E.164 and SDP as opaque
//! text; no SIP header leaves this crate. The SIP stack underneath is `rsipstack`
//! (docs/dependencies.md).

mod call;
mod inbound;
mod indialog;
pub mod number;
mod outbound;
mod register;
pub mod settings;
mod ua;

pub use call::{
    CallEvent, CallSignal, EndCause, InboundDecision, InboundInvite, InboundRouter, InviteError,
    OutboundInvite, RouteFuture, UriInvite,
};
pub use number::NumberFormat;
pub use settings::{SipSettings, Transport, Trunk};
pub use ua::{StartError, Ua};
