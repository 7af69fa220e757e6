//! The sandbox network's record of what reached it, kept in a file so that it survives
//! restarts, as a real network's does: after a crash the server can ask whether a
//! submission whose outcome it never recorded arrived, and the sandbox sends again the
//! reports the server never acknowledged.
//!
//! One line per fact, appended with one write per batch: `sms <id> <to> <ref> <at>;`,
//! `call <id> <to> <ref> <at>;`, and `done <id>;` once the server committed the submission's
//! final report. Several processes may share the file (replicas sharing one sandbox): a
//! lookup reads what the others appended since the last one.
//!
//! A write that crosses a page can be cut short by SIGKILL, so a killed process may leave
//! half a line. A line counts only when it ends with `;`, and every write starts with a
//! newline, so that half line never joins the next writer's first one.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Lookup;

/// A file past this size is rewritten at start without what nobody can ask about any more.
const COMPACT_ABOVE: u64 = 16 << 20;
/// How long a finished submission stays known: far longer than the time a job whose
/// outcome was not recorded takes to be claimed again (at once after a restart, within a
/// lease otherwise), so it is still found then; short enough that a sandbox under load does
/// not keep every submission in memory.
const KEEP_FINISHED_MS: i64 = 15 * 60_000;
/// How many submissions pass between two prunings of finished ones from memory.
const PRUNE_EVERY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sms,
    Call,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Sms => "sms",
            Kind::Call => "call",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub to: String,
    pub telco_ref: String,
    at: i64,
    finished: bool,
}

/// A submission as the record takes it.
pub(crate) struct Submitted<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub to: &'a str,
    pub telco_ref: &'a str,
}

/// The record: in a file, or nowhere (then it can tell nothing after a restart).
pub(crate) struct Record(Option<Mutex<Durable>>);

struct Durable {
    path: PathBuf,
    file: File,
    /// How far the file has been read into `entries`.
    read_upto: u64,
    entries: HashMap<String, Entry>,
    since_prune: usize,
}

impl Record {
    pub(crate) fn none() -> Record {
        Record(None)
    }

    /// Opens (creating it with mode 0600) the record at `path` and reads what it holds.
    pub(crate) fn open(path: &Path) -> io::Result<Record> {
        compact_if_large(path)?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        // Held while the file is open, so that no other process compacts it under us.
        file.lock_shared()?;
        let mut durable = Durable {
            path: path.to_owned(),
            file,
            read_upto: 0,
            entries: HashMap::new(),
            since_prune: 0,
        };
        durable.catch_up()?;
        Ok(Record(Some(Mutex::new(durable))))
    }

    pub(crate) fn is_durable(&self) -> bool {
        self.0.is_some()
    }

