//! The sandbox network's clock: events due later, sent when due by one task. A task and a
//! timer for each event would cost the runtime more than the events themselves under load,
//! and events due at the same instant would race each other.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;

use crate::CarrierEvent;

/// Most events taken from the queue at once.
const INTAKE: usize = 256;

pub(crate) struct Clock {
    queue: UnboundedSender<(Instant, CarrierEvent)>,
}

impl Clock {
    /// Starts the task that sends to `events`. It ends once every event is sent and the clock
    /// is gone, or when `events` is closed.
    pub(crate) fn start(events: UnboundedSender<CarrierEvent>) -> Clock {
        let (queue, incoming) = unbounded_channel();
        tokio::spawn(run(incoming, events));
        Clock { queue }
    }

    pub(crate) fn send_after(&self, after: Duration, event: CarrierEvent) {
        let _ = self.queue.send((Instant::now() + after, event));
    }
}

async fn run(
    mut incoming: UnboundedReceiver<(Instant, CarrierEvent)>,
    events: UnboundedSender<CarrierEvent>,
) {
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
            if events.send(entry.remove()).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_core::delivery::SmsStatus;

    fn report(msg_id: &str, status: SmsStatus) -> CarrierEvent {
        CarrierEvent::Sms {
            msg_id: msg_id.into(),
            telco_ref: "sbx".into(),
            status,
            error: None,
        }
    }

    fn id_of(e: &CarrierEvent) -> &str {
        match e {
            CarrierEvent::Sms { msg_id, .. } => msg_id,
            _ => "",
        }
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_sent_when_due_in_due_order_and_ties_in_arrival_order() {
        let (tx, mut rx) = unbounded_channel();
        let clock = Clock::start(tx);
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
            assert_eq!(id_of(&e), format!("m{i}"));
        }
        assert!(rx.try_recv().is_err(), "the later event waits");
        drop(clock);
        let e = rx.recv().await.unwrap();
        assert_eq!(id_of(&e), "late", "sent even after the clock is gone");
        assert!(
            rx.recv().await.is_none(),
            "the task ends once nothing is left"
        );
    }
}
