//! The SSRF guard: the URL rules plus resolution, with one allowlist and one lookup.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::allowlist::AllowSubnets;
use crate::error::GuardError;
use crate::host_names::is_blocked_host_name;
use crate::lookup::{Lookup, SystemLookup};
use crate::resolver::GuardedResolver;
use crate::webhook_url::{WebhookHost, WebhookUrl, check_url};

/// How long a lookup may take before the guard gives up (fail closed).
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The guard used at registration and, through [`GuardedResolver`], at every
/// connection the sender makes.
#[derive(Clone)]
pub struct Guard {
    allow: AllowSubnets,
    lookup: Arc<dyn Lookup>,
    lookup_timeout: Duration,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("allow", &self.allow)
            .field("lookup_timeout", &self.lookup_timeout)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard with the system resolver.
    pub fn new(allow: AllowSubnets) -> Self {
        Guard {
            allow,
            lookup: Arc::new(SystemLookup),
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
        }
    }

    /// Replaces the resolver (tests pass a [`crate::StaticLookup`]).
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> Self {
        self.lookup = lookup;
        self
    }

    /// Replaces the lookup timeout.
    pub fn with_lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    /// The operator allowlist in force.
    pub fn allow_subnets(&self) -> &AllowSubnets {
        &self.allow
    }

    /// The URL rules without resolution (see [`check_url`]).
    pub fn check_url(&self, input: &str) -> Result<WebhookUrl, GuardError> {
        check_url(input, &self.allow)
    }

    /// Registration: the URL rules, then resolution of a domain host, refusing the URL
    /// if any address it resolves to is refused.
    pub async fn check_url_resolving(&self, input: &str) -> Result<WebhookUrl, GuardError> {
        let url = self.check_url(input)?;
        if let WebhookHost::Domain(name) = url.host() {
            self.resolve(name).await?;
        }
        Ok(url)
    }

    /// Resolves `host` and returns its addresses only if every one of them is allowed.
    /// One bad answer refuses the whole name: a mixed answer is either a mistake or a
    /// rebinding attempt, and a clear refusal beats a connection to whichever address
    /// happens to come first.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, GuardError> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        // The HTTP client never asks a resolver about literals, but if anything does,
        // judge the literal rather than letting a system resolver interpret it.
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.allow.judge(ip).map_err(GuardError::BlockedAddress)?;
            return Ok(vec![ip]);
        }
        if is_blocked_host_name(&bare.to_ascii_lowercase()) {
            return Err(GuardError::BlockedHostName);
        }
        let answer = tokio::time::timeout(self.lookup_timeout, self.lookup.lookup(bare))
            .await
            .map_err(|_| GuardError::ResolutionTimeout)?
            .map_err(|_| GuardError::ResolutionFailed)?;
        if answer.is_empty() {
            return Err(GuardError::NoAddresses);
        }
        let mut addrs: Vec<IpAddr> = Vec::with_capacity(answer.len());
        for ip in answer {
            self.allow
                .judge(ip)
                .map_err(GuardError::ResolvesToBlockedAddress)?;
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        Ok(addrs)
    }

    /// The resolver to install in the HTTP client, so that it connects only to
    /// addresses this guard has just checked.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::StaticLookup;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn guard() -> Guard {
        let table = StaticLookup::new()
            .with("public.test", [ip("8.8.8.8"), ip("2606:4700:4700::1111")])
            .with("mixed.test", [ip("8.8.8.8"), ip("10.0.0.5")])
            .with("v6bad.test", [ip("8.8.8.8"), ip("::1")])
            .with("empty.test", []);
        Guard::new(AllowSubnets::none()).with_lookup(Arc::new(table))
    }

    #[tokio::test]
    async fn resolution_rules() {
        let g = guard();
        assert_eq!(g.resolve("public.test").await.unwrap().len(), 2);
        assert_eq!(
            g.resolve("mixed.test").await,
            Err(GuardError::ResolvesToBlockedAddress(
                crate::address::classify(ip("10.0.0.5")).unwrap_err()
            ))
        );
        assert!(g.resolve("v6bad.test").await.is_err());
        assert_eq!(g.resolve("empty.test").await, Err(GuardError::NoAddresses));
        assert_eq!(
            g.resolve("nx.test").await,
            Err(GuardError::ResolutionFailed)
        );
        assert!(g.resolve("127.0.0.1").await.is_err());
        assert!(g.resolve("[::1]").await.is_err());
        assert_eq!(
            g.resolve("localhost").await,
            Err(GuardError::BlockedHostName)
        );
    }

    #[tokio::test]
    async fn registration_resolves_domains() {
        let g = guard();
        assert!(g.check_url_resolving("https://public.test/h").await.is_ok());
        assert_eq!(
            g.check_url_resolving("https://mixed.test/h")
                .await
                .unwrap_err()
                .reason(),
            "resolves_to_blocked_address:private"
        );
    }

    struct Slow;
    impl Lookup for Slow {
        fn lookup(&self, _host: &str) -> crate::lookup::LookupFuture {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(vec![])
            })
        }
    }

    #[tokio::test]
    async fn slow_lookup_fails_closed() {
        let g = Guard::new(AllowSubnets::none())
            .with_lookup(Arc::new(Slow))
            .with_lookup_timeout(Duration::from_millis(50));
        assert_eq!(
            g.resolve("slow.test").await,
            Err(GuardError::ResolutionTimeout)
        );
    }
}
