//! The sandbox network's clock: events due later, sent when due by one task. A task and a
//! timer for each event would cost the runtime more than the events themselves under load,
//! and events due at the same instant would race each other.
//!
//! Like a real network, it sends again what the server did not acknowledge: an event whose
//! [`Ack`] is dropped unanswered comes back after [`REDELIVERY`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;

use crate::{Ack, CarrierEvent, Inbound};

/// Most events taken from the queue at once.
const INTAKE: usize = 256;
/// How long an event the server did not commit waits before it is sent again.
pub(crate) const REDELIVERY: Duration = Duration::from_secs(1);

/// Told of each event the server committed.
pub(crate) type OnCommitted = Arc<dyn Fn(&CarrierEvent) + Send + Sync>;

pub(crate) struct Clock {
    queue: UnboundedSender<(Instant, CarrierEvent)>,
    outstanding: Arc<AtomicUsize>,
}

impl Clock {
    /// Starts the task that sends to `events`. It ends once every event is sent and
    /// acknowledged and the clock is gone, or when `events` is closed.
    pub(crate) fn start(events: UnboundedSender<Inbound>, on_committed: OnCommitted) -> Clock {
        let (queue, incoming) = unbounded_channel();
        let outstanding = Arc::new(AtomicUsize::new(0));
        let counted = outstanding.clone();
        let on_committed: OnCommitted = Arc::new(move |event| {
            on_committed(event);
            counted.fetch_sub(1, Ordering::SeqCst);
        });
        tokio::spawn(run(incoming, queue.clone(), events, on_committed));
        Clock { queue, outstanding }
    }

    pub(crate) fn send_after(&self, after: Duration, event: CarrierEvent) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        let _ = self.queue.send((Instant::now() + after, event));
    }

    /// Events given to the clock that the server has not committed yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }
}

async fn run(
    mut incoming: UnboundedReceiver<(Instant, CarrierEvent)>,
    queue: UnboundedSender<(Instant, CarrierEvent)>,
    events: UnboundedSender<Inbound>,
    on_committed: OnCommitted,
) {
    // The task's own sender lives only in the acknowledgements it hands out, so the intake
    // closes once the clock is gone and every event is answered.
    let queue = {
        let weak = queue.downgrade();
        drop(queue);
        weak
    };
    // By due time, then by arrival: events due together keep the order they were given in.
    let mut pending: BTreeMap<(Instant, u64), CarrierEvent> = BTreeMap::new();
    let mut arrival = 0u64;
    let mut intake = Vec::with_capacity(INTAKE);
    let mut open = true;
    while open || !pending.is_empty() {
        let next = pending.first_key_value().map(|((at, _), _)| *at);
        tokio::select! {
            n = incoming.recv_many(&mut intake, INTAKE), if open => open = n > 0,
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {}
        }
        for (at, event) in intake.drain(..) {
            pending.insert((at, arrival), event);
            arrival += 1;
        }
        let now = Instant::now();
        while let Some(entry) = pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let event = entry.remove();
            let ack = acknowledgement(&event, queue.upgrade(), on_committed.clone());
            if events.send(Inbound { event, ack }).is_err() {
                return;
            }
        }
    }
}

/// The acknowledgement of `event`: committed, the sandbox is told; not, it comes back later.
fn acknowledgement(
    event: &CarrierEvent,
    queue: Option<UnboundedSender<(Instant, CarrierEvent)>>,
    on_committed: OnCommitted,
) -> Ack {
    let again = event.clone();
    Ack::new(move |committed| {
        if committed {
            on_committed(&again);
        } else if let Some(queue) = queue {
            let _ = queue.send((Instant::now() + REDELIVERY, again));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_core::delivery::SmsStatus;
    use std::sync::Mutex;

    fn report(msg_id: &str, status: SmsStatus) -> CarrierEvent {
        CarrierEvent::Sms {
            msg_id: msg_id.into(),
            telco_ref: "sbx".into(),
            status,
            error: None,
        }
    }

    fn id_of(e: &CarrierEvent) -> String {
        match e {
            CarrierEvent::Sms { msg_id, .. } => msg_id.clone(),
            _ => String::new(),
        }
    }

    fn ignore() -> OnCommitted {
        Arc::new(|_| {})
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_sent_when_due_in_due_order_and_ties_in_arrival_order() {
        let (tx, mut rx) = unbounded_channel();
        let clock = Clock::start(tx, ignore());
        clock.send_after(
            Duration::from_millis(450),
            report("late", SmsStatus::Delivered),
        );
        for i in 0..100 {
            clock.send_after(
                Duration::from_millis(150),
                report(&format!("m{i}"), SmsStatus::Sent),
            );
        }
        tokio::time::sleep(Duration::from_millis(149)).await;
        assert!(rx.try_recv().is_err(), "nothing is due before its time");
        tokio::time::sleep(Duration::from_millis(2)).await;
        for i in 0..100 {
            let e = rx.recv().await.unwrap();
            assert_eq!(id_of(&e.event), format!("m{i}"));
            e.ack.done();
        }
        assert!(rx.try_recv().is_err(), "the later event waits");
        drop(clock);
        let e = rx.recv().await.unwrap();
        assert_eq!(id_of(&e.event), "late", "sent even after the clock is gone");
        e.ack.done();
        assert!(
            rx.recv().await.is_none(),
            "the task ends once nothing is left"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_not_committed_comes_back_and_a_committed_one_is_reported() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let seen = committed.clone();
        let (tx, mut rx) = unbounded_channel();
        let clock = Clock::start(
            tx,
            Arc::new(move |e: &CarrierEvent| seen.lock().unwrap().push(id_of(e))),
        );
        clock.send_after(Duration::ZERO, report("m", SmsStatus::Delivered));
        assert_eq!(clock.outstanding(), 1);
        let first = rx.recv().await.unwrap();
        let sent_at = Instant::now();
        drop(first.ack);
        let again = rx.recv().await.unwrap();
        assert_eq!(id_of(&again.event), "m");
        assert!(Instant::now() - sent_at >= REDELIVERY);
        assert!(committed.lock().unwrap().is_empty());
        assert_eq!(clock.outstanding(), 1, "still owed after a refusal");
        again.ack.done();
        assert_eq!(*committed.lock().unwrap(), vec!["m".to_owned()]);
        assert_eq!(clock.outstanding(), 0);
        drop(clock);
        assert!(
            rx.recv().await.is_none(),
            "nothing comes back once committed"
        );
    }
}
