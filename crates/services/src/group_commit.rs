//! Group commit: requests that arrive while a transaction of the same kind is being written
//! wait for it, and the next one writes all of them together. Each request still gets its own
//! answer; the store sees one transaction and a handful of statements for the whole group
//! instead of a dozen statements per request. On SQLite, where every write goes through one
//! connection, this is what lets the write path keep up with concurrent clients.
//!
//! One task writes the groups, one after another, for as long as requests come: between two
//! groups no request has to be woken to take over the writing, and a request that goes away
//! cannot cut its group short. The group is taken once its transaction is open, so the
//! requests that arrive while the writer waits for the connection (held by the dispatcher or
//! the delivery reports) join it.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures_util::FutureExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

/// A job and where its answer goes.
pub(crate) type Waiting<J, R> = (J, oneshot::Sender<R>);

/// A queue of requests of type `J`, each answered with an `R`.
pub(crate) struct GroupCommit<J, R> {
    /// Started with the first request, from inside the runtime.
    queue: OnceLock<UnboundedSender<Waiting<J, R>>>,
}

impl<J, R> Default for GroupCommit<J, R> {
    fn default() -> Self {
        Self {
            queue: OnceLock::new(),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> GroupCommit<J, R> {
    /// Queues `job` and returns its answer, or None if its group's writer failed without
    /// answering (a panic). The first request starts the writer task with the steps
    /// `writer` gives: `open` begins a transaction (None once there is nothing left to write
    /// for), and `write` writes the jobs queued by then (at most `max`, in their order of
    /// arrival) and must answer every one. The task ends when the queue is dropped.
    pub(crate) async fn submit<T, O, OFut, F, Fut>(
        &self,
        job: J,
        max: usize,
        writer: impl FnOnce() -> (O, F),
    ) -> Option<R>
    where
        T: Send + 'static,
        O: Fn() -> OFut + Send + 'static,
        OFut: Future<Output = Option<T>> + Send + 'static,
        F: Fn(T, Vec<Waiting<J, R>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let queue = self.queue.get_or_init(|| {
            let (queue, incoming) = unbounded_channel();
            let (open, write) = writer();
            tokio::spawn(write_groups(incoming, max, open, write));
            queue
        });
        let (tx, rx) = oneshot::channel();
        queue.send((job, tx)).ok()?;
        rx.await.ok()
    }
}

async fn write_groups<J, R, T, O, OFut, F, Fut>(
    mut incoming: UnboundedReceiver<Waiting<J, R>>,
    max: usize,
    open: O,
    write: F,
) where
    O: Fn() -> OFut,
    OFut: Future<Output = Option<T>>,
    F: Fn(T, Vec<Waiting<J, R>>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut group = Vec::with_capacity(max);
    while incoming.recv_many(&mut group, max).await > 0 {
        let Some(opened) = open().await else { return };
        while group.len() < max {
            match incoming.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // A panicking group drops its answers (its requests fail) but not the writer.
        let written = AssertUnwindSafe(write(opened, std::mem::take(&mut group)))
            .catch_unwind()
            .await;
        if written.is_err() {
            tracing::error!("a group's writer panicked; its requests were not answered");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    type Group = Vec<Waiting<usize, usize>>;

    fn steps(
        groups: Arc<AtomicUsize>,
    ) -> (
        impl Fn() -> std::future::Ready<Option<()>> + Send + 'static,
        impl Fn((), Group) -> futures_util::future::BoxFuture<'static, ()> + Send + 'static,
    ) {
        let open = || std::future::ready(Some(()));
        let write = move |(), group: Group| {
            let groups = groups.clone();
            async move {
                groups.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                if group.iter().any(|(job, _)| *job == 13) {
                    panic!("a group that fails");
                }
                for (job, reply) in group {
                    let _ = reply.send(job * 10);
                }
            }
            .boxed()
        };
        (open, write)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_job_is_answered_once_and_groups_form_under_load() {
        let queue: Arc<GroupCommit<usize, usize>> = Arc::default();
        let groups = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (queue, groups) = (queue.clone(), groups.clone());
            tasks.push(tokio::spawn(async move {
                queue.submit(i, 64, || steps(groups)).await
            }));
        }
        let mut failed = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Some(answer) => assert_eq!(answer, i * 10),
                None => failed += 1,
            }
        }
        assert!(
            failed >= 1,
            "the panicking group's requests are not answered"
        );
        let groups = groups.load(Ordering::SeqCst);
        assert!(
            groups < 200,
            "{groups} groups for 200 jobs: nothing was grouped"
        );
        assert_eq!(
            queue.submit(7, 64, || steps(Arc::default())).await,
            Some(70),
            "the writer outlives a panicking group"
        );
    }
}
