//! Deletes KYC documents past their retention (`kyc_retention_days` after the operator's
//! decision): a periodic task of `ami serve`. The operator can run the same purge at once
//! with `POST /v1/admin/kyc/purge`.

use std::time::Duration;

use ami_services::Services;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the purge runs (the first run is at start).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3_600);

/// Purges now and every [`SWEEP_INTERVAL`] until `stop`.
pub fn spawn(services: Services, stop: CancellationToken) -> JoinHandle<()> {
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
                purged = services.purge_kyc_documents(None) => match purged {
                    Ok(p) if p.purged == 0 => {}
                    Ok(p) => tracing::info!(checks = p.purged, "KYC documents past their retention purged"),
                    Err(e) => tracing::warn!(error = %e, "KYC purge failed; retrying later"),
                },
            }
        }
    })
}
