//! Server configuration: the embedded `config/default.toml`, then the TOML file named by
//! `AMI_CONFIG`, then the environment (`AMI_<KEY>` plus the PROTOCOL §0 aliases).
//! Every problem is collected and reported at once; secrets never reach Debug or errors.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use ami_core::money::{self, Micros};
use ami_core::phone::E164;
use ami_webhooks::AllowSubnets;
use serde::{Deserialize, Serialize};

/// The documented defaults, compiled in so the binary runs with no file at all.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

const REDACTED: &str = "<redacted>";
/// Largest price accepted in the catalogue, in currency units (COP prices are large).
const MAX_PRICE_UNITS: f64 = 1_000_000_000.0;
const SIM_TYPES: &[&str] = &["eSIM", "physical"];
const CAPABILITIES: &[&str] = &["sms", "voice"];

/// A configured secret. Its Debug is redacted so no `{:?}` of the config can leak it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `count` consecutive sandbox numbers starting at `from`.
#[derive(Debug, Clone)]
pub struct PoolRange {
    pub country: String,
    pub from: E164,
    pub count: u32,
    first: u64,
}

impl PoolRange {
    /// Every number of the range, in order, as E.164 strings.
    pub fn numbers(&self) -> impl Iterator<Item = String> + '_ {
        (0..u64::from(self.count)).map(move |i| format!("+{}", self.first + i))
    }
}

/// One entry of the country catalogue. Money is integer micro-units (PROTOCOL §0).
#[derive(Debug, Clone)]
pub struct Country {
    pub code: String,
    pub msisdn_prefix: String,
    pub name: String,
    pub currency: String,
    /// Micro-units of `currency`.
    pub monthly_price_micros: Micros,
    /// Micro-units of `currency`.
    pub setup_fee_micros: Micros,
    pub sim_types: Vec<String>,
    pub capabilities: Vec<String>,
    /// Micro-euros per SMS segment.
    pub sms_price_eur_micros: Micros,
    /// Micro-euros per started minute.
    pub call_per_min_eur_micros: Micros,
}

