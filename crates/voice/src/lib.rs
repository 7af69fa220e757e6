//! The SIP call carrier: [`SipCarrier`] places and receives calls over the trunks of
//! `ami-sip`, carries their audio with `ami-media` (to the agent's WebSocket, or relayed to
//! a SIP URI as a back-to-back user agent), and reports every change of a call as a
//! [`ami_carrier::CarrierEvent::Call`] on the carrier's event channel, named by our call id.
//! SMS are not its business.
//!
//! Inbound calls are decided by the server through [`CallDirectory`], which records the
//! call before the caller is answered.

mod agent;
mod call;
mod carrier;
mod causes;
mod directory;
mod metrics;
mod router;
mod settings;

pub use carrier::{SipCarrier, StartError};
pub use causes::outcome;
pub use directory::{CallDirectory, DirectoryFuture, InboundRoute};
pub use metrics::{REQUESTED, VoiceMetrics};
pub use settings::VoiceSettings;

pub use ami_media::bridge::BridgeConfig;
pub use ami_media::counters::MediaCounters;
pub use ami_media::sdp::Codec;
pub use ami_sip::{NumberFormat, SipSettings, Transport, Trunk};
