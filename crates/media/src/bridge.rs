//! One call's bridge: the caller's RTP leg joined to the agent's WebSocket.
//!
//! Caller audio goes to the agent as it arrives (one `media` frame per packet, in
//! μ-law); the agent's audio waits in a bounded queue and leaves as RTP paced at 20 ms.
//! Writes to the agent go through a small bounded channel to a writer task, so a slow
//! agent never delays the RTP pacing: when the channel is full frames are dropped, and
//! when one write stays blocked for `write_stall` the agent is gone.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::agent::{AgentTarget, connect};
use crate::counters::MediaCounters;
use crate::frames::{AgentFrame, CallInfo, FrameWriter, parse_agent_frame};
use crate::g711;
use crate::leg::{FRAME_SAMPLES, Incoming, RtpLeg};
use crate::playout::{Playout, ULAW_SILENCE};
use crate::sdp::Codec;

/// Frames waiting for the writer task (about a second of media).
const WRITE_QUEUE: usize = 64;

/// Limits of one bridge.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// TCP + TLS + upgrade to the agent.
    pub connect_timeout: Duration,
    /// Agent audio queued at most, in milliseconds; the excess is dropped.
    pub queue_limit_ms: u32,
    /// Malformed or unknown frames from the agent tolerated before the call ends.
    pub max_bad_frames: u32,
    /// How long one write to the agent may block before the agent counts as gone.
    pub write_stall: Duration,
    /// No RTP from the caller for this long ends the call (`None`: never).
    pub media_timeout: Option<Duration>,
    /// The process's totals the bridge (and its leg) adds to, if any.
    pub totals: Option<Arc<MediaCounters>>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            queue_limit_ms: 10_000,
            max_bad_frames: 20,
            write_stall: Duration::from_secs(3),
            media_timeout: Some(Duration::from_secs(30)),
            totals: None,
        }
    }
}

/// Why a bridge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The agent sent `stop` or closed the socket.
    AgentHangup,
    /// The agent's socket failed or stopped reading.
    AgentGone(String),
    /// The agent could not be reached.
    AgentUnreachable(String),
    /// The agent sent more than `max_bad_frames` frames we could not use.
    AgentProtocol,
    /// Stopped from our side (hangup, kill-switch, budget).
    Stopped,
    /// No RTP from the caller for `media_timeout`.
    MediaTimeout,
    /// The RTP socket failed.
    MediaError(String),
}

/// The outcome of a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeEnd {
    /// Why it ended.
    pub reason: EndReason,
    /// Caller audio packets forwarded to the agent.
    pub frames_in: u64,
    /// RTP packets of agent audio sent to the caller.
    pub frames_out: u64,
    /// Agent audio messages cut by the queue limit, and frames to the agent dropped
    /// because it was not reading.
    pub late_or_dropped: u64,
    /// Frames from the agent that were ignored.
    pub bad_frames: u64,
    /// RTP packets dropped because they came from a source other than the caller's.
    pub stranger_packets: u64,
}

/// Stops a running bridge. Dropping every handle stops it too.
#[derive(Debug, Clone)]
pub struct BridgeControl {
    stop: watch::Sender<bool>,
}

impl BridgeControl {
    pub(crate) fn new() -> (Self, watch::Receiver<bool>) {
        let (stop, rx) = watch::channel(false);
        (Self { stop }, rx)
    }

