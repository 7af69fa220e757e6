//! SQLite's direct write path. sqlx drives each SQLite connection from a thread of its own,
//! so every statement of a transaction is a hop there and back; on a busy machine each hop
//! waits for the scheduler, and the one write lock is held through all of them. A `WriteTx`
//! on SQLite instead runs on a connection of the store's own, in the caller's thread: a
//! transaction of a dozen statements holds the lock for the time SQLite needs and no more.
//!
//! The direct connection and the sqlx write pool take turns through the pool's one write
//! connection, so no other writer of this process is ever inside SQLite's write lock at the
//! same time. The direct writer keeps that connection between its transactions: sqlx tests
//! a connection on every return to its pool, a hop to the connection's thread that every
//! next writer would wait for. A pooled writer takes it back (`take_pool_writer`).
//!
//! Reads on the hot paths (every agent request's credential, the dispatcher's look at what
//! it hands off) take a `ReadConn`, on SQLite a direct connection from a small set of
//! `query_only` ones.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::db::Db;
use crate::open::Durability;
use crate::{Result, Tx, dialect};

/// Distinct statements kept prepared: the hot paths build `IN (...)` lists of every length
/// up to a group's size.
const STATEMENT_CACHE: usize = 512;

pub(crate) type Shared = Arc<Mutex<Writer>>;

/// The direct write connection, and the pool's write connection while the direct side
/// holds it.
pub(crate) struct Writer {
    conn: rusqlite::Connection,
    pool_writer: Option<PoolConnection<Any>>,
}

/// Idle read connections kept; more are opened while more readers run at once.
const IDLE_READERS: usize = 8;

pub(crate) fn open(path: &Path, durability: Durability) -> Result<Shared> {
    Ok(Arc::new(Mutex::new(Writer {
        conn: connect_writer(path, durability)?,
        pool_writer: None,
    })))
}

/// Runs `begin` (which takes the pool's write connection) with the direct writer held off
/// and without the pool connection it kept, so the pooled writer does not wait for a direct
/// transaction that may never come.
pub(crate) async fn take_pool_writer<T>(direct: &Shared, begin: impl Future<Output = T>) -> T {
    let mut writer = direct.lock().await;
    drop(writer.pool_writer.take());
    begin.await
}

const FLAGS: rusqlite::OpenFlags =
    rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE.union(rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX);

fn connect(path: &Path, durability: Durability) -> Result<rusqlite::Connection> {
    settle(
        rusqlite::Connection::open_with_flags(path, FLAGS)?,
        durability,
    )
}

/// The writer hands each commit's WAL frames to the kernel in one write (`ami_sqlite_wal`),
/// whose one condition is a page cache that never spills mid-transaction.
fn connect_writer(path: &Path, durability: Durability) -> Result<rusqlite::Connection> {
    ami_sqlite_wal::register().map_err(|code| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            Some("registering the WAL VFS".into()),
        )
    })?;
    let conn = settle(
        rusqlite::Connection::open_with_flags_and_vfs(path, FLAGS, ami_sqlite_wal::NAME)?,
        durability,
    )?;
    conn.execute_batch("PRAGMA cache_spill = OFF")?;
    Ok(conn)
}

fn settle(conn: rusqlite::Connection, durability: Durability) -> Result<rusqlite::Connection> {
    conn.execute_batch(dialect::SQLITE_PRAGMAS)?;
    conn.execute_batch(dialect::sqlite_synchronous(durability))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The direct read connections of one database file.
pub(crate) struct Readers {
    path: PathBuf,
    durability: Durability,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path, durability: Durability) -> Arc<Readers> {
        Arc::new(Readers {
            path: path.to_owned(),
            durability,
            idle: std::sync::Mutex::default(),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<rusqlite::Connection>> {
        // A Vec of connections cannot be left half-changed by a panic.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(self: &Arc<Self>) -> Result<DirectRead> {
        let conn = match self.idle().pop() {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.path, self.durability)?;
                conn.execute_batch("PRAGMA query_only = ON")?;
                conn
            }
        };
        Ok(DirectRead {
            conn: Some(conn),
            readers: self.clone(),
        })
    }
}

/// A direct read connection, back to its set when dropped.
pub struct DirectRead {
    conn: Option<rusqlite::Connection>,
    readers: Arc<Readers>,
}

impl Drop for DirectRead {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.readers.idle();
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

/// A connection for reads on the engine's fastest path.
pub enum ReadConn {
    Pooled(PoolConnection<Any>),
    Direct(DirectRead),
}

impl ReadConn {
    pub(crate) fn direct(readers: &Arc<Readers>) -> Result<ReadConn> {
        Ok(ReadConn::Direct(readers.take()?))
    }

    pub fn db(&mut self) -> Db<'_> {
        match self {
            ReadConn::Pooled(conn) => Db::Pooled(conn),
            ReadConn::Direct(read) => match read.conn.as_mut() {
                Some(conn) => Db::Direct(conn),
                None => unreachable!("a DirectRead holds its connection until dropped"),
            },
        }
    }
}

impl<'c> From<&'c mut ReadConn> for Db<'c> {
    fn from(conn: &'c mut ReadConn) -> Self {
        conn.db()
    }
}

/// A write transaction on the direct connection; rolled back if dropped uncommitted.
pub struct DirectTx {
    writer: OwnedMutexGuard<Writer>,
    open: bool,
}

impl DirectTx {
    pub(crate) async fn begin(direct: &Shared, write: &AnyPool) -> Result<DirectTx> {
        let mut writer = direct.clone().lock_owned().await;
        if writer.pool_writer.is_none() {
            writer.pool_writer = Some(write.acquire().await?);
        }
        writer.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(DirectTx { writer, open: true })
    }

    fn commit(mut self) -> Result<()> {
        self.writer.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for DirectTx {
    fn drop(&mut self) {
        if self.open && !self.writer.conn.is_autocommit() {
            let _ = self.writer.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A write transaction on the best path the engine has: direct on SQLite, pooled on
/// PostgreSQL.
pub enum WriteTx {
    Pooled(Tx),
    Direct(DirectTx),
}

impl WriteTx {
    pub fn db(&mut self) -> Db<'_> {
        match self {
            WriteTx::Pooled(tx) => Db::Pooled(tx),
            WriteTx::Direct(tx) => Db::Direct(&mut tx.writer.conn),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            WriteTx::Pooled(tx) => Ok(tx.commit().await?),
            WriteTx::Direct(tx) => tx.commit(),
        }
    }
}

impl<'c> From<&'c mut WriteTx> for Db<'c> {
    fn from(tx: &'c mut WriteTx) -> Self {
        tx.db()
    }
}
