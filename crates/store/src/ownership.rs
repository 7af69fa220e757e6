//! Who may hold leases in a database. A SQLite file is owned by one server process at a
//! time, so a server that starts on it knows every lease there was its dead predecessor's.
//! On PostgreSQL many replicas share the database, each under its own name; the name is
//! held for the process's life, so two live processes never hold leases under one name and
//! a restarted process may take back the leases its name holds.

use std::fs::File;
use std::path::{Path, PathBuf};

use sqlx::{AnyConnection, Connection};

use crate::{Engine, Result, StoreError};

/// How long a replica name held by a process that just died may take to be released.
const PREDECESSOR_GONE: std::time::Duration = std::time::Duration::from_secs(10);

/// Held for as long as the server runs; released when dropped or when the process dies.
pub enum Ownership {
    /// An exclusive lock on the SQLite file (`flock`, independent of SQLite's own locks).
    Sqlite(File),
    /// A session advisory lock on the replica's name, on a connection of its own.
    Postgres(AnyConnection),
}

/// The SQLite file of a `sqlite:` URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// Takes the database (SQLite) or the replica name `holder` in it (PostgreSQL); refuses when
/// another live process has it.
pub async fn own(url: &str, holder: &str) -> Result<Ownership> {
    match Engine::of_url(url).ok_or(StoreError::UnsupportedUrl)? {
        Engine::Sqlite => {
            let path = sqlite_path(url).ok_or(StoreError::UnsupportedUrl)?;
            own_file(&path)
        }
        Engine::Postgres => {
            let mut conn = AnyConnection::connect(url).await?;
            // A predecessor killed a moment ago holds the name until the server notices its
            // connection is gone.
            let deadline = std::time::Instant::now() + PREDECESSOR_GONE;
            loop {
                let taken: bool = sqlx::query_scalar(
                    "SELECT pg_try_advisory_lock(hashtextextended('ami replica ' || $1, 7274730002))",
                )
                .bind(holder)
                .fetch_one(&mut conn)
                .await?;
                if taken {
                    return Ok(Ownership::Postgres(conn));
                }
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Owned(format!(
                        "another running server holds the replica name {holder:?} in this database"
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

fn own_file(path: &Path) -> Result<Ownership> {
    let file = File::open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Ownership::Sqlite(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Owned(format!(
            "another server process is running on {}",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sqlite_file_has_one_owner_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ami.db");
        std::fs::write(&path, b"").unwrap();
        let url = format!("sqlite://{}", path.display());
        let first = own(&url, "a").await.unwrap();
        let second = own(&url, "b").await;
        assert!(
            matches!(&second, Err(StoreError::Owned(m)) if m.contains("another server process")),
            "{:?}",
            second.err()
        );
        drop(first);
        own(&url, "b").await.unwrap();
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=rwc"),
            Some("a/b.db".into())
        );
        assert_eq!(sqlite_path("sqlite:x.db"), Some("x.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