/// The validated configuration. Field names are the keys of `config/default.toml`.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Always with a scheme: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    pub admin_key: Option<Secret>,
    pub api_key: Option<Secret>,
    pub telco_inbound_key: Option<Secret>,
    pub allow_insecure_db_permissions: bool,
    pub db_max_connections: u32,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    pub max_json_depth: usize,
    pub sandbox: bool,
    pub mock_sign_enabled: bool,
    /// Without trailing slash; `None` = derive from the bound address, see [`Config::base_url`].
    pub public_base_url: Option<String>,
    pub offer_ttl_days: u32,
    pub contract_ttl_days: u32,
    pub number_quarantine_days: u32,
    pub idempotency_ttl_hours: u32,
    pub metrics_public: bool,
    pub webhook_allow_subnets: AllowSubnets,
    pub webhook_connect_timeout_ms: u64,
    pub webhook_timeout_ms: u64,
    pub webhook_retry_delays_ms: Vec<u64>,
    pub webhook_retry_after_cap_ms: u64,
    pub webhook_lease_ms: u64,
    pub webhook_concurrency: u32,
    /// Run the outbox dispatcher; false for an API-only replica (`ami serve --role api`).
    pub dispatch_enabled: bool,
    /// `Host` values `/mcp` answers; empty: loopback and the host of the public URL.
    pub mcp_allowed_hosts: Vec<String>,
    pub log: String,
    pub sandbox_pool: Vec<PoolRange>,
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
        let mut errors = Vec::new();
        let mut table: toml::Table = toml::from_str(DEFAULT_TOML)
            .map_err(|e| ConfigErrors(vec![format!("embedded defaults: {}", e.message())]))?;
        let mut origin: HashMap<String, String> = HashMap::new();

        if let Some(path) = env.get("AMI_CONFIG").filter(|p| !p.trim().is_empty()) {
            merge_file(&mut table, &mut origin, path, &mut errors);
        }
        merge_env(&mut table, &mut origin, env, &mut errors);

        let mut r = Reader {
            table: &table,
            origin: &origin,
            errors: &mut errors,
        };
        let config = r.build();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
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
        let shown = Shown {
            listen: self.listen.to_string(),
            database_url: redact_database_url(&self.database_url),
            admin_key: shown_secret(&self.admin_key),
            api_key: shown_secret(&self.api_key),
            telco_inbound_key: shown_secret(&self.telco_inbound_key),
            allow_insecure_db_permissions: self.allow_insecure_db_permissions,
            db_max_connections: self.db_max_connections,
            body_limit_bytes: self.body_limit_bytes as u64,
            request_timeout_ms: self.request_timeout_ms,
            header_read_timeout_ms: self.header_read_timeout_ms,
            max_json_depth: self.max_json_depth as u64,
            sandbox: self.sandbox,
            mock_sign_enabled: self.mock_sign_enabled,
            public_base_url: self.public_base_url.clone().unwrap_or_default(),
            offer_ttl_days: self.offer_ttl_days,
            contract_ttl_days: self.contract_ttl_days,
            number_quarantine_days: self.number_quarantine_days,
            idempotency_ttl_hours: self.idempotency_ttl_hours,
            metrics_public: self.metrics_public,
            webhook_allow_subnets: self.webhook_allow_subnets.to_string(),
            webhook_connect_timeout_ms: self.webhook_connect_timeout_ms,
            webhook_timeout_ms: self.webhook_timeout_ms,
            webhook_retry_delays_ms: self.webhook_retry_delays_ms.clone(),
            webhook_retry_after_cap_ms: self.webhook_retry_after_cap_ms,
            webhook_lease_ms: self.webhook_lease_ms,
            webhook_concurrency: self.webhook_concurrency,
            dispatch_enabled: self.dispatch_enabled,
            mcp_allowed_hosts: self.mcp_allowed_hosts.join(","),
            log: self.log.clone(),
            sandbox_pool: self
                .sandbox_pool
                .iter()
                .map(|p| PoolRaw {
                    country: p.country.clone(),
                    from: p.from.to_string(),
                    count: i64::from(p.count),
                })
                .collect(),
            countries: self
                .countries
                .iter()
                .map(|c| CountryRaw {
                    code: c.code.clone(),
                    msisdn_prefix: c.msisdn_prefix.clone(),
                    name: c.name.clone(),
                    currency: c.currency.clone(),
                    monthly_price: units(c.monthly_price_micros),
                    setup_fee: units(c.setup_fee_micros),
                    sim_types: c.sim_types.clone(),
                    capabilities: c.capabilities.clone(),
                    sms_price_eur: units(c.sms_price_eur_micros),
                    call_per_min_eur: units(c.call_per_min_eur_micros),
                })
                .collect(),
        };
        toml::to_string(&shown)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_database_url(&self.database_url))
            .field("admin_key", &self.admin_key)
            .field("api_key", &self.api_key)
            .field("telco_inbound_key", &self.telco_inbound_key)
            .field(
                "allow_insecure_db_permissions",
                &self.allow_insecure_db_permissions,
            )
            .field("db_max_connections", &self.db_max_connections)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("header_read_timeout_ms", &self.header_read_timeout_ms)
            .field("max_json_depth", &self.max_json_depth)
            .field("sandbox", &self.sandbox)
            .field("mock_sign_enabled", &self.mock_sign_enabled)
            .field("public_base_url", &self.public_base_url)
            .field("offer_ttl_days", &self.offer_ttl_days)
            .field("contract_ttl_days", &self.contract_ttl_days)
            .field("number_quarantine_days", &self.number_quarantine_days)
            .field("idempotency_ttl_hours", &self.idempotency_ttl_hours)
            .field("metrics_public", &self.metrics_public)
            .field("webhook_allow_subnets", &self.webhook_allow_subnets)
            .field(
                "webhook_connect_timeout_ms",
                &self.webhook_connect_timeout_ms,
            )
            .field("webhook_timeout_ms", &self.webhook_timeout_ms)
            .field("webhook_retry_delays_ms", &self.webhook_retry_delays_ms)
            .field(
                "webhook_retry_after_cap_ms",
                &self.webhook_retry_after_cap_ms,
            )
            .field("webhook_lease_ms", &self.webhook_lease_ms)
            .field("webhook_concurrency", &self.webhook_concurrency)
            .field("dispatch_enabled", &self.dispatch_enabled)
            .field("mcp_allowed_hosts", &self.mcp_allowed_hosts)
            .field("log", &self.log)
            .field("sandbox_pool", &self.sandbox_pool)
            .field("countries", &self.countries)
            .finish()
    }
}

