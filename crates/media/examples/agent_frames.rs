//! Frames of the agent's WebSocket on stdin/stdout, for checking them against other
//! implementations of the same media-stream shape (`scripts/check_agent_frames.py`).
//!
//! `agent_frames emit`: prints connected, start, two media, dtmf, mark and stop frames,
//! one JSON text a line.
//! `agent_frames parse`: reads agent frames, one a line, and prints how each was read.
//! `agent_frames sign SECRET UNIX_TIME`: prints the connect's signature headers as one JSON
//! object, then the `start` frame they sign.

use std::io::BufRead;

use ami_media::agent::signature_headers;
use ami_media::frames::{AgentFrame, CallInfo, Direction, FrameWriter, parse_agent_frame};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "emit" => {
            let mut w = writer();
            println!("{}", w.connected());
            println!("{}", w.start());
            let audio: Vec<u8> = (0..160u8).collect();
            println!("{}", w.media(&audio, 0));
            println!("{}", w.media(&audio, 20));
            println!("{}", w.dtmf('5'));
            println!("{}", w.mark("m1"));
            println!("{}", w.stop());
        }
        "sign" => {
            let secret = std::env::args().nth(2).unwrap_or_default();
            let now = std::env::args()
                .nth(3)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let mut w = writer();
            let start = w.start();
            match signature_headers(&secret, &w.call().stream_id, now, &start) {
                Ok(headers) => {
                    let map: serde_json::Map<String, serde_json::Value> = headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.into()))
                        .collect();
                    println!("{}", serde_json::Value::Object(map));
                    println!("{start}");
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        "parse" => {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let out = match parse_agent_frame(&line) {
                    Ok(AgentFrame::Media(audio)) => format!("media {}", audio.len()),
                    Ok(AgentFrame::Mark(name)) => format!("mark {name}"),
                    Ok(AgentFrame::Clear) => "clear".into(),
                    Ok(AgentFrame::Stop) => "stop".into(),
                    Err(e) => format!("error {e}"),
                };
                println!("{out}");
            }
        }
        _ => {
            eprintln!("usage: agent_frames emit | parse | sign SECRET UNIX_TIME");
            std::process::exit(2);
        }
    }
}

fn writer() -> FrameWriter {
    FrameWriter::new(CallInfo {
        account_id: "acc_example".into(),
        call_id: "call_example".into(),
        stream_id: "str_example".into(),
        mid_id: "mid_example".into(),
        from: "+4915112345678".into(),
        to: "+4930123456".into(),
        direction: Direction::Inbound,
    })
}
