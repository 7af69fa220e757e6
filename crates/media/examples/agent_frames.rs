//! Frames of the agent's WebSocket on stdin/stdout, for checking them against other
//! implementations of the same media-stream shape (`scripts/check_agent_frames.py`).
//!
//! `agent_frames emit`: prints connected, start, two media, dtmf, mark and stop frames,
//! one JSON text a line.
//! `agent_frames parse`: reads agent frames, one a line, and prints how each was read.

use std::io::BufRead;

use ami_media::frames::{AgentFrame, CallInfo, Direction, FrameWriter, parse_agent_frame};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "emit" => {
            let mut w = FrameWriter::new(CallInfo {
                account_id: "acc_example".into(),
                call_id: "call_example".into(),
                stream_id: "str_example".into(),
                mid_id: "mid_example".into(),
                from: "+4915112345678".into(),
                to: "+4930123456".into(),
                direction: Direction::Inbound,
            });
            println!("{}", w.connected());
            println!("{}", w.start());
            let audio: Vec<u8> = (0..160u8).collect();
            println!("{}", w.media(&audio, 0));
            println!("{}", w.media(&audio, 20));
            println!("{}", w.dtmf('5'));
            println!("{}", w.mark("m1"));
            println!("{}", w.stop());
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
            eprintln!("usage: agent_frames emit|parse");
            std::process::exit(2);
        }
    }
}
