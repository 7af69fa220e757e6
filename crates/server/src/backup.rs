//! Online backups of the embedded SQLite database. `VACUUM INTO` writes the database as of
//! one read transaction into a new file while the server keeps writing: the copy is the
//! database at one commit, which a file copy of a live WAL database is not (the main file
//! and its `-wal` are read at different moments). Copies are named by their UTC time, mode
//! 0600 from their creation, and only the newest are kept.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "ami-";
const SUFFIX: &str = ".db";

/// How long a backup waits for a lock it needs (a checkpoint truncating the WAL, say).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// `ami-20261208T013000.123Z.db`: sorts by time as text.
pub fn file_name(now_ms: i64) -> String {
    let stamp: String = ami_core::time::rfc3339(now_ms)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{PREFIX}{stamp}{SUFFIX}")
}

/// Whether `name` is one of the copies [`take`] writes (other files of the directory are
/// never touched).
fn is_backup_name(name: &str) -> bool {
    name.starts_with(PREFIX)
        && name.ends_with(SUFFIX)
        && name.len() == file_name(0).len()
        && name.as_bytes()[PREFIX.len()].is_ascii_digit()
}

/// Copies the live database at `source` into `dir` (created 0700 when missing), named by
/// `now_ms`, then deletes all but the newest `keep` copies there. Returns the new copy.
/// Blocking: run it off the async threads.
pub fn take(source: &Path, dir: &Path, keep: u32, now_ms: i64) -> anyhow::Result<PathBuf> {
    if !source.is_file() {
        anyhow::bail!("no database at {}", source.display());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the backup directory {}", dir.display()))?;
    let name = file_name(now_ms);
    let target = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    // Owner-only before a byte of the database is in it; VACUUM INTO accepts an empty file.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let copied = vacuum_into(source, &partial);
    if let Err(e) = copied {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o600))?;
    File::open(&partial)?.sync_all()?;
    // Only a complete copy ever carries a backup's name.
    fs::rename(&partial, &target)?;
    File::open(dir)?.sync_all()?;
    prune(dir, keep)?;
    Ok(target)
}

/// One consistent copy of `source` into the empty file `into`.
pub(crate) fn vacuum_into(source: &Path, into: &Path) -> anyhow::Result<()> {
    // Read-write so that it can use the live database's shared WAL index; it writes nothing.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", source.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let into = into
        .to_str()
        .context("the backup path is not valid UTF-8")?;
    conn.execute("VACUUM INTO ?1", [into])
        .with_context(|| format!("copying {}", source.display()))?;
    Ok(())
}

/// Deletes the oldest copies beyond `keep`.
fn prune(dir: &Path, keep: u32) -> anyhow::Result<()> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_backup_name(n))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep as usize);
    for name in &names[..excess] {
        fs::remove_file(dir.join(name))?;
    }
    Ok(())
}

/// What `ami serve` runs when `backup_dir` is set: a backup every `interval`, the first one
/// an interval after the start, until `stop`.
pub struct Schedule {
    pub source: PathBuf,
    pub dir: PathBuf,
    pub keep: u32,
    pub interval: Duration,
}

impl Schedule {
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let start = tokio::time::Instant::now() + self.interval;
            let mut tick = tokio::time::interval_at(start, self.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let (source, dir, keep) = (self.source.clone(), self.dir.clone(), self.keep);
                let taken = tokio::task::spawn_blocking(move || {
                    take(&source, &dir, keep, ami_core::time::now_ms())
                })
                .await;
                match taken {
                    Ok(Ok(path)) => tracing::info!(path = %path.display(), "backup taken"),
                    Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "backup failed"),
                    Err(e) => tracing::error!(error = %e, "backup task failed"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_are_recognised() {
        let a = file_name(1_000);
        let b = file_name(1_765_000_000_123);
        assert_eq!(b, "ami-20251206T054640.123Z.db");
        assert!(a < b);
        assert!(is_backup_name(&a) && is_backup_name(&b));
        assert!(!is_backup_name("ami-notes.db"));
        assert!(!is_backup_name(".ami-20251206T054640.123Z.db.partial"));
    }

    #[test]
    fn keeps_the_newest_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        let conn = Connection::open(&source).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (42);",
        )
        .unwrap();
        let backups = dir.path().join("backups");
        fs::create_dir(&backups).unwrap();
        fs::write(backups.join("notes.txt"), b"mine").unwrap();
        let taken: Vec<PathBuf> = (0..4)
            .map(|i| take(&source, &backups, 2, 1_000_000 + i).unwrap())
            .collect();
        let mut left: Vec<String> = fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let newest: Vec<String> = taken[2..]
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            left,
            [newest[0].clone(), newest[1].clone(), "notes.txt".into()]
        );
        let mode = fs::metadata(&taken[3]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let copy = Connection::open(&taken[3]).unwrap();
        let x: i64 = copy.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
    }
}
