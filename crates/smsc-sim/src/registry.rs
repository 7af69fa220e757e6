//! State shared by the listener, the sessions and the handle: bound sessions, counters,
//! the fault plan, the submit log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusmpp::Command;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::{MessageIdScheme, SimConfig};
use crate::faults::{FaultState, Faults, SubmitPlan};
use crate::observe::{BindInfo, SessionStats, SubmitRecord, Tally};

/// What a session's writer sends.
// Boxing the command would cost an allocation per PDU; the item is moved once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Outgoing {
    Pdu(Command),
    Raw(Vec<u8>),
    /// Flush what is queued, then close the connection.
    Close,
}

/// A deliver_sm waiting for its deliver_sm_resp.
#[derive(Debug, Default)]
pub(crate) struct DeliveryState {
    pub acknowledged: AtomicBool,
    /// Answered with an error status or generic_nack.
    pub refused: AtomicBool,
    pub answered: Notify,
}

/// A bound session as others see it: where to send PDUs and which deliver_sm it owes.
#[derive(Debug)]
pub(crate) struct SessionLink {
    pub info: BindInfo,
    pub stats: Arc<SessionStats>,
    tx: mpsc::UnboundedSender<Outgoing>,
    next_sequence: AtomicU32,
    pending_delivers: Mutex<HashMap<u32, Arc<DeliveryState>>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionLink {
    pub(crate) fn new(
        info: BindInfo,
        stats: Arc<SessionStats>,
        tx: mpsc::UnboundedSender<Outgoing>,
    ) -> Self {
        Self {
            info,
            stats,
            tx,
            next_sequence: AtomicU32::new(1),
            pending_delivers: Mutex::new(HashMap::new()),
        }
    }

    /// Queues a PDU; false once the session's writer is gone.
    pub(crate) fn send(&self, outgoing: Outgoing) -> bool {
        self.tx.send(outgoing).is_ok()
    }

    /// A sequence number for a PDU this side starts (deliver_sm, unbind).
    pub(crate) fn next_sequence(&self) -> u32 {
        self.next_sequence.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn expect_deliver_resp(&self, sequence: u32, state: Arc<DeliveryState>) {
        lock(&self.pending_delivers).insert(sequence, state);
    }

    /// The deliver_sm a deliver_sm_resp (or generic_nack) with this sequence answers.
    pub(crate) fn take_deliver(&self, sequence: u32) -> Option<Arc<DeliveryState>> {
        lock(&self.pending_delivers).remove(&sequence)
    }

    /// Wakes every delivery still waiting on this session so it goes elsewhere at once.
    pub(crate) fn abandon_deliveries(&self) {
        for (_, state) in lock(&self.pending_delivers).drain() {
            state.answered.notify_one();
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SimConfig,
    pub cancel: CancellationToken,
    pub tally: Tally,
    faults: Mutex<FaultState>,
    faults_quiet: AtomicBool,
    sessions: Mutex<HashMap<u64, Arc<SessionLink>>>,
    all_stats: Mutex<Vec<Arc<SessionStats>>>,
    submits: Mutex<Vec<SubmitRecord>>,
    receiver_bound: Notify,
    live_connections: AtomicUsize,
    connection_closed: Notify,
    next_session: AtomicU64,
    next_message_id: AtomicU64,
    next_concat_ref: AtomicU16,
    round_robin: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        let faults = FaultState::new(config.faults.clone());
        Self {
            faults_quiet: AtomicBool::new(faults.is_quiet()),
            faults: Mutex::new(faults),
            config,
            cancel: CancellationToken::new(),
            tally: Tally::default(),
            sessions: Mutex::new(HashMap::new()),
            all_stats: Mutex::new(Vec::new()),
            submits: Mutex::new(Vec::new()),
            receiver_bound: Notify::new(),
            live_connections: AtomicUsize::new(0),
            connection_closed: Notify::new(),
            next_session: AtomicU64::new(1),
            next_message_id: AtomicU64::new(1),
            next_concat_ref: AtomicU16::new(1),
            round_robin: AtomicU64::new(0),
        }
    }

    pub(crate) fn connection_opened(&self) {
        self.live_connections.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn connection_closed(&self) {
        self.live_connections.fetch_sub(1, Ordering::AcqRel);
        self.connection_closed.notify_waiters();
    }

    /// Waits until every connection has closed.
    pub(crate) async fn all_connections_closed(&self) {
        loop {
            let closed = self.connection_closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.live_connections.load(Ordering::Acquire) == 0 {
                return;
            }
            closed.await;
        }
    }

    pub(crate) fn new_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_message_id(&self) -> String {
        let n = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        match self.config.message_ids {
            MessageIdScheme::SequentialDecimal => n.to_string(),
            MessageIdScheme::Hex => format!("{n:08X}"),
        }
    }

    pub(crate) fn next_concat_ref(&self) -> u16 {
        self.next_concat_ref.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        let state = FaultState::new(faults);
        let mut current = lock(&self.faults);
        self.faults_quiet.store(state.is_quiet(), Ordering::Release);
        *current = state;
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).faults().clone()
    }

    pub(crate) fn blackhole_all(&self) -> bool {
        !self.faults_quiet.load(Ordering::Acquire) && lock(&self.faults).faults().blackhole_all
    }

    /// The plan for one submit; without faults it takes no lock.
    pub(crate) fn plan_submit(&self, destination: &str) -> SubmitPlan {
        if self.faults_quiet.load(Ordering::Acquire) {
            return SubmitPlan::PLAIN;
        }
        lock(&self.faults).plan(destination)
    }

    pub(crate) fn record_submit(&self, record: SubmitRecord) {
        lock(&self.submits).push(record);
    }

    pub(crate) fn submits(&self) -> Vec<SubmitRecord> {
        lock(&self.submits).clone()
    }

    pub(crate) fn register(&self, link: Arc<SessionLink>) {
        lock(&self.all_stats).push(link.stats.clone());
        let receives = link.info.bind_type.can_receive();
        lock(&self.sessions).insert(link.info.session_id, link);
        if receives {
            self.receiver_bound.notify_waiters();
        }
    }

    pub(crate) fn unregister(&self, session_id: u64) {
        if let Some(link) = lock(&self.sessions).remove(&session_id) {
            link.stats.close();
        }
    }

    pub(crate) fn links(&self) -> Vec<Arc<SessionLink>> {
        let mut links: Vec<_> = lock(&self.sessions).values().cloned().collect();
        links.sort_by_key(|link| link.info.session_id);
        links
    }

    pub(crate) fn binds(&self) -> Vec<BindInfo> {
        self.links().iter().map(|link| link.info.clone()).collect()
    }

    pub(crate) fn session_stats(&self) -> Vec<Arc<SessionStats>> {
        lock(&self.all_stats).clone()
    }

    /// A receiver or transceiver session of `system_id` (any, if None), taken in turn.
    pub(crate) fn pick_receiver(&self, system_id: Option<&str>) -> Option<Arc<SessionLink>> {
        let sessions = lock(&self.sessions);
        let fits = |link: &&Arc<SessionLink>| {
            link.info.bind_type.can_receive()
                && system_id.is_none_or(|id| link.info.system_id == id)
        };
        let count = sessions.values().filter(fits).count();
        if count == 0 {
            return None;
        }
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed) as usize % count;
        sessions.values().filter(fits).nth(turn).cloned()
    }

    /// Waits until a receiver for `system_id` is bound; None on shutdown.
    pub(crate) async fn wait_for_receiver(
        &self,
        system_id: Option<&str>,
    ) -> Option<Arc<SessionLink>> {
        loop {
            let bound = self.receiver_bound.notified();
            tokio::pin!(bound);
            bound.as_mut().enable();
            if let Some(link) = self.pick_receiver(system_id) {
                return Some(link);
            }
            tokio::select! {
                _ = bound => {}
                _ = self.cancel.cancelled() => return None,
            }
        }
    }
}
