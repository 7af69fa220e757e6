//! SQLite's WAL is copied back into the database file here, on a connection of its own,
//! instead of by whichever write transaction happens to cross the WAL's size threshold.
//! That copy ends with an fsync of both files: tens of milliseconds during which the one
//! write connection, and every write queued behind it, would otherwise wait.
//!
//! A PASSIVE checkpoint never blocks the writer or the readers and never waits for them.
//! The writer's own automatic checkpoint stays on with a high threshold (`SQLITE_PRAGMAS`),
//! so the WAL stays bounded even if this task falls behind or fails.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::open::Durability;
use crate::{Result, dialect};

/// How often the WAL is checkpointed. Between two checkpoints it holds at most this long's
/// writes, and a page written many times in that span is copied once.
const INTERVAL: Duration = Duration::from_millis(200);

/// Keeps the checkpointer running; it stops at its next tick once every holder is gone or
/// the store's write pool is closed.
pub(crate) type Running = Arc<()>;

/// Opens the checkpoint connection and starts the task. The connection writes the database
/// file, so it has the settings of every other connection.
pub(crate) async fn start(
    connect_url: &str,
    write: AnyPool,
    durability: Durability,
) -> Result<Running> {
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(dialect::SQLITE_PRAGMAS).await?;
                conn.execute(dialect::sqlite_synchronous(durability))
                    .await?;
                Ok(())
            })
        })
        .connect(connect_url)
        .await?;
    let running = Arc::new(());
    tokio::spawn(run(pool, write, Arc::downgrade(&running)));
    Ok(running)
}

async fn run(pool: AnyPool, write: AnyPool, running: Weak<()>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if running.strong_count() == 0 || write.is_closed() {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoint bounds the WAL");
        }
    }
    pool.close().await;
}
