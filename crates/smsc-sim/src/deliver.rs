//! Sending deliver_sm (receipts, MO) the way an SMSC does: to a bound receiver, and again
//! and again until a deliver_sm_resp with ESME_ROK comes back.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusmpp::pdus::DeliverSm;
use rusmpp::{Command, CommandStatus};

use crate::observe::bump;
use crate::registry::{DeliveryState, Outgoing, SessionLink, Shared};

/// Sends `deliver` to a receiver of `system_id` (any receiver if None). The first attempt
/// is queued before this returns when a receiver is bound, so it goes out ahead of anything
/// queued after it on the same session; the waiting and resending go on in a task.
pub(crate) fn dispatch(shared: &Arc<Shared>, system_id: Option<String>, deliver: DeliverSm) {
    let state = Arc::new(DeliveryState::default());
    let first = shared.pick_receiver(system_id.as_deref()).and_then(|link| {
        send_attempt(shared, &link, &deliver, &state, false).map(|seq| (link, seq))
    });
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut attempts = u32::from(first.is_some());
        let mut current = first;
        let retry = shared.config.deliver_retry;
        loop {
            if let Some((link, sequence)) = current.take() {
                tokio::select! {
                    _ = state.answered.notified() => {}
                    _ = tokio::time::sleep(retry.response_timeout) => {
                        // A late answer to this attempt no longer counts.
                        let _ = link.take_deliver(sequence);
                    }
                    _ = shared.cancel.cancelled() => return,
                }
                if state.acknowledged.load(Ordering::Acquire) {
                    return;
                }
                if attempts >= retry.max_attempts {
                    bump(&shared.tally.deliver_sm_abandoned);
                    return;
                }
                if state.refused.swap(false, Ordering::AcqRel) {
                    // Refused outright: try again after the usual pause, not at once.
                    tokio::select! {
                        _ = tokio::time::sleep(retry.response_timeout) => {}
                        _ = shared.cancel.cancelled() => return,
                    }
                }
            }
            let Some(link) = shared.wait_for_receiver(system_id.as_deref()).await else {
                return;
            };
            match send_attempt(&shared, &link, &deliver, &state, attempts > 0) {
                Some(sequence) => {
                    attempts += 1;
                    current = Some((link, sequence));
                }
                None => tokio::task::yield_now().await,
            }
        }
    });
}

fn send_attempt(
    shared: &Shared,
    link: &SessionLink,
    deliver: &DeliverSm,
    state: &Arc<DeliveryState>,
    resend: bool,
) -> Option<u32> {
    let sequence = link.next_sequence();
    link.expect_deliver_resp(sequence, state.clone());
    let command = Command::new(CommandStatus::EsmeRok, sequence, deliver.clone());
    if !link.send(Outgoing::Pdu(command)) {
        let _ = link.take_deliver(sequence);
        return None;
    }
    bump(&shared.tally.deliver_sm_sent);
    if resend {
        bump(&shared.tally.deliver_sm_resent);
    }
    Some(sequence)
}

/// A deliver_sm_resp or generic_nack for one of our deliver_sm.
pub(crate) fn answered(shared: &Shared, link: &SessionLink, sequence: u32, status: CommandStatus) {
    let Some(state) = link.take_deliver(sequence) else {
        return;
    };
    if status == CommandStatus::EsmeRok {
        bump(&shared.tally.deliver_sm_acknowledged);
        state.acknowledged.store(true, Ordering::Release);
    } else {
        bump(&shared.tally.deliver_sm_refused);
        state.refused.store(true, Ordering::Release);
    }
    state.answered.notify_one();
}
