//! Name lookup behind the guard: the system resolver in production, a fixed table in
//! tests.
//!
//! The lookup only answers; judging the answer is the guard's job, so a test table can
//! return any address (including refused ones) to prove that the guard refuses it.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Mutex;

/// The future a [`Lookup`] returns.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves a host name to all of its addresses (A and AAAA).
pub trait Lookup: Send + Sync {
    /// Every address of `host`; an empty list or an error both mean "do not connect".
    fn lookup(&self, host: &str) -> LookupFuture;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread, via tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// A fixed table of answers that never touches the network. A name can answer
/// differently on successive lookups (the last answer repeats), which is how tests
/// play DNS rebinding. Unknown names fail, as NXDOMAIN would.
#[derive(Debug, Default)]
pub struct StaticLookup {
    table: Mutex<HashMap<String, Answers>>,
}

#[derive(Debug, Default)]
struct Answers {
    sequence: Vec<Vec<IpAddr>>,
    calls: usize,
}

fn key(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

impl StaticLookup {
    /// An empty table: every name fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// `host` always answers `addrs`.
    pub fn with(self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.with_sequence(host, vec![addrs.into_iter().collect()])
    }

    /// `host` answers `sequence[0]` on the first lookup, `sequence[1]` on the second,
    /// and so on; the last answer repeats.
    pub fn with_sequence(self, host: &str, sequence: Vec<Vec<IpAddr>>) -> Self {
        self.lock()
            .insert(key(host), Answers { sequence, calls: 0 });
        self
    }

    /// How many times `host` was looked up.
    pub fn calls(&self, host: &str) -> usize {
        self.lock()
            .get(&key(host))
            .map_or(0, |answers| answers.calls)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Answers>> {
        // A poisoned table is still a valid table: the panic that poisoned it is the
        // test failure to report, not this.
        self.table
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn answer(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let mut table = self.lock();
        let answers = table
            .get_mut(&key(host))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))?;
        let index = answers.calls.min(answers.sequence.len().saturating_sub(1));
        answers.calls += 1;
        Ok(answers.sequence.get(index).cloned().unwrap_or_default())
    }
}

impl Lookup for StaticLookup {
    fn lookup(&self, host: &str) -> LookupFuture {
        let answer = self.answer(host);
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sequence_then_repeat_and_unknown_fails() {
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.1".parse().unwrap();
        let table = StaticLookup::new().with_sequence("X.test.", vec![vec![a], vec![b]]);
        assert_eq!(table.lookup("x.test").await.unwrap(), vec![a]);
        assert_eq!(table.lookup("x.test").await.unwrap(), vec![b]);
        assert_eq!(table.lookup("x.test").await.unwrap(), vec![b]);
        assert_eq!(table.calls("x.test"), 3);
        assert!(table.lookup("y.test").await.is_err());
    }

    #[tokio::test]
    async fn system_lookup_answers_literals_without_dns() {
        let addrs = SystemLookup.lookup("127.0.0.1").await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
    }
}
