//! Background work of `ami serve`: the dispatcher that hands queued jobs to the carrier, the
//! webhook delivery worker, and the loop that applies what the carrier reports. All stop
//! with the server's token. An API-only replica (`dispatch_enabled = false`) runs neither
//! the dispatcher nor the webhook worker: what it accepts stays queued in the outbox and in
//! the webhook deliveries for a replica that does.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use ami_carrier::{Carrier, CarrierEvent};
use ami_services::Services;
use ami_webhooks::Sender;

/// How often the dispatcher looks for due jobs when nobody wakes it (retries, other replicas).
const POLL: Duration = Duration::from_millis(200);
const BATCH: usize = 64;
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

/// Starts the workers; returns the dispatcher, whose end the server awaits: on its way out it
/// gives back the leases of the sends it was handed and did not run.
pub fn spawn(
    services: Services,
    carrier: Arc<dyn Carrier>,
    events: UnboundedReceiver<CarrierEvent>,
    shutdown: CancellationToken,
    dispatch_enabled: bool,
    webhooks: WebhookDelivery,
) -> Option<JoinHandle<()>> {
    let mut dispatcher = None;
    if dispatch_enabled {
        dispatcher = Some(tokio::spawn(dispatch(
            services.clone(),
            carrier,
            shutdown.clone(),
        )));
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
    dispatcher
}

async fn dispatch(services: Services, carrier: Arc<dyn Carrier>, shutdown: CancellationToken) {
    services.dispatch_own_sends();
    let wakeup = services.dispatch_wakeup.clone();
    // Not restarted by wakeups: retries and other replicas' expired leases are claimed on
    // time even while sends keep the dispatcher busy.
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let claim = tokio::select! {
            () = shutdown.cancelled() => break,
            () = services.own_jobs_ready() => false,
            () = wakeup.notified() => true,
            _ = poll.tick() => true,
        };
        tokio::time::sleep(LINGER).await;
        let own = drain(&shutdown, || services.run_own_jobs(carrier.as_ref(), BATCH)).await;
        if !own
            || (claim
                && !drain(&shutdown, || {
                    services.run_due_jobs(carrier.as_ref(), BATCH as i64)
                })
                .await)
        {
            break;
        }
    }
    if let Err(e) = services.release_own_jobs().await {
        tracing::warn!(error = %e, "leases of unsent jobs not released; they are claimed again when they end");
    }
}

/// Runs `step` until it finds nothing to do; false once the server is stopping.
async fn drain<F, Fut>(shutdown: &CancellationToken, step: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = ami_services::Result<usize>>,
{
    loop {
        match step().await {
            Ok(0) => return true,
            Ok(_) if shutdown.is_cancelled() => return false,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "dispatch failed; jobs it held are taken again when their leases end");
                return true;
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
