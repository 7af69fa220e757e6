//! The AMI store: one implementation of portable SQL over SQLite (embedded default) and
//! PostgreSQL (scale-out). Dialect differences live in `dialect` and the migrations.
//!
//! Tenancy is structural: every function of the table modules that reads or writes tenant
//! data takes the [`AccountId`] (an id only authentication, the operator or the server's own
//! work can produce, see `ami_tenant`) and puts it in the WHERE clause, so a foreign id is a
//! plain miss. What acts across tenants lives in [`system`] and takes a [`CrossTenant`]
//! proof (`&System` for workers, `&Operator` for the operator's paths), which an HTTP or MCP
//! handler never holds.

pub mod accounts;
pub mod audit;
pub mod batch;
pub mod calls;
pub mod carrier_events;
pub mod carrier_refs;
mod checkpoint;
pub mod contracting;
pub mod db;
mod dialect;
mod direct;
pub mod idempotency;
pub mod kill_switches;
pub mod kyc;
pub mod messages;
pub mod mids;
mod migrate;
pub mod numbers;
mod open;
pub mod outbox;
pub mod ownership;
pub mod page;
mod rows;
pub mod sealed;
pub mod settings;
pub mod system;
pub mod usage;
pub mod voice_configs;
pub mod webhook_deliveries;
pub mod webhooks;

/// The tenant identities, for crates that must name them but may not make them.
pub use ami_tenant::{AccountId, CrossTenant, MidId, Operator, System};
pub use batch::{Arg, Batch};
pub use db::Db;
pub use dialect::Engine;
pub use direct::{ReadConn, WriteTx};
pub use migrate::Status as MigrationStatus;
pub use open::{Durability, OpenOptions};

use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, AnyPool, Executor};

pub type Tx = sqlx::Transaction<'static, Any>;
pub type Conn = AnyConnection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database file {path} is readable by group or others (mode {mode:o})")]
    InsecurePermissions { path: String, mode: u32 },
    #[error("unsupported database url (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Owned(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Direct(#[from] rusqlite::Error),
}

impl StoreError {
    /// A unique or primary-key violation: the caller lost a race or repeated itself.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::Direct(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    /// Reads. Several connections on both engines.
    read: AnyPool,
    /// Writes. On SQLite a single connection, so writers queue in the pool instead of
    /// failing with SQLITE_BUSY; on PostgreSQL the same pool as reads.
    write: AnyPool,
    engine: Engine,
    /// On SQLite, the connections of the direct paths (`direct`).
    direct: Option<(direct::Shared, Arc<direct::Readers>)>,
    /// On SQLite, the task that checkpoints the WAL off the write path.
    _checkpointer: Option<checkpoint::Running>,
    /// The key that seals secrets at rest (`sealed`), once the server has loaded it.
    secrets: Option<sealed::SecretBox>,
}

impl Store {
    pub async fn open(url: &str, options: &OpenOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let store = match engine {
            Engine::Sqlite => {
                let path = open::prepare_sqlite_file(url, options)?;
                let connect_url = format!("sqlite://{}?mode=rwc", path.display());
                let durability = options.durability;
                let pool = |n: u32| {
                    AnyPoolOptions::new()
                        .max_connections(n)
                        .min_connections(1)
                        // A SQLite connection is a file handle here: it cannot go stale,
                        // and testing it on every checkout is one more hop to its thread.
                        .test_before_acquire(false)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                conn.execute(dialect::SQLITE_PRAGMAS).await?;
                                conn.execute(dialect::sqlite_synchronous(durability))
                                    .await?;
                                Ok(())
                            })
                        })
                };
                let write = pool(1).connect(&connect_url).await?;
                let read = pool(options.max_connections.max(2))
                    .connect(&connect_url)
                    .await?;
                let direct = (
                    direct::open(&path, durability)?,
                    direct::Readers::new(&path, durability),
                );
                let checkpointer =
                    checkpoint::start(&connect_url, write.clone(), durability).await?;
                // An operator who allowed a shared file keeps the modes they chose.
                if !options.allow_insecure_permissions {
                    open::restrict_sqlite_companions(&path)?;
                }
                Store {
                    read,
                    write,
                    engine,
                    direct: Some(direct),
                    _checkpointer: Some(checkpointer),
                    secrets: None,
                }
            }
            Engine::Postgres => {
                let durability = options.durability;
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            conn.execute(dialect::postgres_synchronous_commit(durability))
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?;
                Store {
                    read: pool.clone(),
                    write: pool,
                    engine,
                    direct: None,
                    _checkpointer: None,
                    secrets: None,
                }
            }
        };
        Ok(store)
    }

    /// The store with the key that seals secrets at rest; check it first with
    /// [`sealed::prepare`].
    pub fn with_secrets(mut self, key: sealed::SecretBox) -> Store {
        self.secrets = Some(key);
        self
    }

    /// The key that seals secrets at rest; an error when none was loaded, so that a secret
    /// is never stored in clear by a path that forgot it.
    pub fn secrets(&self) -> Result<&sealed::SecretBox> {
        self.secrets
            .as_ref()
            .ok_or_else(|| StoreError::Owned("no secrets key is loaded".into()))
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn migrate(&self) -> Result<Vec<i64>> {
        migrate::run(&self.write, self.engine).await
    }

    /// What `migrate` would apply, and what the database holds that this build does not
    /// know (a newer version's); changes nothing.
    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        migrate::status(&self.read, self.engine).await
    }

    /// A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE) so
    /// that no transaction can fail half-way on a lock upgrade.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match &self.direct {
            Some((direct, _)) => {
                direct::take_pool_writer(direct, self.write.begin_with("BEGIN IMMEDIATE")).await?
            }
            None => self.write.begin().await?,
        })
    }

    /// A write transaction on the engine's fastest path: on SQLite the direct connection,
    /// for transactions that go through [`Db`] alone.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        Ok(match &self.direct {
            Some((direct, _)) => {
                WriteTx::Direct(direct::DirectTx::begin(direct, &self.write).await?)
            }
            None => WriteTx::Pooled(self.begin().await?),
        })
    }

    /// A connection for reads on the engine's fastest path, for reads that go through [`Db`]
    /// alone: on SQLite a direct one, used in the caller's thread.
    pub async fn read_conn(&self) -> Result<ReadConn> {
        match &self.direct {
            Some((_, readers)) => ReadConn::direct(readers),
            None => Ok(ReadConn::Pooled(self.read.acquire().await?)),
        }
    }

    /// A connection for reads outside any transaction.
    pub async fn reader(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        Ok(self.read.acquire().await?)
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    pub async fn close(&self) {
        let close = async {
            self.read.close().await;
            self.write.close().await;
        };
        match &self.direct {
            // Closing a pool waits for every connection to come back. The direct writer gives
            // back the write connection it keeps and is held off until both pools are
            // closed: a transaction of a worker still running would take it again and keep
            // it, and the stop would wait forever.
            Some((direct, _)) => direct::take_pool_writer(direct, close).await,
            None => close.await,
        }
    }
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    Ok(tx.commit().await?)
}
