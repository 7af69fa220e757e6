//! The agent's audio waiting to be played: re-chunked into 20 ms frames, bounded, with
//! the agent's marks in place so each is echoed once the audio before it has gone out.

use std::collections::VecDeque;

use crate::leg::FRAME_SAMPLES;

/// μ-law silence.
pub const ULAW_SILENCE: u8 = 0xff;

#[derive(Debug)]
enum Queued {
    Audio(Vec<u8>),
    Mark(String),
}

/// One tick's output: the frame to send (or none: send silence) and the marks reached.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// 160 bytes of μ-law, if the agent had audio.
    pub frame: Option<Vec<u8>>,
    /// Marks whose audio has now been played, in order.
    pub marks: Vec<String>,
}

/// The bounded queue of agent audio and marks.
#[derive(Debug)]
pub struct Playout {
    items: VecDeque<Queued>,
    audio_bytes: usize,
    limit_bytes: usize,
    /// A short tail waited one tick for more audio before it is padded and sent.
    held: bool,
}

impl Playout {
    /// A queue holding at most `limit_ms` of audio.
    pub fn new(limit_ms: u32) -> Self {
        Self {
            items: VecDeque::new(),
            audio_bytes: 0,
            limit_bytes: limit_ms as usize * 8,
            held: false,
        }
    }

    /// Queued audio in bytes (= samples).
    pub fn queued_bytes(&self) -> usize {
        self.audio_bytes
    }

    /// Queues audio; returns how many bytes did not fit and were dropped.
    pub fn push_audio(&mut self, mut audio: Vec<u8>) -> usize {
        let room = self.limit_bytes.saturating_sub(self.audio_bytes);
        let dropped = audio.len().saturating_sub(room);
        audio.truncate(room);
        if !audio.is_empty() {
            self.audio_bytes += audio.len();
            self.items.push_back(Queued::Audio(audio));
        }
        dropped
    }

    /// Queues a mark behind the audio queued so far.
    pub fn push_mark(&mut self, name: String) {
        self.items.push_back(Queued::Mark(name));
    }

    /// Drops all queued audio; returns the pending marks, which are answered at once.
    pub fn clear(&mut self) -> Vec<String> {
        self.audio_bytes = 0;
        self.held = false;
        self.items
            .drain(..)
            .filter_map(|q| match q {
                Queued::Mark(name) => Some(name),
                Queued::Audio(_) => None,
            })
            .collect()
    }

    /// What to send on this 20 ms tick.
    pub fn tick(&mut self) -> Tick {
        let mut out = Tick::default();
        self.take_leading_marks(&mut out.marks);
        if self.audio_bytes == 0 {
            return out;
        }
        let mark_behind = self.items.iter().any(|q| matches!(q, Queued::Mark(_)));
        if self.audio_bytes < FRAME_SAMPLES && !mark_behind && !self.held {
            self.held = true;
            return out;
        }
        self.held = false;
        let mut frame = Vec::with_capacity(FRAME_SAMPLES);
        while frame.len() < FRAME_SAMPLES {
            match self.items.front_mut() {
                Some(Queued::Audio(audio)) => {
                    let n = (FRAME_SAMPLES - frame.len()).min(audio.len());
                    frame.extend(audio.drain(..n));
                    self.audio_bytes -= n;
                    if audio.is_empty() {
                        self.items.pop_front();
                    }
                }
                Some(Queued::Mark(_)) => {
                    if let Some(Queued::Mark(name)) = self.items.pop_front() {
                        out.marks.push(name);
                    }
                }
                None => break,
            }
        }
        frame.resize(FRAME_SAMPLES, ULAW_SILENCE);
        self.take_leading_marks(&mut out.marks);
        out.frame = Some(frame);
        out
    }

    fn take_leading_marks(&mut self, marks: &mut Vec<String>) {
        while let Some(Queued::Mark(_)) = self.items.front() {
            if let Some(Queued::Mark(name)) = self.items.pop_front() {
                marks.push(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rechunks_any_length_into_frames_and_echoes_marks_after_their_audio() {
        let mut p = Playout::new(10_000);
        p.push_audio(vec![1; 100]);
        p.push_audio(vec![2; 300]);
        p.push_mark("m1".into());
        p.push_audio(vec![3; 160]);
        let t1 = p.tick();
        assert_eq!(
            t1.frame.as_ref().map(|f| (f[0], f[99], f[100], f.len())),
            Some((1, 1, 2, 160))
        );
        assert!(t1.marks.is_empty());
        let t2 = p.tick();
        assert_eq!(
            t2.frame.as_ref().map(|f| f.iter().all(|&b| b == 2)),
            Some(true)
        );
        assert!(t2.marks.is_empty());
        // 80 bytes of 2 are left, then the mark: sent at once, padded, mark echoed.
        let t3 = p.tick();
        let f3 = t3.frame.unwrap_or_default();
        assert_eq!((f3[79], f3[80]), (2, 3));
        assert_eq!(t3.marks, vec!["m1".to_string()]);
        // 80 bytes of 3 left, nothing behind: held one tick, then padded with silence.
        assert_eq!(p.tick(), Tick::default());
        let t5 = p.tick().frame.unwrap_or_default();
        assert_eq!((t5[79], t5[80]), (3, ULAW_SILENCE));
        assert_eq!(p.tick(), Tick::default());
    }

    #[test]
    fn a_mark_on_an_empty_queue_is_echoed_on_the_next_tick() {
        let mut p = Playout::new(10_000);
        p.push_mark("now".into());
        assert_eq!(
            p.tick(),
            Tick {
                frame: None,
                marks: vec!["now".into()]
            }
        );
    }

    #[test]
    fn capped_and_cleared() {
        let mut p = Playout::new(100); // 800 bytes
        assert_eq!(p.push_audio(vec![0; 700]), 0);
        p.push_mark("a".into());
        assert_eq!(p.push_audio(vec![0; 300]), 200);
        assert_eq!(p.queued_bytes(), 800);
        p.push_mark("b".into());
        assert_eq!(p.clear(), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(p.queued_bytes(), 0);
        assert_eq!(p.tick(), Tick::default());
    }
}
