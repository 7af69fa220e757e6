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

use ami_carrier::{Carrier, Inbound};
use ami_services::Services;
use ami_webhooks::Sender;

/// How often the dispatcher looks for due jobs when nobody wakes it (retries, other replicas).
const POLL: Duration = Duration::from_millis(200);
const BATCH: usize = 64;
/// How long a worker lets work gather after being woken, so that one transaction carries a
/// batch instead of one item.
const LINGER: Duration = Duration::from_millis(10);
/// How often receipts left waiting are looked at.
const RECEIPT_SWEEP: Duration = Duration::from_secs(60);
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
    events: UnboundedReceiver<Inbound>,
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
    tokio::spawn(receipt_sweep(services.clone(), shutdown.clone()));
    tokio::spawn(carrier_events(services, events, shutdown));
    dispatcher
}

/// Applies, at start and then every minute, delivery receipts that arrived before their
/// hand-off was recorded and were left waiting by a process that stopped.
async fn receipt_sweep(services: Services, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(RECEIPT_SWEEP);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = services.apply_ripe_receipts().await {
            tracing::warn!(error = %e, "waiting receipts not applied; tried again later");
        }
    }
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
                tracing::error!(error = %e, "dispatch failed; the jobs it held are claimed again");
                return true;
            }
        }
    }
}

/// Applies what the network reports, a batch per transaction where it can, and answers each
/// event's acknowledgement only once it is committed or parked: the network resends what it
/// was not told we have, so a crash or a failed transaction loses nothing.
pub async fn carrier_events(
    services: Services,
    mut events: UnboundedReceiver<Inbound>,
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
        let (events_now, acks): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|i| (i.event, i.ack)).unzip();
        let answers = services.apply_carrier_events(&events_now).await;
        for ((event, ack), answer) in events_now.iter().zip(acks).zip(answers) {
            // A failure may have been the moment's (a busy database): once more, alone.
            let answer = match answer {
                Err(_) => services.apply_carrier_event(event.clone()).await,
                ok => ok,
            };
            match answer {
                Ok(()) => ack.done(),
                Err(e) => match services.park_carrier_event(event, &e).await {
                    Ok(()) => ack.done(),
                    // Not acknowledged: the network sends it again.
                    Err(park) => {
                        tracing::error!(kind = event.kind(), error = %e, park_error = %park, "carrier event neither applied nor parked; left to the network to resend")
                    }
                },
            }
        }
    }
}
