//! The webhook delivery worker of `ami serve`: a pipeline that keeps up with the send path.
//!
//! - The claimer takes due deliveries in batches, never more than there are free slots, so
//!   a claimed delivery starts at once and its lease covers the whole attempt.
//! - Each claimed delivery is attempted in its own task, at most `concurrency` at a time.
//! - The recorder writes finished attempts in batches, one transaction each.
//!
//! A crash loses at most attempts not yet recorded: their leases expire and the deliveries
//! are attempted again (at least once; the `webhook-id` lets receivers drop duplicates).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use ami_services::Services;
use ami_services::webhooks::worker::AttemptReport;
use ami_webhooks::Sender;

/// How often the claimer looks for due deliveries when nobody wakes it (retries coming due,
/// deliveries written by other replicas).
const POLL: Duration = Duration::from_millis(200);
/// Most deliveries claimed in one transaction.
const CLAIM_BATCH: usize = 128;
/// Most attempts recorded in one transaction.
const RECORD_BATCH: usize = 256;

pub fn spawn(services: Services, sender: Sender, concurrency: usize, shutdown: CancellationToken) {
    let (reports, finished) = mpsc::channel(concurrency.max(1) * 2);
    tokio::spawn(record(services.clone(), finished));
    tokio::spawn(claim(
        services,
        sender,
        concurrency.max(1),
        reports,
        shutdown,
    ));
}

async fn claim(
    services: Services,
    sender: Sender,
    concurrency: usize,
    reports: mpsc::Sender<AttemptReport>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    let sender = Arc::new(sender);
    let wakeup = services.webhook_wakeup.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeup.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            // Wait for a free slot before claiming: a lease must not tick away in a queue.
            let Ok(first) = slots.clone().acquire_owned().await else {
                return;
            };
            let free = slots.available_permits() + 1;
            let claimed = match services
                .claim_webhook_deliveries(free.min(CLAIM_BATCH))
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "webhook claim failed; retrying after the next poll");
                    break;
                }
            };
            if claimed.is_empty() {
                break;
            }
            let mut first = Some(first);
            for delivery in claimed {
                let slot = match first.take() {
                    Some(slot) => slot,
                    None => match slots.clone().acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                };
                let (services, sender, reports) =
                    (services.clone(), sender.clone(), reports.clone());
                tokio::spawn(async move {
                    let report = services.attempt_webhook_delivery(&sender, delivery).await;
                    drop(slot);
                    // The recorder only stops with the process.
                    let _ = reports.send(report).await;
                });
            }
        }
    }
}

async fn record(services: Services, mut finished: mpsc::Receiver<AttemptReport>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        if finished.recv_many(&mut batch, RECORD_BATCH).await == 0 {
            return;
        }
        match services.record_webhook_attempts(&batch).await {
            Ok(recorded) => tracing::debug!(?recorded, "webhook attempts recorded"),
            // Unrecorded attempts are not lost deliveries: their leases expire and they are
            // attempted again.
            Err(e) => {
                tracing::error!(error = %e, attempts = batch.len(), "webhook attempts not recorded");
            }
        }
        batch.clear();
    }
}