/// Masks the password of a URL (`user:<redacted>@host`, `?password=<redacted>`).
pub fn redact_database_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    // The last '@' before the query ends the userinfo, whatever the password contains.
    let mut out = String::from(head);
    match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &before_query[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&before_query[at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn shown_secret(s: &Option<Secret>) -> String {
    if s.is_some() {
        REDACTED.to_owned()
    } else {
        String::new()
    }
}

fn units(micros: Micros) -> f64 {
    micros as f64 / money::MICROS_PER_UNIT as f64
}

/// A value echoed in an error message: printable, bounded.
fn shown(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 {
        format!("{}…", escaped.chars().take(80).collect::<String>())
    } else {
        escaped
    }
}

/// A TOML syntax error by position only: the offending line may hold a secret.
fn syntax_error(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

fn merge_file(
    table: &mut toml::Table,
    origin: &mut HashMap<String, String>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            errors.push(format!("AMI_CONFIG: cannot read {}: {e}", shown(path)));
            return;
        }
    };
    let file: toml::Table = match toml::from_str(&text) {
        Ok(file) => file,
        Err(e) => {
            errors.push(format!("{}: {}", shown(path), syntax_error(&e, &text)));
            return;
        }
    };
    for (key, value) in file {
        if table.contains_key(&key) {
            origin.insert(key.clone(), format!("file {}", shown(path)));
            table.insert(key, value);
        } else {
            errors.push(format!("{}: unknown key `{}`", shown(path), shown(&key)));
        }
    }
}

fn merge_env(
    table: &mut toml::Table,
    origin: &mut HashMap<String, String>,
    env: &HashMap<String, String>,
    errors: &mut Vec<String>,
) {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let var = format!("AMI_{}", key.to_ascii_uppercase());
        let (var, raw) = match env.get(&var) {
            Some(raw) => (var, raw),
            None if key == "database_url" => match env.get("DATABASE_URL") {
                Some(raw) => ("DATABASE_URL".to_owned(), raw),
                None => continue,
            },
            None => continue,
        };
        let Some(default) = table.get(&key) else {
            continue;
        };
        match env_value(default, raw) {
            Ok(value) => {
                table.insert(key.clone(), value);
                origin.insert(key, var);
            }
            Err(why) => errors.push(format!("{var}: {why}")),
        }
    }
    if let Some(port) = env.get("PORT").filter(|_| !env.contains_key("AMI_LISTEN")) {
        match port.trim().parse::<u16>() {
            Ok(port) => {
                table.insert(
                    "listen".into(),
                    toml::Value::String(format!("0.0.0.0:{port}")),
                );
                origin.insert("listen".into(), "PORT".into());
            }
            Err(_) => errors.push(format!("PORT: `{}` is not a port number", shown(port))),
        }
    }
}

/// An environment value typed like the key's default: strings verbatim, others as TOML.
fn env_value(default: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_owned())),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("`{}` is not a boolean (true or false)", shown(raw))),
        },
        _ => {
            let doc = format!("v = {raw}");
            let mut parsed: toml::Table = toml::from_str(&doc).map_err(|e| {
                format!(
                    "not a TOML {}: {}",
                    default.type_str(),
                    syntax_error(&e, &doc)
                )
            })?;
            parsed
                .remove("v")
                .ok_or_else(|| "not a TOML value".to_owned())
        }
    }
}