    fn durable(&self) -> Option<std::sync::MutexGuard<'_, Durable>> {
        // The map and the file offset cannot be left inconsistent by a panic between them
        // in a way a re-read would not repair.
        self.0
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Records submissions, in one write. Only once this returns has the network "got" them.
    pub(crate) fn submitted(&self, items: &[Submitted<'_>], at: i64) -> io::Result<()> {
        let Some(mut d) = self.durable() else {
            return Ok(());
        };
        let mut text = String::from("\n");
        for s in items {
            text.push_str(&format!(
                "{} {} {} {} {at};\n",
                s.kind.tag(),
                s.id,
                s.to,
                s.telco_ref
            ));
        }
        d.append(&text)?;
        for s in items {
            d.entries.insert(
                s.id.to_owned(),
                Entry {
                    kind: s.kind,
                    to: s.to.to_owned(),
                    telco_ref: s.telco_ref.to_owned(),
                    at,
                    finished: false,
                },
            );
        }
        d.since_prune += items.len();
        if d.since_prune >= PRUNE_EVERY {
            d.since_prune = 0;
            let oldest = at - KEEP_FINISHED_MS;
            d.entries.retain(|_, e| !e.finished || e.at >= oldest);
        }
        Ok(())
    }

    /// The server committed the final report of submission `id`: it is not sent again.
    pub(crate) fn finished(&self, id: &str) {
        let Some(mut d) = self.durable() else {
            return;
        };
        if let Err(e) = d.append(&format!("\ndone {id};\n")) {
            // Not fatal: the report is sent again after a restart, and ignored as a repeat.
            tracing::warn!(error = %e, "sandbox record not written");
        }
        if let Some(e) = d.entries.get_mut(id) {
            e.finished = true;
        }
    }

    /// Whether the network has submission `id`, counting what other processes appended.
    pub(crate) fn find(&self, id: &str) -> Lookup {
        let Some(mut d) = self.durable() else {
            return Lookup::Unknown;
        };
        if let Err(e) = d.catch_up() {
            tracing::warn!(error = %e, "sandbox record not readable");
            return Lookup::Unknown;
        }
        match d.entries.get(id) {
            Some(e) => Lookup::Found(e.telco_ref.clone()),
            None => Lookup::NotFound,
        }
    }

    /// Submissions whose final report the server has not committed.
    pub(crate) fn unfinished(&self) -> Vec<(String, Entry)> {
        let Some(d) = self.durable() else {
            return Vec::new();
        };
        let mut open: Vec<(String, Entry)> = d
            .entries
            .iter()
            .filter(|(_, e)| !e.finished)
            .map(|(id, e)| (id.clone(), e.clone()))
            .collect();
        open.sort_by_key(|(_, e)| e.at);
        open
    }
}

impl Durable {
    fn append(&mut self, text: &str) -> io::Result<()> {
        // One write: appends of whole lines from several processes never interleave.
        self.file.write_all(text.as_bytes())
    }

    /// Reads the lines appended since the last call, by any process.
    fn catch_up(&mut self) -> io::Result<()> {
        let mut reader = File::open(&self.path)?;
        reader.seek(SeekFrom::Start(self.read_upto))?;
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        // What follows the last newline is a line still being written, or half a line a
        // killed writer left, which the next write's leading newline ends.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[..complete].lines() {
            apply(&mut self.entries, line);
        }
        self.read_upto += complete as u64;
        Ok(())
    }
}

/// A line that counts, read.
enum Fact<'a> {
    Submitted(&'a str, Entry),
    Done(&'a str),
}

fn parse(line: &str) -> Option<Fact<'_>> {
    let words: Vec<&str> = line.strip_suffix(';')?.split(' ').collect();
    match words[..] {
        [tag @ ("sms" | "call"), id, to, telco_ref, at] => Some(Fact::Submitted(
            id,
            Entry {
                kind: if tag == "sms" { Kind::Sms } else { Kind::Call },
                to: to.to_owned(),
                telco_ref: telco_ref.to_owned(),
                at: at.parse().ok()?,
                finished: false,
            },
        )),
        ["done", id] => Some(Fact::Done(id)),
        _ => None,
    }
}

fn apply(entries: &mut HashMap<String, Entry>, line: &str) {
    match parse(line) {
        Some(Fact::Submitted(id, entry)) => {
            entries.entry(id.to_owned()).or_insert(entry);
        }
        Some(Fact::Done(id)) => {
            if let Some(e) = entries.get_mut(id) {
                e.finished = true;
            }
        }
        None => {}
    }
}

