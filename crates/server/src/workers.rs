//! Background work of `ami serve`: the dispatcher that hands queued jobs to the carrier, the
//! webhook delivery worker, and the loop that applies what the carrier reports. All stop
//! with the server's token. An API-only replica (`dispatch_enabled = false`) runs neither
//! the dispatcher nor the webhook worker: what it accepts stays queued in the outbox and in
//! the webhook deliveries for a replica that does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use ami_carrier::{Carrier, CarrierEvent};
use ami_services::Services;
use ami_webhooks::Sender;

/// How often the dispatcher looks for due jobs when nobody wakes it (retries, other replicas).
const POLL: Duration = Duration::from_millis(200);
const BATCH: i64 = 64;
/// How long a worker lets work gather after being woken, so that one transaction carries a
/// batch instead of one item.
const LINGER: Duration = Duration::from_millis(10);
/// Most carrier events applied in one transaction.
const EVENT_BATCH: usize = 256;

/// The webhook worker's HTTP client and how many attempts it runs at once.
pub struct WebhookDelivery {
    pub sender: Sender,
    pub concurrency: usize,
}

pub fn spawn(
    services: Services,
    carrier: Arc<dyn Carrier>,
    events: UnboundedReceiver<CarrierEvent>,
    shutdown: CancellationToken,
    dispatch_enabled: bool,
    webhooks: WebhookDelivery,
) {
    if dispatch_enabled {
        tokio::spawn(dispatch(services.clone(), carrier, shutdown.clone()));
        crate::webhook_worker::spawn(
            services.clone(),
            webhooks.sender,
            webhooks.concurrency,
            shutdown.clone(),
        );
    } else {
        tracing::info!(
            "dispatcher disabled: queued jobs and webhook deliveries wait for a replica that dispatches"
        );
    }
    tokio::spawn(carrier_events(services, events, shutdown));
}

async fn dispatch(services: Services, carrier: Arc<dyn Carrier>, shutdown: CancellationToken) {
    let wakeup = services.dispatch_wakeup.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wakeup.notified() => tokio::time::sleep(LINGER).await,
            () = tokio::time::sleep(POLL) => {}
        }
        loop {
            match services.run_due_jobs(carrier.as_ref(), BATCH).await {
                Ok(0) => break,
                Ok(_) if shutdown.is_cancelled() => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "dispatch failed; retrying after the next poll");
                    break;
                }
            }
        }
    }
}

async fn carrier_events(
    services: Services,
    mut events: UnboundedReceiver<CarrierEvent>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            n = events.recv_many(&mut batch, EVENT_BATCH) => n,
        };
        if received == 0 {
            return;
        }
        // Reports trickle in one by one; a moment's wait turns many small transactions on
        // the one SQLite writer into one.
        tokio::time::sleep(LINGER).await;
        while batch.len() < EVENT_BATCH {
            match events.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if let Err(e) = services
            .apply_carrier_events(std::mem::take(&mut batch))
            .await
        {
            tracing::error!(error = %e, "carrier events not applied");
        }
    }
}
