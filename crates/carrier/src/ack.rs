//! Acknowledging what the network tells us only once it is committed. A real network resends
//! what it was not told it has (an SMSC its `deliver_sm`, a SIP peer its request), so an
//! event whose acknowledgement never comes is not lost: it comes back.

/// One event from the network, with the acknowledgement the server owes it.
pub struct Inbound {
    pub event: crate::CarrierEvent,
    pub ack: Ack,
}

impl Inbound {
    /// An event whose sender does not wait for an answer (tests, HTTP callbacks whose
    /// response is the answer).
    pub fn unacknowledged(event: crate::CarrierEvent) -> Inbound {
        Inbound {
            event,
            ack: Ack::none(),
        }
    }
}

/// Tells the sender of one event whether it was committed: [`Ack::done`] once it is in the
/// store; dropped without it, the sender learns it was not and sends it again.
pub struct Ack(Option<Box<dyn FnOnce(bool) + Send>>);

impl Ack {
    /// Calls `answer(true)` on [`Ack::done`], `answer(false)` when dropped without it.
    pub fn new(answer: impl FnOnce(bool) + Send + 'static) -> Ack {
        Ack(Some(Box::new(answer)))
    }

    pub fn none() -> Ack {
        Ack(None)
    }

    /// The event is committed.
    pub fn done(mut self) {
        if let Some(answer) = self.0.take() {
            answer(true);
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(answer) = self.0.take() {
            answer(false);
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Ack" } else { "Ack(none)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorder() -> (Arc<Mutex<Vec<bool>>>, Ack) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (seen, Ack::new(move |ok| s.lock().unwrap().push(ok)))
    }

    #[test]
    fn done_answers_yes_once_and_a_drop_answers_no() {
        let (seen, ack) = recorder();
        ack.done();
        assert_eq!(*seen.lock().unwrap(), vec![true]);
        let (seen, ack) = recorder();
        drop(ack);
        assert_eq!(*seen.lock().unwrap(), vec![false]);
        Ack::none().done();
    }
}
