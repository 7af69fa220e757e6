//! The guard as the HTTP client's DNS resolver.
//!
//! The client's connector connects only to the addresses a resolver returns, so putting
//! the check inside the resolver pins each connection to addresses that were judged a
//! moment before: there is no second lookup an attacker's DNS could answer differently.
//! IP literals never reach a resolver; the sender checks those itself.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::guard::Guard;

/// A [`reqwest::dns::Resolve`] that refuses a name when any of its addresses is refused.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    /// Wraps a guard.
    pub fn new(guard: Guard) -> Self {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = guard.resolve(&host).await?;
            // Port 0 is replaced by the URL's port by the connector.
            let addrs: Addrs = Box::new(
                addrs
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addrs)
        })
    }
}
