//! `ami restore FILE`: puts a backup in place of the SQLite database, only when no server
//! holds it, and only a copy that passed `PRAGMA integrity_check` and the audit chain check.
//! The database it replaces is kept beside it, renamed, never deleted.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::config::Config;

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub database: PathBuf,
    /// Where the database that was in place before now is, if there was one.
    pub previous: Option<PathBuf>,
    /// Audit events whose chain was verified in the copy.
    pub audit_events: u64,
}

pub async fn run(config: &Config, file: &Path) -> anyhow::Result<Restored> {
    let url = config.database_url.as_str();
    let Some(target) = ami_store::ownership::sqlite_path(url) else {
        anyhow::bail!(
            "ami restore puts a SQLite backup in place; on PostgreSQL restore with pg_restore (docs/deploy.md)"
        );
    };
    if !file.is_file() {
        anyhow::bail!("no backup file at {}", file.display());
    }
    if target.exists() && fs::canonicalize(file)? == fs::canonicalize(&target)? {
        anyhow::bail!("{} is the database itself", file.display());
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Held until the end: a dispatching server cannot start on the file meanwhile.
    let _owned = if target.exists() {
        Some(refuse_if_in_use(url, &target).await?)
    } else {
        None
    };

    let stamp = crate::backup::file_name(ami_core::time::now_ms());
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .context("the database path has no file name")?;
    let staging = dir.join(format!(".{name}.restoring-{stamp}"));
    let checked = stage(file, &staging).await;
    let audit_events = match checked {
        Ok(n) => n,
        Err(e) => {
            remove_with_companions(&staging);
            return Err(e);
        }
    };

    let previous = if target.exists() {
        let aside = dir.join(format!("{name}.before-restore-{stamp}"));
        fs::rename(&target, &aside)?;
        Some(aside)
    } else {
        None
    };
    // Checkpointed into the file set aside (see `refuse_if_in_use`): what is left of the
    // companions belongs to no database any more, and would be replayed onto the new one.
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(companion(&target, suffix));
    }
    fs::rename(&staging, &target)?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600))?;
    File::open(&dir)?.sync_all()?;
    Ok(Restored {
        database: target,
        previous,
        audit_events,
    })
}

/// Refuses while any process has the database open: a dispatching server holds its `flock`,
/// and every SQLite connection in WAL mode holds a shared lock on the file, which an
/// exclusive-mode connection cannot get past. With the file to itself, it checkpoints the
/// WAL into the main file, so that the file set aside is complete on its own.
async fn refuse_if_in_use(
    url: &str,
    target: &Path,
) -> anyhow::Result<ami_store::ownership::Ownership> {
    let in_use = || {
        anyhow::anyhow!(
            "refusing to restore: a running server holds {}; stop it first",
            target.display()
        )
    };
    let owned = match ami_store::ownership::own(url, "restore").await {
        Ok(owned) => owned,
        Err(ami_store::StoreError::Owned(_)) => return Err(in_use()),
        Err(e) => return Err(e.into()),
    };
    let conn = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")?;
    let alone = conn.execute_batch("BEGIN EXCLUSIVE; SELECT count(*) FROM sqlite_master; COMMIT");
    match alone {
        Ok(()) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            return Err(in_use());
        }
        Err(e) => return Err(e.into()),
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .context("checkpointing the database before setting it aside")?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(owned)
}

/// Copies the backup into `staging` (0600) and checks the copy; the number of audit events
/// verified.
async fn stage(file: &Path, staging: &Path) -> anyhow::Result<u64> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    {
        let (file, staging) = (file.to_path_buf(), staging.to_path_buf());
        tokio::task::spawn_blocking(move || copy_and_check(&file, &staging)).await??;
    }
    let report = audit_verify(staging).await?;
    // Back to a lone file: the server puts it in WAL mode again when it opens it.
    let staging = staging.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let conn = Connection::open(&staging)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .context("taking the checked copy out of WAL mode")?;
        Ok(())
    })
    .await??;
    Ok(report.events)
}

/// `ami audit verify` on the copy, in a process of its own: when it has exited, nothing
/// holds the copy open any more. The copy is brought to this version's schema first, as
/// the server would at its start.
async fn audit_verify(staging: &Path) -> anyhow::Result<AuditReport> {
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args(["audit", "verify"])
        .env(
            "AMI_DATABASE_URL",
            format!("sqlite://{}", staging.display()),
        )
        .env("AMI_LOG", "warn")
        .output()
        .await?;
    let report: Option<AuditReport> = serde_json::from_slice(&out.stdout).ok();
    match report {
        Some(AuditReport {
            first_broken: Some(broken),
            ..
        }) => {
            anyhow::bail!("refusing to restore: the audit chain of the backup is broken ({broken})")
        }
        Some(r) if out.status.success() => Ok(r),
        _ => anyhow::bail!(
            "refusing to restore: ami audit verify could not check the backup: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// What `ami audit verify` prints.
#[derive(serde::Deserialize)]
struct AuditReport {
    events: u64,
    first_broken: Option<serde_json::Value>,
}

fn copy_and_check(file: &Path, staging: &Path) -> anyhow::Result<()> {
    let source = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", file.display()))?;
    // The backup as it is, and the copy made of it (a copy is rebuilt, indexes included).
    integrity_check(&source, file)?;
    let into = staging.to_str().context("path is not valid UTF-8")?;
    source
        .execute("VACUUM INTO ?1", [into])
        .with_context(|| format!("{} is not a readable SQLite database", file.display()))?;
    drop(source);
    integrity_check(&Connection::open(staging)?, file)
}

fn integrity_check(conn: &Connection, file: &Path) -> anyhow::Result<()> {
    let verdict: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .with_context(|| format!("{} is not a readable SQLite database", file.display()))?;
    if verdict != ["ok"] {
        anyhow::bail!(
            "refusing to restore: integrity_check of {} says: {}",
            file.display(),
            verdict.join("; ")
        );
    }
    Ok(())
}

fn remove_with_companions(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(companion(path, suffix));
    }
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
