//! The HTTP client that delivers webhooks.
//!
//! One client for all deliveries, built so that the guard cannot be bypassed: no proxy
//! (a proxy would resolve the name after our check), no redirects (a 3xx could point
//! anywhere), the guarded resolver (connections go only to just-checked addresses), no
//! connection reuse (every attempt resolves and checks again), no decompression, and
//! timeouts on connect and on the whole attempt. IP literals never reach a resolver, so
//! the URL is checked again right before each attempt.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use reqwest::redirect::Policy;

use crate::error::GuardError;
use crate::excerpt::{EXCERPT_MAX, escape_excerpt};
use crate::guard::Guard;
use crate::outcome::{AttemptError, AttemptOutcome};
use crate::retry_after::parse_retry_after;
use crate::webhook_url::WebhookUrl;

/// The most response body an attempt reads, whatever the receiver sends.
pub const MAX_BODY_READ: usize = 64 * 1024;

/// Sender settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// TCP (and name resolution) plus TLS handshake.
    pub connect_timeout: Duration,
    /// The whole attempt, body read included.
    pub total_timeout: Duration,
    /// Read cap for the response body.
    pub max_body_read: usize,
    /// Cap for the stored, escaped excerpt.
    pub excerpt_max: usize,
    /// `User-Agent` of deliveries.
    pub user_agent: String,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_body_read: MAX_BODY_READ,
            excerpt_max: EXCERPT_MAX,
            user_agent: concat!("AMI-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// The client could not be built (TLS backend initialisation).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct SenderBuildError(#[from] reqwest::Error);

/// Delivers signed webhook bodies through the guard.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
    config: SenderConfig,
}

impl Sender {
    /// Builds the one client all deliveries share.
    pub fn new(guard: Guard, config: SenderConfig) -> Result<Self, SenderBuildError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .dns_resolver(Arc::new(guard.resolver()))
            .no_proxy()
            .redirect(Policy::none())
            .referer(false)
            .http1_only()
            // Reusing a connection would skip the per-attempt resolution and check.
            .pool_max_idle_per_host(0)
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .user_agent(config.user_agent.clone())
            .build()?;
        Ok(Sender {
            client,
            guard,
            config,
        })
    }

    /// The guard this sender checks with.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// One attempt: re-check the URL, POST `body` with `headers`, read a bounded part
    /// of the answer. Never fails as a Rust error: every failure is an outcome to record.
    pub async fn send(&self, url: &WebhookUrl, headers: HeaderMap, body: Bytes) -> AttemptOutcome {
        let started = Instant::now();
        // The stored URL is judged again under today's rules and allowlist. This is the
        // only check an IP literal gets, as literals bypass the resolver.
        let checked = match self.guard.check_url(url.as_str()) {
            Ok(checked) => checked,
            Err(refusal) => {
                return AttemptOutcome::failed(AttemptError::Refused(refusal), elapsed_ms(started));
            }
        };
        let request = self
            .client
            .post(checked.as_str())
            .headers(headers)
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return AttemptOutcome::failed(transport_error(&error), elapsed_ms(started));
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = read_capped(response, self.config.max_body_read, self.config.excerpt_max).await;
        AttemptOutcome {
            status: Some(status.as_u16()),
            latency_ms: elapsed_ms(started),
            error: status.is_redirection().then_some(AttemptError::Redirect),
            retry_after,
            response_excerpt: body.excerpt,
            body_bytes_read: body.read,
            body_complete: body.complete,
        }
    }
}

struct CappedBody {
    excerpt: String,
    read: u64,
    complete: bool,
}

/// Reads the body chunk by chunk, keeping only the excerpt's worth of bytes and
/// stopping at `cap`; dropping the response then closes the connection. A failure
/// while reading does not undo the status the receiver already sent.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    excerpt_max: usize,
) -> CappedBody {
    // Escaping at most quadruples a byte, and never shrinks it: `excerpt_max` raw bytes
    // are always enough to fill the excerpt.
    let mut head: Vec<u8> = Vec::with_capacity(excerpt_max.min(cap));
    let mut read: usize = 0;
    let complete = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(cap - read);
                let keep = take.min(excerpt_max.saturating_sub(head.len()));
                head.extend_from_slice(&chunk[..keep]);
                read += take;
                if take < chunk.len() || read >= cap {
                    break false;
                }
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    let (excerpt, _) = escape_excerpt(&head, excerpt_max);
    CappedBody {
        excerpt,
        read: u64::try_from(read).unwrap_or(u64::MAX),
        complete,
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Maps a client error to an attempt error; a refusal by the guarded resolver is found
/// in the error's source chain and reported with its reason.
fn transport_error(error: &reqwest::Error) -> AttemptError {
    if let Some(refusal) = guard_refusal(error) {
        return AttemptError::Refused(refusal);
    }
    if error.is_timeout() {
        AttemptError::Timeout
    } else if error.is_connect() {
        AttemptError::Connect
    } else {
        AttemptError::Request
    }
}

fn guard_refusal(error: &reqwest::Error) -> Option<GuardError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(refusal) = err.downcast_ref::<GuardError>() {
            return Some(refusal.clone());
        }
        current = err.source();
    }
    None
}
