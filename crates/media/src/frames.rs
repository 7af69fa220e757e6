//! The frames of the agent's WebSocket: the media-stream shape telephony voice-agent
//! frameworks already speak (JSON text frames with an `event` field).
//!
//! Server to agent: `connected`, `start`, `media`, `dtmf`, `mark`, `stop`, each with the
//! stream id and a growing `sequenceNumber` (a decimal string, as in that shape).
//! Agent to server: `media` (base64 μ-law), `mark`, `clear`, `stop`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

/// Who placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A caller rang one of our numbers.
    Inbound,
    /// We called out for the agent.
    Outbound,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What the agent is told about the call in `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The account the number belongs to.
    pub account_id: String,
    /// The call's id.
    pub call_id: String,
    /// The stream's id (one per agent connection); also the `webhook-id` of the connect.
    pub stream_id: String,
    /// The MID (number) the call is on.
    pub mid_id: String,
    /// Caller, E.164.
    pub from: String,
    /// Callee, E.164.
    pub to: String,
    /// Inbound or outbound.
    pub direction: Direction,
}

/// Builds the server's frames of one stream, numbering them.
#[derive(Debug)]
pub struct FrameWriter {
    call: CallInfo,
    sequence: u64,
    chunk: u64,
}

impl FrameWriter {
    /// A writer for `call`'s stream.
    pub fn new(call: CallInfo) -> Self {
        Self {
            call,
            sequence: 0,
            chunk: 0,
        }
    }

    /// The call.
    pub fn call(&self) -> &CallInfo {
        &self.call
    }

    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    /// The first frame: protocol and version, no sequence number.
    pub fn connected(&self) -> String {
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
    }

    /// The `start` frame: ids, parties and the media format.
    pub fn start(&mut self) -> String {
        let c = &self.call;
        let frame = json!({
            "event": "start",
            "sequenceNumber": self.sequence.saturating_add(1).to_string(),
            "start": {
                "accountSid": c.account_id,
                "streamSid": c.stream_id,
                "callSid": c.call_id,
                "midId": c.mid_id,
                "from": c.from,
                "to": c.to,
                "direction": c.direction.as_str(),
                "tracks": ["inbound"],
                "customParameters": {
                    "from_number": c.from,
                    "to_number": c.to,
                    "direction": c.direction.as_str(),
                    "mid_id": c.mid_id,
                },
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": c.stream_id,
        });
        self.sequence += 1;
        frame.to_string()
    }

    /// One `media` frame of caller audio (μ-law); `timestamp_ms` since the stream began.
    pub fn media(&mut self, ulaw: &[u8], timestamp_ms: u64) -> String {
        self.chunk += 1;
        json!({
            "event": "media",
            "sequenceNumber": self.next_sequence(),
            "media": {
                "track": "inbound",
                "chunk": self.chunk.to_string(),
                "timestamp": timestamp_ms.to_string(),
                "payload": STANDARD.encode(ulaw),
            },
            "streamSid": self.call.stream_id,
        })
        .to_string()
    }

    /// A key the caller pressed.
    pub fn dtmf(&mut self, digit: char) -> String {
        json!({
            "event": "dtmf",
            "sequenceNumber": self.next_sequence(),
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
            "streamSid": self.call.stream_id,
        })
        .to_string()
    }

    /// A mark of the agent's, echoed once the audio queued before it has been played
    /// (or dropped by `clear`).
    pub fn mark(&mut self, name: &str) -> String {
        json!({
            "event": "mark",
            "sequenceNumber": self.next_sequence(),
            "mark": {"name": name},
            "streamSid": self.call.stream_id,
        })
        .to_string()
    }

    /// The last frame.
    pub fn stop(&mut self) -> String {
        json!({
            "event": "stop",
            "sequenceNumber": self.next_sequence(),
            "stop": {"accountSid": self.call.account_id, "callSid": self.call.call_id},
            "streamSid": self.call.stream_id,
        })
        .to_string()
    }
}

/// A frame from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFrame {
    /// μ-law audio to play, any length.
    Media(Vec<u8>),
    /// A named point in the agent's audio.
    Mark(String),
    /// Drop the queued audio now.
    Clear,
    /// The agent hangs up.
    Stop,
}

/// Why an agent frame was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or a known event with wrong fields.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// An event we do not know.
    #[error("unknown event")]
    UnknownEvent,
}

#[derive(Deserialize)]
struct MediaBody {
    payload: String,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

/// Reads one text frame from the agent. Fields other than those used are ignored (the
/// agent echoes the stream id; we do not need it).
pub fn parse_agent_frame(text: &str) -> Result<AgentFrame, FrameError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let event = value
        .get("event")
        .and_then(Value::as_str)
        .ok_or(FrameError::UnknownEvent)?;
    let field = |name: &str| {
        value
            .get(name)
            .cloned()
            .ok_or_else(|| FrameError::Malformed(format!("no `{name}`")))
    };
    match event {
        "media" => {
            let body: MediaBody = serde_json::from_value(field("media")?)
                .map_err(|e| FrameError::Malformed(e.to_string()))?;
            STANDARD
                .decode(body.payload.as_bytes())
                .map(AgentFrame::Media)
                .map_err(|e| FrameError::Malformed(e.to_string()))
        }
        "mark" => {
            let body: MarkBody = serde_json::from_value(field("mark")?)
                .map_err(|e| FrameError::Malformed(e.to_string()))?;
            Ok(AgentFrame::Mark(body.name))
        }
        "clear" => Ok(AgentFrame::Clear),
        "stop" => Ok(AgentFrame::Stop),
        _ => Err(FrameError::UnknownEvent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallInfo {
        CallInfo {
            account_id: "acc_1".into(),
            call_id: "call_1".into(),
            stream_id: "str_1".into(),
            mid_id: "mid_1".into(),
            from: "+4915112345678".into(),
            to: "+4930123456".into(),
            direction: Direction::Inbound,
        }
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or(Value::Null)
    }

    #[test]
    fn start_has_the_fields_a_telephony_runner_detects() {
        let mut w = FrameWriter::new(call());
        let connected = parse(&w.connected());
        assert_eq!(connected["event"], "connected");
        let start = parse(&w.start());
        assert_eq!(start["event"], "start");
        assert_eq!(start["sequenceNumber"], "1");
        assert_eq!(start["streamSid"], "str_1");
        assert_eq!(start["start"]["streamSid"], "str_1");
        assert_eq!(start["start"]["callSid"], "call_1");
        assert_eq!(
            start["start"]["customParameters"]["from_number"],
            "+4915112345678"
        );
        assert_eq!(start["start"]["mediaFormat"]["encoding"], "audio/x-mulaw");
        assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 8000);
        let media = parse(&w.media(&[0xff, 0x00], 20));
        assert_eq!(media["sequenceNumber"], "2");
        assert_eq!(media["media"]["payload"], "/wA=");
        assert_eq!(media["media"]["chunk"], "1");
        assert_eq!(media["media"]["timestamp"], "20");
        let dtmf = parse(&w.dtmf('5'));
        assert_eq!(dtmf["dtmf"]["digit"], "5");
        assert_eq!(parse(&w.mark("m1"))["mark"]["name"], "m1");
        let stop = parse(&w.stop());
        assert_eq!(
            (stop["event"].clone(), stop["sequenceNumber"].clone()),
            ("stop".into(), "5".into())
        );
    }

    #[test]
    fn agent_frames() {
        assert_eq!(
            parse_agent_frame(r#"{"event":"media","streamSid":"s","media":{"payload":"/wA="}}"#),
            Ok(AgentFrame::Media(vec![0xff, 0]))
        );
        assert_eq!(
            parse_agent_frame(r#"{"event":"mark","streamSid":"s","mark":{"name":"x"}}"#),
            Ok(AgentFrame::Mark("x".into()))
        );
        assert_eq!(
            parse_agent_frame(r#"{"event":"clear","streamSid":"s"}"#),
            Ok(AgentFrame::Clear)
        );
        assert_eq!(
            parse_agent_frame(r#"{"event":"stop"}"#),
            Ok(AgentFrame::Stop)
        );
        assert_eq!(
            parse_agent_frame(r#"{"event":"dance"}"#),
            Err(FrameError::UnknownEvent)
        );
        assert_eq!(parse_agent_frame(r#"[1]"#), Err(FrameError::UnknownEvent));
        assert!(matches!(
            parse_agent_frame("not json"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            parse_agent_frame(r#"{"event":"media","media":{"payload":"!!"}}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            parse_agent_frame(r#"{"event":"mark"}"#),
            Err(FrameError::Malformed(_))
        ));
    }
}
