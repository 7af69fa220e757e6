//! SIP signalling toward a carrier's trunk: registration, outbound and inbound calls.
//! The rest of the server sees calls by its own ids, numbers in E.164 and SDP as opaque
//! text; no SIP header leaves this crate. The SIP stack underneath is `rsipstack`
//! (docs/dependencies.md).
//!
//! What the network sees:
//! - An INVITE from an address no trunk lists in `allowed_sources` is answered 403 and
//!   never reaches the router (answered rather than dropped, so a misconfigured trunk
//!   shows at once).
//! - An INVITE whose called number cannot be read gets 404 without routing; the router's
//!   refusals go out with its code; a router slower than `route_timeout_secs` means 503.
//! - OPTIONS outside a dialog gets 200 (trunk keep-alives); other known methods outside a
//!   dialog 405; requests for unknown dialogs 481. Unparseable datagrams and methods the
//!   stack does not know are dropped.
//! - Inside a dialog, OPTIONS and INFO get 200 and a re-INVITE or UPDATE gets 200 with our
//!   current SDP (the session is kept as it is).
//!
//! The stack logs every message it sends and receives, numbers included, at `info` under
//! the `rsipstack` target: a log filter must hold that target at `warn`.

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