/// How many times each submission reached the sandbox network, by the record at `path`:
/// what a test counts to prove that nothing was submitted twice.
pub fn submission_counts(path: &Path) -> io::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(path)?.lines() {
        if let Some(Fact::Submitted(id, _)) = parse(line) {
            *counts.entry(id.to_owned()).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Rewrites a large record without the submissions that finished long ago, unless another
/// process has it open.
fn compact_if_large(path: &Path) -> io::Result<()> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    if file.metadata()?.len() <= COMPACT_ABOVE || file.try_lock().is_err() {
        return Ok(());
    }
    let mut text = String::new();
    (&file).read_to_string(&mut text)?;
    let mut entries = HashMap::new();
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    for line in text[..complete].lines() {
        apply(&mut entries, line);
    }
    let newest = entries.values().map(|e| e.at).max().unwrap_or(0);
    let mut kept: Vec<(&String, &Entry)> = entries
        .iter()
        .filter(|(_, e)| !e.finished || e.at >= newest - KEEP_FINISHED_MS)
        .collect();
    kept.sort_by_key(|(_, e)| e.at);
    let mut out = String::new();
    for (id, e) in kept {
        out.push_str(&format!(
            "{} {id} {} {} {};\n",
            e.kind.tag(),
            e.to,
            e.telco_ref,
            e.at
        ));
        if e.finished {
            out.push_str(&format!("done {id};\n"));
        }
    }
    let tmp = path.with_extension("compacting");
    let mut fresh = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    fresh.write_all(out.as_bytes())?;
    fresh.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms<'a>(id: &'a str, telco_ref: &'a str) -> Submitted<'a> {
        Submitted {
            kind: Kind::Sms,
            id,
            to: "+34600000000",
            telco_ref,
        }
    }

    #[test]
    fn what_was_submitted_is_found_after_a_reopen_and_finished_ones_are_not_resent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.sandbox");
        let record = Record::open(&path).unwrap();
        record
            .submitted(&[sms("msg_a", "sbx_a"), sms("msg_b", "sbx_b")], 1)
            .unwrap();
        record.finished("msg_a");
        drop(record);

        let record = Record::open(&path).unwrap();
        assert_eq!(record.find("msg_a"), Lookup::Found("sbx_a".into()));
        assert_eq!(record.find("msg_b"), Lookup::Found("sbx_b".into()));
        assert_eq!(record.find("msg_c"), Lookup::NotFound);
        let open: Vec<String> = record.unfinished().into_iter().map(|(id, _)| id).collect();
        assert_eq!(open, vec!["msg_b".to_owned()]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_lookup_sees_what_another_process_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.sandbox");
        let one = Record::open(&path).unwrap();
        let two = Record::open(&path).unwrap();
        two.submitted(&[sms("msg_x", "sbx_x")], 5).unwrap();
        assert_eq!(one.find("msg_x"), Lookup::Found("sbx_x".into()));
    }

    #[test]
    fn half_a_line_never_counts_and_never_swallows_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.sandbox");
        // msg_b's line was cut inside its time: every field is there but the end.
        std::fs::write(
            &path,
            "sms msg_a +34600000000 sbx_a 1;\nsms msg_b +34600000000 sbx_b 17",
        )
        .unwrap();
        let record = Record::open(&path).unwrap();
        assert_eq!(record.find("msg_b"), Lookup::NotFound);
        record.submitted(&[sms("msg_c", "sbx_c")], 2).unwrap();
        record.finished("msg_c");
        drop(record);
        let record = Record::open(&path).unwrap();
        assert_eq!(record.find("msg_a"), Lookup::Found("sbx_a".into()));
        assert_eq!(record.find("msg_b"), Lookup::NotFound);
        assert_eq!(record.find("msg_c"), Lookup::Found("sbx_c".into()));
        assert!(record.unfinished().iter().all(|(id, _)| id != "msg_c"));
        let counts = submission_counts(&path).unwrap();
        assert_eq!(counts.get("msg_a"), Some(&1));
        assert_eq!(counts.get("msg_b"), None);
        assert_eq!(counts.get("msg_c"), Some(&1));
    }

    #[test]
    fn without_a_file_nothing_can_be_told() {
        let record = Record::none();
        record.submitted(&[sms("msg_a", "sbx_a")], 1).unwrap();
        assert_eq!(record.find("msg_a"), Lookup::Unknown);
        assert!(record.unfinished().is_empty());
    }
}
