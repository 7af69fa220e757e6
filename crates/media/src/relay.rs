//! Media between two RTP legs, for a call bridged to the customer's own SIP engine
//! (back-to-back): audio is transcoded when the legs negotiated different codecs and
//! telephone-events are forwarded. Each leg latches on its own, so only packets of the
//! two latched peers are relayed, each to the other.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bridge::{BridgeControl, stopped};
use crate::g711;
use crate::leg::{Incoming, RtpLeg};
use crate::sdp::Codec;

/// Why a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEndReason {
    /// Stopped from our side.
    Stopped,
    /// Neither leg sent RTP for the timeout.
    MediaTimeout,
    /// A socket failed.
    MediaError(String),
}

/// The outcome of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayEnd {
    /// Why it ended.
    pub reason: RelayEndReason,
    /// Packets relayed from the first leg to the second.
    pub a_to_b: u64,
    /// Packets relayed from the second leg to the first.
    pub b_to_a: u64,
    /// Packets dropped on either leg for coming from a stranger.
    pub stranger_packets: u64,
}

/// Audio from one codec to another.
pub fn transcode(payload: Vec<u8>, from: Option<Codec>, to: Option<Codec>) -> Vec<u8> {
    match (from, to) {
        (Some(Codec::Pcmu), Some(Codec::Pcma)) => g711::ulaw_to_alaw(&payload),
        (Some(Codec::Pcma), Some(Codec::Pcmu)) => g711::alaw_to_ulaw(&payload),
        _ => payload,
    }
}

/// Starts relaying between `a` and `b` as its own task. `media_timeout`: the relay ends
/// when neither leg has sent anything for that long.
pub fn spawn_relay(
    a: RtpLeg,
    b: RtpLeg,
    media_timeout: Option<Duration>,
) -> (BridgeControl, JoinHandle<RelayEnd>) {
    let (control, rx) = BridgeControl::new();
    (control, tokio::spawn(run_relay(a, b, media_timeout, rx)))
}

async fn forward(from: &RtpLeg, to: &mut RtpLeg, incoming: Incoming) -> Result<(), String> {
    match incoming {
        Incoming::Audio(payload) => {
            let payload = transcode(payload, from.codec(), to.codec());
            to.send_audio(&payload).await
        }
        Incoming::Event {
            timestamp, payload, ..
        } => to.send_event(timestamp, &payload).await,
    }
    .map_err(|e| e.to_string())
}

async fn run_relay(
    mut a: RtpLeg,
    mut b: RtpLeg,
    media_timeout: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) -> RelayEnd {
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    let mut last = Instant::now();
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let reason = loop {
        tokio::select! {
            () = stopped(&mut stop) => break RelayEndReason::Stopped,
            _ = check.tick() => {
                if media_timeout.is_some_and(|limit| last.elapsed() > limit) {
                    break RelayEndReason::MediaTimeout;
                }
            }
            received = a.recv() => {
                let result = match received {
                    Ok(incoming) => forward(&a, &mut b, incoming).await,
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = result {
                    break RelayEndReason::MediaError(e);
                }
                a_to_b += 1;
                last = Instant::now();
            }
            received = b.recv() => {
                let result = match received {
                    Ok(incoming) => forward(&b, &mut a, incoming).await,
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = result {
                    break RelayEndReason::MediaError(e);
                }
                b_to_a += 1;
                last = Instant::now();
            }
        }
    };
    RelayEnd {
        reason,
        a_to_b,
        b_to_a,
        stranger_packets: a.stats().stranger + b.stats().stranger,
    }
}