/// Typed reads from the merged table; each problem is recorded and a placeholder returned,
/// so that every key gets checked in one pass.
struct Reader<'a> {
    table: &'a toml::Table,
    origin: &'a HashMap<String, String>,
    errors: &'a mut Vec<String>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, key: &str, why: impl fmt::Display) {
        match self.origin.get(key) {
            Some(from) => self.errors.push(format!("{key}: {why} (from {from})")),
            None => self.errors.push(format!("{key}: {why}")),
        }
    }

    fn value(&mut self, key: &str) -> Option<&'a toml::Value> {
        let v = self.table.get(key);
        if v.is_none() {
            self.fail(key, "missing");
        }
        v
    }

    fn wrong_type(&mut self, key: &str, expected: &str, got: &toml::Value) {
        self.fail(
            key,
            format!("expected {expected}, found {}", got.type_str()),
        );
    }

    fn string(&mut self, key: &str) -> String {
        match self.value(key) {
            Some(toml::Value::String(s)) => s.trim().to_owned(),
            Some(other) => {
                self.wrong_type(key, "a string", other);
                String::new()
            }
            None => String::new(),
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        match self.value(key) {
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => {
                self.wrong_type(key, "a boolean", other);
                false
            }
            None => false,
        }
    }

    fn int(&mut self, key: &str, min: i64, max: i64) -> i64 {
        match self.value(key) {
            Some(toml::Value::Integer(n)) if (min..=max).contains(n) => *n,
            Some(toml::Value::Integer(n)) if *n <= 0 && min >= 1 => {
                self.fail(key, format!("must be greater than zero, got {n}"));
                min
            }
            Some(toml::Value::Integer(n)) => {
                self.fail(key, format!("must be between {min} and {max}, got {n}"));
                min
            }
            Some(other) => {
                self.wrong_type(key, "an integer", other);
                min
            }
            None => min,
        }
    }

    /// Comma-separated CIDR blocks (or single addresses); every bad entry is named.
    fn allow_subnets(&mut self, key: &str) -> AllowSubnets {
        let raw = self.string(key);
        let mut good = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match AllowSubnets::parse(part) {
                Ok(_) => good.push(part),
                Err(_) => self.fail(key, format!("`{}` is not a CIDR", shown(part))),
            }
        }
        AllowSubnets::parse(&good.join(",")).unwrap_or_default()
    }

    /// An array of durations in milliseconds, each at most a day.
    fn millis_list(&mut self, key: &str) -> Vec<u64> {
        let items = match self.value(key) {
            Some(toml::Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type(key, "an array of integers", other);
                return Vec::new();
            }
            None => return Vec::new(),
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                toml::Value::Integer(n) if (0..=86_400_000).contains(n) => out.push(*n as u64),
                _ => self.fail(
                    &format!("{key}[{i}]"),
                    "must be an integer between 0 and 86400000",
                ),
            }
        }
        out
    }

    fn secret(&mut self, key: &str) -> Option<Secret> {
        let s = self.string(key);
        (!s.is_empty()).then_some(Secret(s))
    }

    fn array_of<T: for<'de> Deserialize<'de>>(&mut self, key: &str) -> Vec<(usize, T)> {
        let items = match self.value(key) {
            Some(toml::Value::Array(items)) => items,
            Some(other) => {
                self.wrong_type(key, "an array of tables", other);
                return Vec::new();
            }
            None => return Vec::new(),
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.clone().try_into::<T>() {
                Ok(v) => out.push((i, v)),
                Err(e) => self.fail(&format!("{key}[{i}]"), e.message()),
            }
        }
        out
    }

    fn build(&mut self) -> Config {
        let listen_raw = self.string("listen");
        let listen = parse_listen(&listen_raw).unwrap_or_else(|| {
            self.fail(
                "listen",
                format!("`{}` is not a host:port address", shown(&listen_raw)),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });

        let db_raw = self.string("database_url");
        let database_url = normalise_database_url(&db_raw).unwrap_or_else(|why| {
            self.fail("database_url", why);
            String::new()
        });

        let public_raw = self.string("public_base_url");
        let public_base_url = match normalise_base_url(&public_raw) {
            Ok(url) => url,
            Err(why) => {
                self.fail("public_base_url", why);
                None
            }
        };

        let webhook_allow_subnets = self.allow_subnets("webhook_allow_subnets");
        let webhook_connect_timeout_ms = self.int("webhook_connect_timeout_ms", 1, 600_000) as u64;
        let webhook_timeout_ms = self.int("webhook_timeout_ms", 1, 600_000) as u64;
        if webhook_connect_timeout_ms > webhook_timeout_ms {
            self.fail(
                "webhook_connect_timeout_ms",
                "must not exceed webhook_timeout_ms",
            );
        }
        let webhook_lease_ms = self.int("webhook_lease_ms", 1, 86_400_000) as u64;
        if webhook_lease_ms <= webhook_timeout_ms {
            // A lease that can run out during an attempt would let a second worker make
            // the same attempt at the same time.
            self.fail("webhook_lease_ms", "must be longer than webhook_timeout_ms");
        }

        let log = self.string("log");
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log) {
            self.fail("log", format!("invalid filter: {e}"));
        }

        let countries = self.countries();
        let sandbox_pool = self.sandbox_pool(&countries);

        Config {
            listen,
            database_url,
            admin_key: self.secret("admin_key"),
            api_key: self.secret("api_key"),
            telco_inbound_key: self.secret("telco_inbound_key"),
            allow_insecure_db_permissions: self.boolean("allow_insecure_db_permissions"),
            db_max_connections: self.int("db_max_connections", 1, 1_000) as u32,
            body_limit_bytes: self.int("body_limit_bytes", 1, 1 << 30) as usize,
            request_timeout_ms: self.int("request_timeout_ms", 1, 86_400_000) as u64,
            header_read_timeout_ms: self.int("header_read_timeout_ms", 1, 3_600_000) as u64,
            // serde_json itself stops at 128 levels.
            max_json_depth: self.int("max_json_depth", 1, 128) as usize,
            sandbox: self.boolean("sandbox"),
            mock_sign_enabled: self.boolean("mock_sign_enabled"),
            public_base_url,
            offer_ttl_days: self.int("offer_ttl_days", 1, 3_650) as u32,
            contract_ttl_days: self.int("contract_ttl_days", 1, 3_650) as u32,
            number_quarantine_days: self.int("number_quarantine_days", 0, 3_650) as u32,
            idempotency_ttl_hours: self.int("idempotency_ttl_hours", 1, 8_760) as u32,
            metrics_public: self.boolean("metrics_public"),
            webhook_allow_subnets,
            webhook_connect_timeout_ms,
            webhook_timeout_ms,
            webhook_retry_delays_ms: self.millis_list("webhook_retry_delays_ms"),
            webhook_retry_after_cap_ms: self.int("webhook_retry_after_cap_ms", 0, 86_400_000)
                as u64,
            webhook_lease_ms,
            webhook_concurrency: self.int("webhook_concurrency", 1, 10_000) as u32,
            dispatch_enabled: self.boolean("dispatch_enabled"),
            mcp_allowed_hosts: self
                .string("mcp_allowed_hosts")
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            log,
            sandbox_pool,
            countries,
        }
    }

    fn countries(&mut self) -> Vec<Country> {
        let raw = self.array_of::<CountryRaw>("countries");
        if self
            .table
            .get("countries")
            .and_then(toml::Value::as_array)
            .is_some_and(|a| a.is_empty())
        {
            self.fail("countries", "the catalogue needs at least one country");
        }
        let mut out: Vec<Country> = Vec::new();
        for (i, c) in raw {
            let key = format!("countries[{i}]");
            let before = self.errors.len();
            if !(c.code.len() == 2 && c.code.bytes().all(|b| b.is_ascii_uppercase())) {
                self.fail(
                    &key,
                    format!("code `{}` is not an ISO 3166 alpha-2 code", shown(&c.code)),
                );
            } else if out.iter().any(|o| o.code == c.code) {
                self.fail(&key, format!("duplicate country code `{}`", c.code));
            }
            let prefix_ok = c.msisdn_prefix.strip_prefix('+').is_some_and(|d| {
                (1..=3).contains(&d.len())
                    && d.bytes().all(|b| b.is_ascii_digit())
                    && !d.starts_with('0')
            });
            if !prefix_ok {
                self.fail(
                    &key,
                    format!(
                        "msisdn_prefix `{}` is not a calling code like +34",
                        shown(&c.msisdn_prefix)
                    ),
                );
            }
            if c.name.trim().is_empty() {
                self.fail(&key, "name is empty");
            }
            if !(c.currency.len() == 3 && c.currency.bytes().all(|b| b.is_ascii_uppercase())) {
                self.fail(
                    &key,
                    format!("currency `{}` is not an ISO 4217 code", shown(&c.currency)),
                );
            }
            let mut price = |name: &str, v: f64| {
                money::from_units(v, MAX_PRICE_UNITS).unwrap_or_else(|| {
                    self.fail(
                        &key,
                        format!("{name} must be a non-negative amount, got {v}"),
                    );
                    0
                })
            };
            let monthly = price("monthly_price", c.monthly_price);
            let setup = price("setup_fee", c.setup_fee);
            let sms = price("sms_price_eur", c.sms_price_eur);
            let call = price("call_per_min_eur", c.call_per_min_eur);
            self.check_set(&key, "sim_types", &c.sim_types, SIM_TYPES);
            self.check_set(&key, "capabilities", &c.capabilities, CAPABILITIES);
            if self.errors.len() == before {
                out.push(Country {
                    code: c.code,
                    msisdn_prefix: c.msisdn_prefix,
                    name: c.name,
                    currency: c.currency,
                    monthly_price_micros: monthly,
                    setup_fee_micros: setup,
                    sim_types: c.sim_types,
                    capabilities: c.capabilities,
                    sms_price_eur_micros: sms,
                    call_per_min_eur_micros: call,
                });
            }
        }
        out
    }

    fn check_set(&mut self, key: &str, field: &str, values: &[String], allowed: &[&str]) {
        if values.is_empty() {
            self.fail(key, format!("{field} is empty"));
        }
        for (i, v) in values.iter().enumerate() {
            if !allowed.contains(&v.as_str()) {
                self.fail(
                    key,
                    format!(
                        "{field}: `{}` is not one of {}",
                        shown(v),
                        allowed.join(", ")
                    ),
                );
            } else if values[..i].contains(v) {
                self.fail(key, format!("{field}: `{v}` is listed twice"));
            }
        }
    }

    fn sandbox_pool(&mut self, countries: &[Country]) -> Vec<PoolRange> {
        let mut out: Vec<PoolRange> = Vec::new();
        for (i, p) in self.array_of::<PoolRaw>("sandbox_pool") {
            let key = format!("sandbox_pool[{i}]");
            let Some(country) = countries.iter().find(|c| c.code == p.country) else {
                self.fail(
                    &key,
                    format!(
                        "country `{}` is not in the countries catalogue",
                        shown(&p.country)
                    ),
                );
                continue;
            };
            let count = match u32::try_from(p.count) {
                Ok(n) if (1..=1_000_000).contains(&n) => n,
                _ => {
                    self.fail(
                        &key,
                        format!("count must be between 1 and 1000000, got {}", p.count),
                    );
                    continue;
                }
            };
            let from = match plausible_number(&p.from, &country.code) {
                Ok(from) => from,
                Err(why) => {
                    self.fail(&key, format!("from: {why}"));
                    continue;
                }
            };
            if !from.as_str().starts_with(&country.msisdn_prefix) {
                self.fail(
                    &key,
                    format!(
                        "from `{from}` does not start with {}",
                        country.msisdn_prefix
                    ),
                );
                continue;
            }
            let digits = &from.as_str()[1..];
            let Ok(first) = digits.parse::<u64>() else {
                self.fail(&key, "from is not numeric");
                continue;
            };
            let last = format!("+{}", first + u64::from(count) - 1);
            if last.len() != from.as_str().len() {
                self.fail(
                    &key,
                    format!("the range from {from} overflows its number length"),
                );
                continue;
            }
            if let Err(why) = plausible_number(&last, &country.code) {
                self.fail(&key, format!("last number of the range: {why}"));
                continue;
            }
            let end = first + u64::from(count) - 1;
            if let Some(other) = out.iter().find(|o| {
                o.from.as_str().len() == from.as_str().len()
                    && o.first <= end
                    && first < o.first + u64::from(o.count)
            }) {
                self.fail(
                    &key,
                    format!("overlaps the range starting at {}", other.from),
                );
                continue;
            }
            out.push(PoolRange {
                country: p.country,
                from,
                count,
                first,
            });
        }
        out
    }
}

