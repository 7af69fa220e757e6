//! The few places where SQLite and PostgreSQL differ.

use crate::open::Durability;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of_url(url: &str) -> Option<Engine> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Engine::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Engine::Sqlite)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// Row lock for read-modify-write inside a transaction. SQLite needs none: its write
    /// transaction already holds the database lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }

    /// Row lock that still lets other transactions insert rows referencing this one (a
    /// foreign key takes `FOR KEY SHARE`, which `FOR UPDATE` would block).
    pub fn for_no_key_update(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR NO KEY UPDATE",
        }
    }

    /// Lets concurrent claimers pass over rows another transaction is taking.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Every SQLite connection's settings, with [`sqlite_synchronous`]. Statement journals and temporary tables stay in
/// memory: on disk they would be a file created and unlinked per transaction, holding
/// message bodies. The WAL is checkpointed by its own task (`checkpoint`); a committing
/// writer checkpoints only past 50 000 pages (about 200 MB), the backstop should that task
/// fall behind. Under steady writes that backstop is also what restarts the WAL from its
/// start, so the file's size limit sits above it: a restarted WAL overwrites pages the
/// kernel already holds, where cutting the file back would make every later commit
/// allocate them anew (about a tenth of the send path's time).
pub const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;
PRAGMA temp_store = MEMORY;
PRAGMA wal_autocheckpoint = 50000;
PRAGMA journal_size_limit = 268435456;";

/// When a SQLite commit is on disk. In WAL mode NORMAL syncs only at checkpoints (and when
/// the WAL restarts); FULL syncs the WAL at every commit, before the commit returns.
pub fn sqlite_synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Normal => "PRAGMA synchronous = NORMAL",
        Durability::Full => "PRAGMA synchronous = FULL",
    }
}

/// Every PostgreSQL connection's commit setting. Normal does not wait for the WAL flush.
/// Full only raises `off` to `on`: every other value (`local`, `remote_write`, `on`,
/// `remote_apply`) already flushes locally before the commit returns, and an operator's
/// wait for standbys is kept.
pub fn postgres_synchronous_commit(durability: Durability) -> &'static str {
    match durability {
        Durability::Normal => "SET synchronous_commit = off",
        Durability::Full => {
            "SELECT set_config('synchronous_commit', 'on', false)
             WHERE current_setting('synchronous_commit') = 'off'"
        }
    }
}
