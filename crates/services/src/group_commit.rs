//! Group commit: requests that arrive while a transaction of the same kind is being written
//! wait for it, and the next one writes all of them together. Each request still gets its own
//! answer; the store sees one transaction and a handful of statements for the whole group
//! instead of a dozen statements per request. On SQLite, where every write goes through one
//! connection, this is what lets the write path keep up with concurrent clients.
//!
//! The group is taken only once its transaction is open: the requests that arrive while the
//! writer waits for the connection (held by the dispatcher or the delivery reports) join it.

use std::sync::Mutex;

use tokio::sync::oneshot;

/// A queue of requests of type `J`, each answered with an `R`.
pub(crate) struct GroupCommit<J, R> {
    waiting: Mutex<Vec<(J, oneshot::Sender<R>)>>,
    /// Held by the request that writes a group, for as long as the group is written.
    writer: tokio::sync::Mutex<()>,
}

impl<J, R> Default for GroupCommit<J, R> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Queues `job` and returns its answer. Whoever takes the writer role next runs `open`
    /// (beginning the transaction), then `write` on what `open` gave and the jobs queued by
    /// then (at most `max` at a time), in their order of arrival, until its own job is
    /// answered. `write` runs in its own task, so a caller that goes away cannot cut a group
    /// short, and it must answer every job it is given.
    pub(crate) async fn submit<T, O, OFut, F, Fut>(
        &self,
        job: J,
        max: usize,
        open: O,
        write: F,
    ) -> Option<R>
    where
        O: Fn() -> OFut,
        OFut: Future<Output = T>,
        F: Fn(T, Vec<(J, oneshot::Sender<R>)>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        self.lock_waiting().push((job, tx));
        let _writer = self.writer.lock().await;
        loop {
            // A writer before us may already have taken (and answered) ours.
            if let Ok(answer) = rx.try_recv() {
                return Some(answer);
            }
            let opened = open().await;
            let group: Vec<_> = {
                let mut waiting = self.lock_waiting();
                let n = waiting.len().min(max);
                waiting.drain(..n).collect()
            };
            if group.is_empty() {
                // Ours was taken by a writer whose task ended without answering (a panic).
                return None;
            }
            let _ = tokio::spawn(write(opened, group)).await;
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<(J, oneshot::Sender<R>)>> {
        // The lock guards a plain Vec; a panic while holding it cannot leave it half-changed.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_job_is_answered_once_and_groups_form_under_load() {
        let queue: Arc<GroupCommit<usize, usize>> = Arc::default();
        let groups = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (queue, groups) = (queue.clone(), groups.clone());
            tasks.push(tokio::spawn(async move {
                queue
                    .submit(
                        i,
                        64,
                        || async {},
                        move |(), group| {
                            let groups = groups.clone();
                            async move {
                                groups.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                                for (job, reply) in group {
                                    let _ = reply.send(job * 10);
                                }
                            }
                        },
                    )
                    .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Some(i * 10));
        }
        let groups = groups.load(Ordering::SeqCst);
        assert!(
            groups < 200,
            "{groups} groups for 200 jobs: nothing was grouped"
        );
    }
}
