//! The voice benchmark's agent: a WebSocket server that echoes every `media` frame of a
//! call back at once, and notes when each one arrived.
//!
//! Load calls carry SIPp's looped stream file, whose 20 ms frame k begins with the byte
//! k mod 256 (`stream_file`), so the agent can tell lost frames and late ones from the
//! payload alone. The latency probe's call carries the probe's packet index instead
//! (`rtp_probe`), and its arrival is matched with the moment the packet was sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// Samples (bytes of μ-law) in one 20 ms frame.
pub const FRAME_BYTES: usize = 160;
/// Frames of the looped stream file: 5.12 s.
const LOOP_FRAMES: usize = 256;
/// A frame is late when it arrives more than this after its slot, the slot taken from the
/// earliest arrival of the second before it (a receiver's jitter buffer of two frames).
pub const LATE_AFTER_MS: f64 = 40.0;
/// Frames in the window that sets a frame's slot.
const SLOT_WINDOW: usize = 50;

/// SIPp's stream file: frame k is μ-law silence (0xFF) led by the byte k.
pub fn stream_file() -> Vec<u8> {
    let mut file = vec![0xFF; LOOP_FRAMES * FRAME_BYTES];
    for (k, frame) in file.chunks_mut(FRAME_BYTES).enumerate() {
        frame[0] = k as u8;
    }
    file
}

/// What one load call's frames showed.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallFrames {
    pub received: u64,
    pub lost: u64,
    pub late: u64,
}

impl CallFrames {
    /// Lost and late frames from the arrivals of one call, in arrival order.
    fn from_arrivals(arrivals: &[(Instant, u8)]) -> CallFrames {
        let Some(&(first_at, first_byte)) = arrivals.first() else {
            return CallFrames::default();
        };
        let mut out = CallFrames {
            received: arrivals.len() as u64,
            ..CallFrames::default()
        };
        // The frame index, unwrapped from the leading byte; offset = arrival - slot.
        let mut index: u64 = 0;
        let mut prev = first_byte;
        let mut offsets: Vec<f64> = Vec::with_capacity(arrivals.len());
        for &(at, byte) in arrivals {
            let step = byte.wrapping_sub(prev) as u64;
            index += step;
            prev = byte;
            let offset = at.duration_since(first_at).as_secs_f64() * 1e3 - index as f64 * 20.0;
            let floor = offsets
                .iter()
                .rev()
                .take(SLOT_WINDOW)
                .copied()
                .fold(offset, f64::min);
            if offset - floor > LATE_AFTER_MS {
                out.late += 1;
            }
            offsets.push(offset);
        }
        out.lost = (index + 1).saturating_sub(out.received);
        out
    }
}

/// The probe's packets: when each was sent, and how long each took to reach the agent.
#[derive(Default)]
pub struct Probe {
    pub sent: Mutex<HashMap<u32, Instant>>,
    pub latencies: Mutex<Vec<Duration>>,
}

/// What the agent saw, shared with the scenarios.
#[derive(Default)]
pub struct Stats {
    /// Calls whose `start` arrived and whose socket is still open.
    pub live: AtomicUsize,
    /// Load calls ended since the last `take_calls`.
    calls: Mutex<Vec<CallFrames>>,
    /// The number the probe calls; its calls feed `probe`.
    pub probe_number: Mutex<String>,
    pub probe: Probe,
}

impl Stats {
    pub fn take_calls(&self) -> Vec<CallFrames> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Listens on a free loopback port; returns its address.
pub async fn start(stats: Arc<Stats>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve(tcp, stats.clone()));
        }
    });
    Ok(addr)
}

async fn serve(tcp: TcpStream, stats: Arc<Stats>) {
    let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut tx, mut rx) = socket.split();
    let mut probe = false;
    let mut started = false;
    let mut arrivals: Vec<(Instant, u8)> = Vec::with_capacity(4096);
    while let Some(Ok(message)) = rx.next().await {
        let at = Instant::now();
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                break;
            }
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match frame["event"].as_str() {
            Some("start") => {
                let to = frame["start"]["to"].as_str().unwrap_or_default();
                probe = *stats
                    .probe_number
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    == to;
                started = true;
                stats.live.fetch_add(1, Ordering::SeqCst);
            }
            Some("media") => {
                let Some(payload) = frame["media"]["payload"].as_str() else {
                    continue;
                };
                let Ok(audio) = STANDARD.decode(payload) else {
                    continue;
                };
                if probe {
                    record_probe(&stats.probe, &audio, at);
                } else if let Some(&first) = audio.first() {
                    arrivals.push((at, first));
                }
                let echo = json!({"event": "media", "media": {"payload": payload}});
                if tx.send(Message::text(echo.to_string())).await.is_err() {
                    break;
                }
            }
            Some("stop") => break,
            _ => {}
        }
    }
    if started {
        stats.live.fetch_sub(1, Ordering::SeqCst);
        if !probe {
            let frames = CallFrames::from_arrivals(&arrivals);
            stats
                .calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(frames);
        }
    }
}

fn record_probe(probe: &Probe, audio: &[u8], at: Instant) {
    let Some(index) = audio.get(..4).and_then(|b| b.try_into().ok()) else {
        return;
    };
    let sent = probe
        .sent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&u32::from_be_bytes(index))
        .copied();
    if let Some(sent) = sent {
        probe
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(at.duration_since(sent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrivals(times_ms: &[(u64, u8)]) -> Vec<(Instant, u8)> {
        let t0 = Instant::now();
        times_ms
            .iter()
            .map(|&(ms, b)| (t0 + Duration::from_millis(ms), b))
            .collect()
    }

    #[test]
    fn a_gap_in_the_leading_bytes_counts_lost_frames_across_the_wrap() {
        let a = arrivals(&[(0, 254), (20, 255), (80, 2), (100, 3)]);
        let f = CallFrames::from_arrivals(&a);
        assert_eq!((f.received, f.lost, f.late), (4, 2, 0));
    }

    #[test]
    fn a_frame_behind_its_slot_by_more_than_the_limit_is_late() {
        let a = arrivals(&[(0, 0), (20, 1), (100, 2), (100, 3), (100, 4), (100, 5)]);
        let f = CallFrames::from_arrivals(&a);
        assert_eq!((f.received, f.lost, f.late), (6, 0, 1));
    }
}
