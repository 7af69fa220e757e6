//! Live call audio: SDP offer/answer, RTP, G.711, RFC 4733 DTMF, and the bridge
//! between a call's RTP and the agent's WebSocket. Signalling is elsewhere: this crate
//! takes and gives SDP bodies as strings.

pub mod agent;
pub mod bridge;
pub mod counters;
pub mod dtmf;
pub mod frames;
pub mod g711;
pub mod leg;
pub mod playout;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;
