//! Server configuration, declared once: [`Config`] is one serde structure whose fields are
//! the keys, and `config/default.toml` (embedded) documents every key with its default.
//! Adding a key means adding its field here, its documented line in `default.toml` and its
//! row in the README; its validation comes with its type (`types.rs`, `catalogue.rs`), or
//! from a rule across keys (`rules.rs`).
//!
//! Loading merges the defaults, the file named by `AMI_CONFIG` and the environment
//! (`sources.rs`), then deserialises with every problem listed at once (`collect.rs`).
//! Debug and `ami config show` both come from the structure; secrets never reach them.

mod catalogue;
mod collect;
mod rules;
mod sip;
mod sip_rules;
mod smpp;
mod smpp_rules;
mod sources;
#[cfg(test)]
mod tests;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ami_webhooks::AllowSubnets;
use serde::{Deserialize, Serialize};

pub use catalogue::{Country, PoolRange};
pub use sip::{SipSection, SipTransport, SipTrunk};
pub use smpp::{SmppConnection, SmppRoute};
pub use types::{
    CallCarrier, Carrier, DatabaseUrl, Durability, LogFormat, Millis, Secret, redact_database_url,
};

use types::{bounded, bounded_list};

/// The documented defaults, compiled in so the binary runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../../../../config/default.toml");

/// The configuration. Each field is a key of `config/default.toml`, where its meaning and
/// default are documented; no field has a default of its own, so that file must name
/// every key. Serialising gives what `ami config show` prints: secrets redacted, the
/// database password masked. Arrays of tables come last, as TOML wants them. Load it with
/// [`Config::load`]: deserialising it directly would skip the rules across keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(with = "types::listen")]
    pub listen: SocketAddr,
    pub database_url: DatabaseUrl,
    pub durability: Durability,
    pub admin_key: Secret,
    pub api_key: Secret,
    pub telco_inbound_key: Secret,
    /// The key that seals secrets at rest; see `secrets_key.rs`.
    pub secrets_key: Secret,
    #[serde(with = "types::optional_path")]
    pub secrets_key_file: Option<PathBuf>,
    pub allow_insecure_db_permissions: bool,
    #[serde(deserialize_with = "bounded::<_, _, 1, 1_000>")]
    pub db_max_connections: u32,
    #[serde(deserialize_with = "bounded::<_, _, 1, 1_073_741_824>")]
    pub body_limit_bytes: usize,
    #[serde(deserialize_with = "bounded::<_, _, 1, 86_400_000>")]
    pub request_timeout_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 1, 3_600_000>")]
    pub header_read_timeout_ms: Millis,
    /// serde_json itself stops at 128 levels.
    #[serde(deserialize_with = "bounded::<_, _, 1, 128>")]
    pub max_json_depth: usize,
    pub sandbox: bool,
    pub carrier: Carrier,
    pub call_carrier: CallCarrier,
    /// `None`: next to the SQLite database, or in memory on PostgreSQL.
    #[serde(with = "types::optional_path")]
    pub sandbox_record_file: Option<PathBuf>,
    pub mock_sign_enabled: bool,
    pub demo_enabled: bool,
    #[serde(deserialize_with = "bounded::<_, _, 1, 1_000>")]
    pub demo_per_address_per_hour: u32,
    /// Without trailing slash; `None`: derived from the bound address, see
    /// [`Config::base_url`].
    #[serde(with = "types::base_url")]
    pub public_base_url: Option<String>,
    #[serde(deserialize_with = "bounded::<_, _, 1, 3_650>")]
    pub offer_ttl_days: u32,
    #[serde(deserialize_with = "bounded::<_, _, 1, 3_650>")]
    pub contract_ttl_days: u32,
    #[serde(deserialize_with = "bounded::<_, _, 0, 3_650>")]
    pub number_quarantine_days: u32,
    pub kyc_required: bool,
    #[serde(deserialize_with = "bounded::<_, _, 1, 3_650>")]
    pub kyc_link_ttl_days: u32,
    #[serde(deserialize_with = "bounded::<_, _, 0, 3_650>")]
    pub kyc_retention_days: u32,
    #[serde(deserialize_with = "bounded::<_, _, 1_024, 20_971_520>")]
    pub kyc_max_document_bytes: usize,
    #[serde(deserialize_with = "bounded::<_, _, 1, 8_760>")]
    pub idempotency_ttl_hours: u32,
    pub metrics_public: bool,
    #[serde(with = "types::subnets")]
    pub webhook_allow_subnets: AllowSubnets,
    #[serde(deserialize_with = "bounded::<_, _, 1, 600_000>")]
    pub webhook_connect_timeout_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 1, 600_000>")]
    pub webhook_timeout_ms: Millis,
    #[serde(deserialize_with = "bounded_list::<_, _, 0, 86_400_000>")]
    pub webhook_retry_delays_ms: Vec<Millis>,
    #[serde(deserialize_with = "bounded::<_, _, 0, 86_400_000>")]
    pub webhook_retry_after_cap_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 1, 86_400_000>")]
    pub webhook_lease_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 1, 10_000>")]
    pub webhook_concurrency: u32,
    pub dispatch_enabled: bool,
    /// Empty: `<hostname>:<port>` of the listen address.
    #[serde(deserialize_with = "types::replica_id")]
    pub replica_id: String,
    #[serde(deserialize_with = "bounded::<_, _, 1, 600_000>")]
    pub carrier_timeout_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 1, 86_400_000>")]
    pub dispatch_lease_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 60_000, 604_800_000>")]
    pub sms_validity_ms: Millis,
    #[serde(deserialize_with = "bounded::<_, _, 60_000, 86_400_000>")]
    pub max_call_ms: Millis,
    /// The `rate_burst` limit a new mobile identity starts with.
    #[serde(deserialize_with = "bounded::<_, _, 1, 10_000>")]
    pub rate_burst: u32,
    /// Empty: loopback and the host of the public URL.
    #[serde(with = "types::comma_list")]
    pub mcp_allowed_hosts: Vec<String>,
    /// Peers whose `X-Forwarded-For` names the client; empty: none.
    #[serde(with = "types::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    #[serde(deserialize_with = "types::log_filter")]
    pub log: String,
    pub log_format: LogFormat,
    /// `None`: no traces are exported.
    #[serde(with = "types::otlp_endpoint")]
    pub otlp_endpoint: Option<String>,
    /// `None`: no scheduled backups (`ami backup --to DIR` still works).
    #[serde(with = "types::optional_path")]
    pub backup_dir: Option<PathBuf>,
    #[serde(deserialize_with = "bounded::<_, _, 1, 604_800>")]
    pub backup_interval_secs: u32,
    #[serde(deserialize_with = "bounded::<_, _, 1, 10_000>")]
    pub backup_keep: u32,
    pub sip: SipSection,
    pub smpp: Vec<SmppConnection>,
    pub smpp_routes: Vec<SmppRoute>,
    pub sip_trunks: Vec<SipTrunk>,
    pub sandbox_pool: Vec<PoolRange>,
    pub demo_pool: Vec<PoolRange>,
    #[serde(deserialize_with = "catalogue::non_empty")]
    pub countries: Vec<Country>,
}

