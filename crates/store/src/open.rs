//! Opening the embedded SQLite file owner-only (PROTOCOL §10).

use std::fs::{self, OpenOptions as FsOpen};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Start even when the database file is readable by group or others.
    pub allow_insecure_permissions: bool,
    pub max_connections: u32,
    pub durability: Durability,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            allow_insecure_permissions: false,
            max_connections: 8,
            durability: Durability::default(),
        }
    }
}

/// What an acknowledged commit survives. The two modes mean the same on both engines;
/// neither ever leaves a transaction half-applied (docs/architecture.md, "store").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A commit is acknowledged once the database engine holds it, before it is on disk:
    /// it survives the server process's death, but a crash of the machine (SQLite:
    /// `synchronous = NORMAL`) or of the database server (PostgreSQL:
    /// `synchronous_commit = off`) can lose the last commits.
    #[default]
    Normal,
    /// A commit is acknowledged only once it is on disk (SQLite: `synchronous = FULL` on
    /// every connection that writes; PostgreSQL: `synchronous_commit` at least `local`).
    Full,
}

/// `sqlite://path`, `sqlite:path` or `sqlite::memory:` → path, created 0600 if missing.
pub(crate) fn prepare_sqlite_file(url: &str, options: &OpenOptions) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or(StoreError::UnsupportedUrl)?;
    let path = PathBuf::from(rest.split('?').next().unwrap_or(rest));
    if path.as_os_str().is_empty() || rest.starts_with(":memory:") {
        return Err(StoreError::UnsupportedUrl);
    }
    // The WAL companions are created by SQLite with the main file's mode; making the main
    // file 0600 before SQLite ever opens it covers all three whatever the umask.
    for file in [
        path.clone(),
        companion(&path, "-wal"),
        companion(&path, "-shm"),
    ] {
        match fs::metadata(&file) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 && !options.allow_insecure_permissions {
                    return Err(StoreError::InsecurePermissions {
                        path: file.display().to_string(),
                        mode,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file == path => {
                FsOpen::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&file)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(path)
}

/// Belt and braces after connecting: the companions SQLite created are owner-only too.
pub(crate) fn restrict_sqlite_companions(path: &Path) -> Result<()> {
    for file in [
        path.to_path_buf(),
        companion(path, "-wal"),
        companion(path, "-shm"),
    ] {
        if let Ok(meta) = fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
