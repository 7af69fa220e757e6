//! Forgets idempotency keys past their window. A periodic task of `ami serve` deletes them in
//! small batches through the index on their age, so the table holds about one window of
//! keys and no request pays for the cleanup.

use std::time::Duration;

use ami_services::Services;
use ami_store::{StoreError, idempotency};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often expired keys are swept (the first sweep runs at start).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Rows deleted per transaction, so the writer is never held for long.
const BATCH: i64 = 500;

/// Sweeps now and every [`SWEEP_INTERVAL`] until `stop`.
pub fn spawn(services: Services, ttl_ms: i64, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            tokio::select! {
                () = stop.cancelled() => break,
                swept = sweep_once(&services, ttl_ms) => match swept {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(keys = n, "expired idempotency keys swept"),
                    Err(e) => tracing::warn!(error = %e, "idempotency sweep failed; retrying later"),
                },
            }
        }
    })
}

/// Deletes every key past the window (live claims stay); returns how many went.
pub async fn sweep_once(services: &Services, ttl_ms: i64) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let mut tx = services.store.begin().await?;
        let swept = idempotency::sweep(&mut tx, services.now(), ttl_ms, BATCH).await?;
        ami_store::commit(tx).await?;
        total += swept.deleted;
        if !swept.more {
            return Ok(total);
        }
        // Let other writers in between two batches.
        tokio::task::yield_now().await;
    }
}