    /// Ends the call's media: the agent gets `stop`, then the socket is closed.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the bridge of one call as its own task.
pub fn spawn_bridge(
    leg: RtpLeg,
    target: AgentTarget,
    call: CallInfo,
    config: BridgeConfig,
) -> (BridgeControl, JoinHandle<BridgeEnd>) {
    let (control, rx) = BridgeControl::new();
    let handle = tokio::spawn(run_bridge(leg, target, call, config, rx));
    (control, handle)
}

#[derive(Default)]
struct Counters {
    frames_in: u64,
    frames_out: u64,
    late_or_dropped: u64,
    bad_frames: u64,
    totals: Option<Arc<MediaCounters>>,
}

impl Counters {
    fn total(&self, which: impl Fn(&MediaCounters) -> &std::sync::atomic::AtomicU64) {
        if let Some(t) = &self.totals {
            MediaCounters::add(which(t), 1);
        }
    }
}

pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A closed channel (every control dropped) stops the bridge as well.
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the bridge of one call until it ends.
pub async fn run_bridge(
    mut leg: RtpLeg,
    target: AgentTarget,
    call: CallInfo,
    config: BridgeConfig,
    mut stop: watch::Receiver<bool>,
) -> BridgeEnd {
    let mut counters = Counters {
        totals: config.totals.clone(),
        ..Counters::default()
    };
    if let Some(totals) = &config.totals {
        leg.count_into(totals.clone());
    }
    let mut frames = FrameWriter::new(call);
    let connected = frames.connected();
    let start = frames.start();
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let stream_id = frames.call().stream_id.clone();

    // Connect, while the caller's packets are read (and dropped) so no stale audio
    // piles up in the socket.
    let connecting = connect(
        &target,
        &stream_id,
        &start,
        now_unix,
        config.connect_timeout,
    );
    tokio::pin!(connecting);
    let socket = loop {
        tokio::select! {
            result = &mut connecting => match result {
                Ok(socket) => break socket,
                Err(e) => return end(EndReason::AgentUnreachable(e.to_string()), &counters, &leg),
            },
            received = leg.recv() => if let Err(e) = received {
                return end(EndReason::MediaError(e.to_string()), &counters, &leg);
            },
            () = stopped(&mut stop) => return end(EndReason::Stopped, &counters, &leg),
        }
    };
    let (sink, mut agent_rx) = socket.split();
    let (out_tx, out_rx) = mpsc::channel::<Message>(WRITE_QUEUE);
    let (failed_tx, mut failed_rx) = oneshot::channel::<String>();
    let writer = tokio::spawn(write_to_agent(sink, out_rx, failed_tx, config.write_stall));
    for frame in [connected, start.clone()] {
        send(&out_tx, frame, &mut counters);
    }

    let began = Instant::now();
    let mut last_rtp = Instant::now();
    let mut playout = Playout::new(config.queue_limit_ms);
    // Missed ticks are sent in a burst (tokio's default): the RTP timestamps stay in step
    // with the wall clock after a stall, which the far end's jitter buffer expects.
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let silence = vec![ULAW_SILENCE; FRAME_SAMPLES];

    let reason = loop {
        tokio::select! {
            () = stopped(&mut stop) => {
                send(&out_tx, frames.stop(), &mut counters);
                break EndReason::Stopped;
            }
            failure = &mut failed_rx => {
                break EndReason::AgentGone(failure.unwrap_or_else(|_| "writer ended".into()));
            }
            _ = ticker.tick() => {
                if let Some(limit) = config.media_timeout
                    && last_rtp.elapsed() > limit
                {
                    send(&out_tx, frames.stop(), &mut counters);
                    break EndReason::MediaTimeout;
                }
                let tick = playout.tick();
                let ulaw = tick.frame.as_deref().unwrap_or(&silence);
                let payload = match leg.codec() {
                    Some(Codec::Pcma) => g711::ulaw_to_alaw(ulaw),
                    _ => ulaw.to_vec(),
                };
                if let Err(e) = leg.send_audio(&payload).await {
                    break EndReason::MediaError(e.to_string());
                }
                if tick.frame.is_some() {
                    counters.frames_out += 1;
                }
                for name in tick.marks {
                    send(&out_tx, frames.mark(&name), &mut counters);
                }
            }
            received = leg.recv() => match received {
                Ok(Incoming::Audio(payload)) => {
                    last_rtp = Instant::now();
                    let ulaw = match leg.codec() {
                        Some(Codec::Pcma) => g711::alaw_to_ulaw(&payload),
                        _ => payload,
                    };
                    let ms = began.elapsed().as_millis() as u64;
                    send(&out_tx, frames.media(&ulaw, ms), &mut counters);
                    counters.frames_in += 1;
                }
                Ok(Incoming::Event { digit, .. }) => {
                    last_rtp = Instant::now();
                    if let Some(digit) = digit {
                        send(&out_tx, frames.dtmf(digit), &mut counters);
                    }
                }
                Err(e) => break EndReason::MediaError(e.to_string()),
            },
            message = agent_rx.next() => {
                if let Some(Ok(Message::Text(_) | Message::Binary(_))) = &message {
                    counters.total(|t| &t.agent_frames_in);
                }
                let text = match message {
                    None => break EndReason::AgentGone("socket ended".into()),
                    Some(Err(e)) => break EndReason::AgentGone(e.to_string()),
                    Some(Ok(Message::Close(_))) => break EndReason::AgentHangup,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Binary(_))) => None,
                    Some(Ok(Message::Text(text))) => Some(text),
                };
                match text.as_deref().map(parse_agent_frame) {
                    Some(Ok(AgentFrame::Media(audio))) => {
                        if playout.push_audio(audio) > 0 {
                            counters.late_or_dropped += 1;
                        }
                    }
                    Some(Ok(AgentFrame::Mark(name))) => playout.push_mark(name),
                    Some(Ok(AgentFrame::Clear)) => {
                        for name in playout.clear() {
                            send(&out_tx, frames.mark(&name), &mut counters);
                        }
                    }
                    Some(Ok(AgentFrame::Stop)) => break EndReason::AgentHangup,
                    None | Some(Err(_)) => {
                        counters.bad_frames += 1;
                        if counters.bad_frames > u64::from(config.max_bad_frames) {
                            send(&out_tx, frames.stop(), &mut counters);
                            break EndReason::AgentProtocol;
                        }
                    }
                }
            }
        }
    };

    // Close: what is queued (at most `stop`) goes first, then the close frame; the writer
    // gets a short grace, then is cut off.
    let _ = out_tx.try_send(Message::Close(None));
    drop(out_tx);
    let abort = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
    end(reason, &counters, &leg)
}

fn send(out: &mpsc::Sender<Message>, frame: String, counters: &mut Counters) {
    if out.try_send(Message::text(frame)).is_err() {
        counters.late_or_dropped += 1;
        counters.total(|t| &t.agent_frames_dropped);
    } else {
        counters.total(|t| &t.agent_frames_out);
    }
}

fn end(reason: EndReason, c: &Counters, leg: &RtpLeg) -> BridgeEnd {
    BridgeEnd {
        reason,
        frames_in: c.frames_in,
        frames_out: c.frames_out,
        late_or_dropped: c.late_or_dropped,
        bad_frames: c.bad_frames,
        stranger_packets: leg.stats().stranger,
    }
}

async fn write_to_agent<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Message>,
    failed: oneshot::Sender<String>,
    stall: Duration,
) where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    while let Some(message) = rx.recv().await {
        let closing = matches!(message, Message::Close(_));
        match tokio::time::timeout(stall, sink.send(message)).await {
            Ok(Ok(())) if closing => return,
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = failed.send(e.to_string());
                return;
            }
            Err(_) => {
                let _ = failed.send("agent is not reading".into());
                return;
            }
        }
    }
}