/// A number the numbering plan accepts as belonging to `country`.
fn plausible_number(raw: &str, country: &str) -> Result<E164, String> {
    let n = E164::parse(raw).map_err(|_| format!("`{}` is not an E.164 number", shown(raw)))?;
    if n.valid_country().as_deref() == Some(country) {
        Ok(n)
    } else {
        Err(format!(
            "{n} is not a valid {country} number per the numbering plan"
        ))
    }
}

fn parse_listen(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = SocketAddr::from_str(s) {
        return Some(addr);
    }
    let port = s.strip_prefix("localhost:")?.parse::<u16>().ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn normalise_database_url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    let scheme = match s.find("://") {
        Some(i) => Some(&s[..i]),
        // `sqlite:path` and `sqlite::memory:` have no `//`.
        None if s.starts_with("sqlite:") => Some("sqlite"),
        None => None,
    };
    match scheme.map(str::to_ascii_lowercase).as_deref() {
        Some("sqlite" | "postgres" | "postgresql") => Ok(s.to_owned()),
        Some(other) => Err(format!(
            "unknown database scheme `{}` (expected sqlite:// or postgres://)",
            shown(other)
        )),
        None => Ok(format!("sqlite://{s}")),
    }
}

fn normalise_base_url(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && !r
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    });
    if ok {
        Ok(Some(s.trim_end_matches('/').to_owned()))
    } else {
        Err(format!(
            "`{}` is not an http(s) URL without query",
            shown(s)
        ))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryRaw {
    code: String,
    msisdn_prefix: String,
    name: String,
    currency: String,
    monthly_price: f64,
    setup_fee: f64,
    sim_types: Vec<String>,
    capabilities: Vec<String>,
    sms_price_eur: f64,
    call_per_min_eur: f64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolRaw {
    country: String,
    from: String,
    count: i64,
}

/// The shape of `config/default.toml`, for `redacted_toml`; arrays of tables come last.
#[derive(Serialize)]
struct Shown {
    listen: String,
    database_url: String,
    admin_key: String,
    api_key: String,
    telco_inbound_key: String,
    allow_insecure_db_permissions: bool,
    db_max_connections: u32,
    body_limit_bytes: u64,
    request_timeout_ms: u64,
    header_read_timeout_ms: u64,
    max_json_depth: u64,
    sandbox: bool,
    mock_sign_enabled: bool,
    public_base_url: String,
    offer_ttl_days: u32,
    contract_ttl_days: u32,
    number_quarantine_days: u32,
    idempotency_ttl_hours: u32,
    metrics_public: bool,
    webhook_allow_subnets: String,
    webhook_connect_timeout_ms: u64,
    webhook_timeout_ms: u64,
    webhook_retry_delays_ms: Vec<u64>,
    webhook_retry_after_cap_ms: u64,
    webhook_lease_ms: u64,
    webhook_concurrency: u32,
    dispatch_enabled: bool,
    mcp_allowed_hosts: String,
    log: String,
    sandbox_pool: Vec<PoolRaw>,
    countries: Vec<CountryRaw>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_load_and_match_the_documented_values() {
        let c = Config::load_from(&HashMap::new()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.database_url, "sqlite://ami.db");
        assert!(c.admin_key.is_none() && c.api_key.is_none() && c.telco_inbound_key.is_none());
        assert_eq!(
            (c.db_max_connections, c.body_limit_bytes, c.max_json_depth),
            (8, 1_048_576, 32)
        );
        assert_eq!(
            (c.request_timeout(), c.header_read_timeout()),
            (Duration::from_secs(30), Duration::from_secs(5))
        );
        assert!(
            c.sandbox
                && c.mock_sign_enabled
                && c.metrics_public
                && !c.allow_insecure_db_permissions
        );
        assert_eq!(
            (
                c.offer_ttl_days,
                c.contract_ttl_days,
                c.number_quarantine_days,
                c.idempotency_ttl_hours
            ),
            (7, 7, 30, 24)
        );
        assert!(c.webhook_allow_subnets.is_empty() && c.public_base_url.is_none());
        assert_eq!(
            (
                c.webhook_connect_timeout_ms,
                c.webhook_timeout_ms,
                c.webhook_retry_after_cap_ms,
                c.webhook_lease_ms,
                c.webhook_concurrency
            ),
            (5_000, 15_000, 3_600_000, 60_000, 64)
        );
        assert_eq!(
            c.webhook_retry_delays_ms,
            vec![
                5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000
            ]
        );
        assert_eq!(c.log, "info,rmcp=warn");
        assert!(c.mcp_allowed_hosts.is_empty());
        let es = c.country("ES").unwrap();
        assert_eq!(
            (es.msisdn_prefix.as_str(), es.currency.as_str()),
            ("+34", "EUR")
        );
        assert_eq!(
            (es.monthly_price_micros, es.setup_fee_micros),
            (8_900_000, 5_000_000)
        );
        assert_eq!(
            (es.sms_price_eur_micros, es.call_per_min_eur_micros),
            (70_000, 50_000)
        );
        let co = c.country("CO").unwrap();
        assert_eq!(
            (co.monthly_price_micros, co.setup_fee_micros),
            (32_000_000_000, 18_000_000_000)
        );
        assert_eq!(co.sim_types, ["eSIM", "physical"]);
        assert_eq!(c.sandbox_pool.len(), 2);
        let es_pool = &c.sandbox_pool[0];
        let numbers: Vec<String> = es_pool.numbers().collect();
        assert_eq!(numbers.len(), 10_000);
        assert_eq!(numbers.first().map(String::as_str), Some("+34600000000"));
        assert_eq!(numbers.last().map(String::as_str), Some("+34600009999"));
        assert_eq!(
            c.base_url("0.0.0.0:9000".parse().unwrap()),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn sandbox_pools_are_plausible_mobile_numbers() {
        let c = Config::load_from(&HashMap::new()).unwrap();
        for p in &c.sandbox_pool {
            for n in [p.numbers().next().unwrap(), p.numbers().last().unwrap()] {
                let parsed = phonenumber::parse(None, &n).unwrap();
                assert!(phonenumber::is_valid(&parsed), "{n}");
                assert_eq!(
                    parsed.number_type(&phonenumber::metadata::DATABASE),
                    phonenumber::Type::Mobile,
                    "{n}"
                );
                assert_eq!(
                    parsed.country().id().map(|id| id.as_ref().to_owned()),
                    Some(p.country.clone())
                );
            }
        }
    }

    #[test]
    fn file_then_environment_then_aliases() {
        let f = file("sandbox = false\ndb_max_connections = 3\nlog = \"debug\"\n");
        let path = f.path().to_str().unwrap();
        let c = Config::load_from(&env(&[
            ("AMI_CONFIG", path),
            ("AMI_DB_MAX_CONNECTIONS", "5"),
            ("AMI_METRICS_PUBLIC", "false"),
            ("DATABASE_URL", "/var/lib/ami/ami.db"),
            ("PORT", "9999"),
            ("AMI_WEBHOOK_ALLOW_SUBNETS", "127.0.0.0/8, ::1"),
            ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[50, 100]"),
            ("AMI_COUNTRIES", r#"[{code = "ES", msisdn_prefix = "+34", name = "Spain", currency = "EUR", monthly_price = 1, setup_fee = 0, sim_types = ["eSIM"], capabilities = ["sms"], sms_price_eur = 0.1, call_per_min_eur = 0.1}]"#),
            ("AMI_SANDBOX_POOL", r#"[{country = "ES", from = "+34611000000", count = 5}]"#),
        ]))
        .unwrap();
        assert!(!c.sandbox && !c.metrics_public);
        assert_eq!(c.db_max_connections, 5);
        assert_eq!(c.log, "debug");
        assert_eq!(c.database_url, "sqlite:///var/lib/ami/ami.db");
        assert_eq!(c.listen, "0.0.0.0:9999".parse().unwrap());
        assert_eq!(c.webhook_allow_subnets.nets().len(), 2);
        assert!(
            c.webhook_allow_subnets
                .contains("127.1.2.3".parse().unwrap())
        );
        assert!(
            c.webhook_allow_subnets
                .contains("::ffff:127.0.0.1".parse().unwrap())
        );
        assert!(
            !c.webhook_allow_subnets
                .contains("10.0.0.1".parse().unwrap())
        );
        assert_eq!(c.webhook_retry_delays_ms, vec![50, 100]);
        assert_eq!(c.countries.len(), 1);
        assert_eq!(c.sandbox_pool[0].numbers().collect::<Vec<_>>().len(), 5);

        // AMI_LISTEN and AMI_DATABASE_URL win over the aliases.
        let c = Config::load_from(&env(&[
            ("AMI_LISTEN", "127.0.0.1:1234"),
            ("PORT", "9999"),
            ("AMI_DATABASE_URL", "postgres://ami@db/ami"),
            ("DATABASE_URL", "other.db"),
        ]))
        .unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.database_url, "postgres://ami@db/ami");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let f = file(
            "bogus = 1\nalso_bogus = \"x\"\n[[countries]]\ncode = \"ES\"\nmsisdn_prefix = \"+34\"\nname = \"Spain\"\ncurrency = \"EUR\"\nmonthly_price = 1\nsetup_fee = 1\nsim_types = [\"eSIM\"]\ncapabilities = [\"sms\"]\nsms_price_eur = 0.1\ncall_per_min_eur = 0.1\n[[countries]]\ncode = \"ES\"\nmsisdn_prefix = \"+34\"\nname = \"Spain\"\ncurrency = \"EUR\"\nmonthly_price = -1\nsetup_fee = 1\nsim_types = [\"eSIM\"]\ncapabilities = [\"fax\"]\nsms_price_eur = 0.1\ncall_per_min_eur = 0.1\n",
        );
        let errs = Config::load_from(&env(&[
            ("AMI_CONFIG", f.path().to_str().unwrap()),
            ("AMI_LISTEN", "not an address"),
            ("AMI_DATABASE_URL", "mysql://u:p@h/db"),
            ("AMI_DB_MAX_CONNECTIONS", "0"),
            ("AMI_OFFER_TTL_DAYS", "-3"),
            ("AMI_WEBHOOK_ALLOW_SUBNETS", "10.0.0.0/33,garbage"),
            ("AMI_WEBHOOK_LEASE_MS", "1000"),
            ("AMI_WEBHOOK_RETRY_DELAYS_MS", "[1, -5]"),
            ("AMI_SANDBOX", "maybe"),
            (
                "AMI_SANDBOX_POOL",
                r#"[{country = "ES", from = "+34123", count = 5}]"#,
            ),
        ]))
        .unwrap_err();
        let all = errs.to_string();
        for needle in [
            "unknown key `bogus`",
            "unknown key `also_bogus`",
            "listen:",
            "unknown database scheme `mysql`",
            "db_max_connections: must be greater than zero, got 0 (from AMI_DB_MAX_CONNECTIONS)",
            "offer_ttl_days: must be greater than zero, got -3",
            "`10.0.0.0/33` is not a CIDR",
            "`garbage` is not a CIDR",
            "webhook_lease_ms: must be longer than webhook_timeout_ms",
            "webhook_retry_delays_ms[1]: must be an integer between 0 and 86400000",
            "AMI_SANDBOX:",
            "duplicate country code `ES`",
            "monthly_price must be a non-negative amount",
            "`fax` is not one of",
            "sandbox_pool[0]: from:",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        // The URL's password is not echoed.
        assert!(!all.contains("u:p@"), "{all}");
    }

    #[test]
    fn typos_in_table_entries_are_named() {
        let errs = Config::load_from(&env(&[(
            "AMI_SANDBOX_POOL",
            r#"[{country = "ES", form = "+34600000000", count = 5}]"#,
        )]))
        .unwrap_err();
        assert!(errs.to_string().contains("form"), "{errs}");
    }

    #[test]
    fn secrets_never_appear_in_debug_errors_or_show() {
        let e = env(&[
            ("AMI_ADMIN_KEY", "adm-SECRET-1"),
            ("AMI_API_KEY", "amik_live_SECRET-2"),
            ("AMI_TELCO_INBOUND_KEY", "telco-SECRET-3"),
            (
                "DATABASE_URL",
                "postgres://ami:pg-SECRET-4@db:5432/ami?sslmode=require&password=pg-SECRET-5",
            ),
        ]);
        let c = Config::load_from(&e).unwrap();
        assert_eq!(
            c.admin_key.as_ref().map(Secret::expose),
            Some("adm-SECRET-1")
        );
        let debug = format!("{c:?} {c:#?}");
        let shown = c.redacted_toml();
        for text in [&debug, &shown] {
            assert!(!text.contains("SECRET"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(
            shown.contains(
                "postgres://ami:<redacted>@db:5432/ami?sslmode=require&password=<redacted>"
            ),
            "{shown}"
        );
        assert!(shown.contains("admin_key = \"<redacted>\""), "{shown}");

        // Unset secrets show as empty; the show output is itself a loadable config.
        let c = Config::load_from(&HashMap::new()).unwrap();
        let shown = c.redacted_toml();
        assert!(shown.contains("api_key = \"\""), "{shown}");
        let f = file(&shown);
        let again = Config::load_from(&env(&[("AMI_CONFIG", f.path().to_str().unwrap())])).unwrap();
        assert_eq!(again.countries.len(), 2);
        assert_eq!(
            again.country("CO").unwrap().monthly_price_micros,
            32_000_000_000
        );

        // A syntax error on a secret's line reports the position, not the line.
        let f = file("admin_key = \"adm-SECRET-6\nsandbox = true\n");
        let errs =
            Config::load_from(&env(&[("AMI_CONFIG", f.path().to_str().unwrap())])).unwrap_err();
        let text = format!("{errs} {errs:?}");
        assert!(
            !text.contains("SECRET") && text.contains("line 1"),
            "{text}"
        );
    }

    #[test]
    fn database_urls() {
        assert_eq!(normalise_database_url("ami.db").unwrap(), "sqlite://ami.db");
        assert_eq!(
            normalise_database_url("./data/ami.db").unwrap(),
            "sqlite://./data/ami.db"
        );
        assert_eq!(
            normalise_database_url("sqlite::memory:").unwrap(),
            "sqlite::memory:"
        );
        assert_eq!(
            normalise_database_url("postgresql://h/db").unwrap(),
            "postgresql://h/db"
        );
        assert!(normalise_database_url("").is_err());
        assert!(normalise_database_url("redis://h").is_err());
        assert_eq!(
            redact_database_url("postgres://u:p@ss@h/db"),
            "postgres://u:<redacted>@h/db"
        );
        assert_eq!(
            redact_database_url("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(redact_database_url("sqlite://ami.db"), "sqlite://ami.db");
    }
}
