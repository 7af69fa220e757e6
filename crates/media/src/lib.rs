//! Live call audio: SDP offer/answer, RTP, G.711, RFC 4733 DTMF, and the bridge
//! between a call's RTP and the agent's WebSocket. Signalling is elsewhere: this crate
//! takes and gives SDP bodies as strings.

pub mod dtmf;
pub mod g711;
pub mod rtp;
pub mod sdp;
