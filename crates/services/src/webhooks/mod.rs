//! Outbound webhooks (PROTOCOL §8).
//!
//! - [`registration`]: the customer registers, lists, deletes and re-enables webhooks.
//! - [`deliveries`]: the customer sees deliveries and their attempts, redelivers one, pings.
//! - `emit`: events fanned out to matching webhooks as durable deliveries, inside the
//!   transaction of the change that causes them.
//! - [`worker`]: claim due deliveries, attempt them (signed, through the SSRF guard),
//!   record the outcomes and decide what follows.

pub mod deliveries;
mod emit;
mod payload;
pub mod registration;
pub mod views;
pub mod worker;

pub use ami_store::webhooks::Scope;
pub(crate) use emit::Emission;

use ami_webhooks::{AllowSubnets, Guard, RetrySchedule};

use crate::audit_log::Subject;
use crate::{Error, Result, validate};

/// Most webhooks of one MID (and of one account's own scope).
pub const MAX_PER_SCOPE: i64 = 10;

/// Deliveries failed in a row after which a webhook is disabled.
pub const AUTO_DISABLE_AFTER: i64 = 10;

/// Webhook delivery settings (a projection of the server configuration).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Judges URLs at registration; the sender judges them again before every attempt.
    pub guard: Guard,
    /// When a failed attempt is tried again, and when a delivery gives up.
    pub schedule: RetrySchedule,
    /// How long a claimed delivery belongs to one worker: longer than an attempt can take,
    /// so that nobody else attempts it meanwhile.
    pub lease_ms: i64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            guard: Guard::new(AllowSubnets::none()),
            schedule: RetrySchedule::default(),
            lease_ms: 60_000,
        }
    }
}

const WEBHOOK: &str = "webhook";

/// The scope's MID id must be well formed; a malformed one is simply not found.
fn check_scope_id(scope: Scope<'_>) -> Result<()> {
    match scope {
        Scope::Mid(mid) => validate::id("mid", "mobile_identity", mid),
        Scope::Account => Ok(()),
    }
}

/// The 404 of a scope that is not the caller's: the MID's, like any missing MID.
fn scope_not_found(scope: Scope<'_>) -> Error {
    match scope {
        Scope::Mid(_) => Error::not_found("mobile_identity"),
        Scope::Account => Error::not_found("account"),
    }
}

fn scope_name(scope: Scope<'_>) -> &'static str {
    match scope {
        Scope::Mid(_) => "mid",
        Scope::Account => "account",
    }
}

fn subject<'a>(account_id: &'a str, scope: Scope<'a>, webhook_id: &'a str) -> Subject<'a> {
    Subject {
        account_id: Some(account_id),
        entity_type: WEBHOOK,
        entity_id: webhook_id,
        mid: match scope {
            Scope::Mid(mid) => Some(mid),
            Scope::Account => None,
        },
    }
}

/// The host of a stored URL, for audit records: a path or query may carry the receiver's
/// own token, the host does not.
fn host_of(url: &str) -> String {
    ami_webhooks::WebhookUrl::parse_stored(url)
        .map(|u| u.host().to_string())
        .unwrap_or_default()
}
