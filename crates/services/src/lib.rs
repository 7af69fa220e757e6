//! AMI use cases. Each public function is one transaction: the change, its audit event and
//! any outbox rows are written together or not at all. REST handlers, MCP tools and the CLI
//! all call these functions; none of them holds a business rule of its own.

pub mod admin;
pub mod agent;
pub mod audit_log;
pub mod auth;
pub mod calls;
pub mod carrier_events;
pub mod catalogue;
pub mod contracting;
pub mod demo;
pub mod dispatch;
mod error;
mod group_commit;
pub mod inbound_calls;
pub mod kill_switch;
pub mod kyc;
mod memo;
pub mod metrics;
pub mod mids;
mod own_jobs;
pub mod policy_check;
mod receipts;
pub mod sms;
pub mod sms_preview;
mod sms_send;
pub mod telco;
pub mod usage;
mod validate;
pub mod views;
pub mod voice_config;
pub mod webhooks;

pub use error::{Error, Result};

use std::sync::Arc;

use ami_store::Store;

/// Settings the use cases depend on (a projection of the server configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub countries: Vec<catalogue::Country>,
    pub offer_ttl_ms: i64,
    pub contract_ttl_ms: i64,
    pub quarantine_ms: i64,
    pub mock_sign_enabled: bool,
    pub sandbox: bool,
    /// Base of the signing-page links handed out in contracts.
    pub public_base_url: String,
    pub webhooks: webhooks::WebhookSettings,
    pub dispatch: dispatch::DispatchSettings,
    pub demo: demo::DemoSettings,
    /// The destination prefixes SMS can be routed to; None: every destination.
    pub sms_routes: Option<Vec<String>>,
    /// The longest a call may run once answered; then it is ended (`max_duration`).
    pub max_call_ms: i64,
    /// The representative's identity check (KYC).
    pub kyc: kyc::KycSettings,
    /// The `rate_burst` limit a new MID starts with.
    pub rate_burst: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            countries: catalogue::Country::defaults(),
            offer_ttl_ms: 7 * ami_core::time::DAY_MS,
            contract_ttl_ms: 7 * ami_core::time::DAY_MS,
            quarantine_ms: 30 * ami_core::time::DAY_MS,
            mock_sign_enabled: true,
            sandbox: true,
            public_base_url: "http://127.0.0.1:8080".into(),
            webhooks: webhooks::WebhookSettings::default(),
            dispatch: dispatch::DispatchSettings::default(),
            demo: demo::DemoSettings::default(),
            sms_routes: None,
            max_call_ms: 4 * 3_600_000,
            kyc: kyc::KycSettings::default(),
            rate_burst: ami_core::limits::DEFAULT_RATE_BURST,
        }
    }
}

/// A clock the tests can set.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        ami_core::time::now_ms()
    }
}

/// The services, shared: every request and worker holds a clone of one handle.
#[derive(Clone)]
pub struct Services(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    /// SHA-256 of the operator key, loaded at start.
    admin_key_hash: String,
    /// Rung when a job is queued, so the dispatcher need not wait for its next poll.
    pub dispatch_wakeup: Arc<tokio::sync::Notify>,
    /// Rung when webhook deliveries become due, so the delivery worker need not wait for
    /// its next poll.
    pub webhook_wakeup: Arc<tokio::sync::Notify>,
    /// Sends leased to this process's own dispatcher.
    own_jobs: own_jobs::OwnJobs,
    /// Demo runs per client address.
    demo_admissions: demo::Admissions,
    /// Claims made so far, of outbox jobs and of webhook deliveries: whoever must know that
    /// a worker has looked for due work since some moment (a test after it moved the clock)
    /// waits for these to move on.
    claims: Claims,
    /// Agent sends waiting to be written together.
    sms_sends: group_commit::GroupCommit<sms_send::SendJob, Result<sms_send::Accepted>>,
    /// What the use cases measure, for `GET /metrics`.
    pub metrics: metrics::Metrics,
    /// The proof the server's own work shows to act across tenants (`ami_store::system`).
    /// Private to this crate: handlers reach the use cases, never this.
    system: ami_store::System,
}

impl Services {
    pub fn new(
        store: Store,
        settings: Settings,
        clock: Arc<dyn Clock>,
        admin_key_hash: String,
    ) -> Self {
        Self(Arc::new(Shared {
            store,
            settings: Arc::new(settings),
            clock,
            admin_key_hash,
            dispatch_wakeup: Arc::default(),
            webhook_wakeup: Arc::default(),
            own_jobs: Default::default(),
            demo_admissions: Default::default(),
            claims: Default::default(),
            sms_sends: Default::default(),
            metrics: Default::default(),
            system: make_system(),
        }))
    }

    /// For the server's own work (workers, authentication's lookups, the operator's views):
    /// the proof that it may act across tenants. Never handed out of this crate.
    pub(crate) fn system(&self) -> &ami_store::System {
        &self.system
    }

    /// The owner of a row the server's own work loaded, to call a tenant-scoped function
    /// for it.
    pub(crate) fn row_account(&self, id: &str) -> ami_store::AccountId {
        ami_store::AccountId::of_row(&self.system, id)
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// How many times a dispatcher of this process has claimed due outbox jobs.
    pub fn job_claims(&self) -> u64 {
        self.claims.jobs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many times a worker of this process has claimed due webhook deliveries.
    pub fn delivery_claims(&self) -> u64 {
        self.claims
            .deliveries
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the one System proof, made when the services start"
)]
fn make_system() -> ami_store::System {
    ami_tenant::mint::system()
}

#[derive(Default)]
struct Claims {
    jobs: std::sync::atomic::AtomicU64,
    deliveries: std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for Services {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