/// Every problem found while loading, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Loads from the real process environment (non-UTF-8 variables are ignored).
    pub fn load() -> Result<Config, ConfigErrors> {
        let env: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::load_from(&env)
    }

    /// Loads with `env` standing in for the process environment (`AMI_CONFIG` included).
    pub fn load_from(env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
        let defaults: toml::Table = toml::from_str(DEFAULT_TOML)
            .map_err(|e| ConfigErrors(vec![format!("embedded defaults: {}", e.message())]))?;
        let mut merged = sources::Merged::new(&defaults);
        if let Some(path) = env.get("AMI_CONFIG").filter(|p| !p.trim().is_empty()) {
            merged.file(path);
        }
        merged.environment(env);

        let (config, problems) = collect::deserialize::<Config>(
            std::mem::take(&mut merged.table),
            &defaults,
            &mut merged.soundness,
        );
        let rules = config
            .as_ref()
            .map(|c| rules::check(c, &merged.soundness))
            .unwrap_or_default();
        let mut errors = std::mem::take(&mut merged.errors);
        for problem in problems.into_iter().chain(rules) {
            errors.push(match problem.path.top() {
                Some(top) => format!("{}: {}{}", problem.path, problem.why, merged.origin_of(top)),
                None => problem.why,
            });
        }
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// `public_base_url`, or `http://<bound address>` with a wildcard host made reachable.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_base_url {
            return url.clone();
        }
        let host = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        format!("http://{host}:{}", bound.port())
    }

    pub fn country(&self, code: &str) -> Option<&Country> {
        self.countries.iter().find(|c| c.code == code)
    }

    /// The effective configuration as TOML for `ami config show`: a set secret shows as
    /// `"<redacted>"`, an unset one as `""`, a database password is masked.
    pub fn redacted_toml(&self) -> String {
        toml::to_string(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}
