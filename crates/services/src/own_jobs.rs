//! SMS accepted by a process that also dispatches go to its own dispatcher without a claim:
//! the send's transaction writes their outbox rows already leased to this process, and the
//! jobs reach the dispatcher in memory once that transaction commits. What a claim would
//! cost (a write transaction, and the wait for it behind the sends) is saved on every batch.
//!
//! Nothing is lost if the process dies first: the rows stay in the outbox, and any dispatcher
//! claims them once the lease ends, as after a crash between a claim and its hand-off. On a
//! clean stop the dispatcher ends the leases of what it did not run.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use ami_carrier::Carrier;
use ami_store::outbox;

use crate::{Result, Services};

#[derive(Default)]
pub(crate) struct OwnJobs {
    /// Set while this process's dispatcher runs.
    enabled: AtomicBool,
    jobs: Mutex<Vec<outbox::Job>>,
    ready: Notify,
}

impl OwnJobs {
    fn jobs(&self) -> std::sync::MutexGuard<'_, Vec<outbox::Job>> {
        // A Vec of jobs cannot be left half-changed by a panic.
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Services {
    /// From now on, this process's sends are leased to its own dispatcher.
    pub fn dispatch_own_sends(&self) {
        self.own_jobs.enabled.store(true, Ordering::SeqCst);
    }

    /// The lease a send's jobs start with: this process's own, while its dispatcher runs.
    pub(crate) fn own_lease(&self, now: i64) -> Option<outbox::Lease<'_>> {
        let d = &self.settings.dispatch;
        self.own_jobs
            .enabled
            .load(Ordering::SeqCst)
            .then_some(outbox::Lease {
                until: now + d.lease_ms,
                holder: &d.holder,
            })
    }

    /// Hands committed, self-leased jobs to this process's dispatcher.
    pub(crate) fn hand_to_own_dispatcher(&self, jobs: Vec<outbox::Job>) {
        if jobs.is_empty() {
            return;
        }
        self.own_jobs.jobs().extend(jobs);
        self.own_jobs.ready.notify_one();
    }

    /// Resolves when jobs were handed to this process's dispatcher.
    pub async fn own_jobs_ready(&self) {
        self.own_jobs.ready.notified().await;
    }

    /// Runs up to `batch` of the jobs handed to this process's dispatcher; returns how many.
    pub async fn run_own_jobs(&self, carrier: &dyn Carrier, batch: usize) -> Result<usize> {
        let jobs: Vec<outbox::Job> = {
            let mut queue = self.own_jobs.jobs();
            let n = queue.len().min(batch);
            queue.drain(..n).collect()
        };
        self.run_jobs(carrier, &jobs).await?;
        Ok(jobs.len())
    }

    /// Stops leasing sends to this process's dispatcher and ends the leases of the jobs it
    /// was handed but did not run, so that the next dispatcher takes them at once.
    pub async fn release_own_jobs(&self) -> Result<()> {
        self.own_jobs.enabled.store(false, Ordering::SeqCst);
        let jobs = std::mem::take(&mut *self.own_jobs.jobs());
        if jobs.is_empty() {
            return Ok(());
        }
        let held: Vec<&outbox::Job> = jobs.iter().collect();
        let mut tx = self.store.begin_write().await?;
        outbox::release(tx.db(), &held).await?;
        tx.commit().await?;
        Ok(())
    }
}
