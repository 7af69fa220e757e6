//! `ami doctor`: what an operator should fix before (or while) serving, one line each.
//! Every check says `ok`, `warn` (works, but not as production wants) or `FAIL` (fix it),
//! with the fix; the command fails when one check does. It reads and connects, and changes
//! nothing but what opening the database always does.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ami_store::{OpenOptions, Store};

use crate::config::{CallCarrier, Carrier, Config, SipTrunk};

/// Further than this apart, the server's clock and the database's disagree on every
/// expiry, lease and rate limit the other computed.
const MAX_CLOCK_SKEW_MS: i64 = 2_000;
/// How long a SIP trunk has to answer an OPTIONS.
const SIP_ANSWER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub verdict: Verdict,
    pub check: String,
    pub detail: String,
}

impl Finding {
    fn new(verdict: Verdict, check: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            verdict,
            check: check.into(),
            detail: detail.into(),
        }
    }

    pub fn line(&self) -> String {
        let tag = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        format!("{tag} {}: {}", self.check, self.detail)
    }
}

/// Loads the configuration from `env` and checks everything; prints one line per finding.
/// True when nothing failed.
pub async fn run_with_env(env: &HashMap<String, String>) -> bool {
    let findings = match Config::load_from(env) {
        Ok(config) => check(&config).await,
        Err(errors) => errors
            .0
            .iter()
            .map(|e| Finding::new(Verdict::Fail, "config", e.clone()))
            .collect(),
    };
    for f in &findings {
        println!("{}", f.line());
    }
    findings.iter().all(|f| f.verdict != Verdict::Fail)
}

/// Every check, in the order an operator would fix them.
pub async fn check(config: &Config) -> Vec<Finding> {
    let mut out = vec![config_findings(config)];
    out.extend(database(config).await);
    out.extend(carriers(config).await);
    out
}

fn config_findings(config: &Config) -> Finding {
    if config.mock_sign_enabled {
        return Finding::new(
            Verdict::Warn,
            "config",
            "mock_sign_enabled = true lets a customer sign its own contract: set it to false in production",
        );
    }
    Finding::new(Verdict::Ok, "config", "loaded and valid")
}

async fn database(config: &Config) -> Vec<Finding> {
    let url = config.database_url.as_str();
    let mut out = Vec::new();
    if let Some(path) = ami_store::ownership::sqlite_path(url) {
        if !path.is_file() {
            out.push(Finding::new(
                Verdict::Fail,
                "database",
                format!(
                    "no database at {}: run `ami migrate` (or start the server once)",
                    path.display()
                ),
            ));
            return out;
        }
        out.extend(file_modes(&path));
    }
    let options = OpenOptions {
        // The modes were judged above; the other checks still run.
        allow_insecure_permissions: true,
        max_connections: 2,
        durability: config.durability.into(),
    };
    let store = match Store::open(url, &options).await {
        Ok(store) => store,
        Err(e) => {
            out.push(Finding::new(
                Verdict::Fail,
                "database",
                format!(
                    "cannot open {}: {e}",
                    crate::config::redact_database_url(url)
                ),
            ));
            return out;
        }
    };
    out.push(migrations(&store).await);
    out.push(secrets_key(config, &store).await);
    out.push(clock_skew(&store).await);
    store.close().await;
    out
}

/// The database file and its WAL companions are the owner's only; its directory too, or
/// anyone may read a copy the server leaves beside it.
fn file_modes(path: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        if let Ok(meta) = std::fs::metadata(&file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bad.push((Path::new(&file).display().to_string(), mode));
            }
        }
    }
    if bad.is_empty() {
        out.push(Finding::new(
            Verdict::Ok,
            "database file mode",
            format!("{} is 0600", path.display()),
        ));
    }
    for (file, mode) in bad {
        out.push(Finding::new(
            Verdict::Fail,
            "database file mode",
            format!("{file} is {mode:04o}, readable by others: run `chmod 600 {file}`"),
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            out.push(Finding::new(
                Verdict::Warn,
                "database directory mode",
                format!(
                    "{} is {mode:04o}: run `chmod 700 {}` (systemd: StateDirectoryMode=0700)",
                    dir.display(),
                    dir.display()
                ),
            ));
        }
    }
    out
}

async fn migrations(store: &Store) -> Finding {
    match store.migration_status().await {
        Ok(s) if !s.unknown.is_empty() => Finding::new(
            Verdict::Fail,
            "migrations",
            format!(
                "the database has migrations {:?} this build does not know: run the newer `ami` it was migrated by",
                s.unknown
            ),
        ),
        Ok(s) if !s.pending.is_empty() => Finding::new(
            Verdict::Fail,
            "migrations",
            format!("{:?} pending: run `ami migrate`", s.pending),
        ),
        Ok(_) => Finding::new(Verdict::Ok, "migrations", "all applied"),
        Err(e) => Finding::new(
            Verdict::Fail,
            "migrations",
            format!("cannot read them: {e}"),
        ),
    }
}

/// The server stamps times with its own clock and compares them with the database's rows
/// (and on PostgreSQL replicas with each other's): each machine must keep time.
async fn clock_skew(store: &Store) -> Finding {
    if store.engine() == ami_store::Engine::Sqlite {
        return Finding::new(
            Verdict::Ok,
            "clock",
            "an embedded database keeps this machine's time",
        );
    }
    let sent = Instant::now();
    let before = ami_core::time::now_ms();
    let theirs = async {
        let mut conn = store.reader().await?;
        let ms: i64 = sqlx::query_scalar(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok::<_, anyhow::Error>(ms)
    }
    .await;
    let round_trip = sent.elapsed().as_millis() as i64;
    match theirs {
        Ok(theirs) => {
            // The database read its clock somewhere within the round trip.
            let skew = theirs - (before + round_trip / 2);
            if skew.abs() > MAX_CLOCK_SKEW_MS + round_trip / 2 {
                Finding::new(
                    Verdict::Fail,
                    "clock",
                    format!(
                        "this machine and the database disagree by {skew} ms: keep both in sync (NTP, e.g. systemd-timesyncd or chrony)"
                    ),
                )
            } else {
                Finding::new(
                    Verdict::Ok,
                    "clock",
                    format!("within {} ms of the database's", skew.abs()),
                )
            }
        }
        Err(e) => Finding::new(
            Verdict::Fail,
            "clock",
            format!("cannot read the database's clock: {e}"),
        ),
    }
}

/// Secrets at rest: the key that seals them is where the configuration says, private, and
/// the one this database's secrets were sealed with.
async fn secrets_key(config: &Config, store: &Store) -> Finding {
    const CHECK: &str = "secrets key";
    let found = match crate::secrets_key::find(config) {
        Ok(found) => found,
        Err(e) => return Finding::new(Verdict::Fail, CHECK, format!("{e:#}")),
    };
    let recorded = async {
        let mut conn = store.reader().await?;
        match &found {
            Some((key, _)) => {
                Ok::<_, anyhow::Error>(ami_store::sealed::key_matches(&mut conn, key).await?)
            }
            None => Ok(ami_store::sealed::key_recorded(&mut conn)
                .await?
                .then_some(false)),
        }
    }
    .await;
    match (found, recorded) {
        (_, Err(e)) => Finding::new(
            Verdict::Fail,
            CHECK,
            format!("cannot read the key check: {e:#}"),
        ),
        (Some((_, source)), Ok(Some(true))) => Finding::new(
            Verdict::Ok,
            CHECK,
            format!("{source} opens this database's secrets"),
        ),
        (Some((_, source)), Ok(None)) => Finding::new(
            Verdict::Ok,
            CHECK,
            format!("{source}; no secret sealed yet"),
        ),
        (Some((_, source)), Ok(Some(false))) => Finding::new(
            Verdict::Fail,
            CHECK,
            format!(
                "{source} is not the key this database's secrets were sealed with: configure the key it was created with"
            ),
        ),
        (None, Ok(Some(_))) => {
            let database =
                ami_store::ownership::sqlite_path(config.database_url.as_str()).unwrap_or_default();
            Finding::new(
                Verdict::Fail,
                CHECK,
                crate::secrets_key::lost_key(&crate::secrets_key::default_key_file(&database)),
            )
        }
        (None, Ok(None)) => Finding::new(
            Verdict::Warn,
            CHECK,
            "none yet: the first `ami serve` makes one next to the database; in production configure secrets_key_file and keep a copy elsewhere",
        ),
    }
}

async fn carriers(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    if config.carrier == Carrier::Smpp {
        for connection in &config.smpp {
            out.push(smpp_bind(Arc::new(connection.settings())).await);
        }
    }
    if config.call_carrier == CallCarrier::Sip {
        for trunk in &config.sip_trunks {
            out.push(sip_options(trunk).await);
        }
    }
    if out.is_empty() {
        out.push(Finding::new(
            Verdict::Ok,
            "carriers",
            "sandbox only: nothing to reach",
        ));
    }
    out
}

/// A bind and an unbind with the account's credentials.
async fn smpp_bind(connection: Arc<ami_smpp::Connection>) -> Finding {
    let check = format!("smpp {}", connection.name);
    let name = connection.name.clone();
    match ami_smpp::probe(connection).await {
        Ok(()) => Finding::new(Verdict::Ok, check, "bound and unbound"),
        Err(e) => Finding::new(
            Verdict::Fail,
            check,
            format!("{e}: check host, port, tls, system_id and password of [[smpp]] {name:?}"),
        ),
    }
}

/// An OPTIONS to the trunk's proxy; any SIP answer, even a refusal, shows it is there.
async fn sip_options(trunk: &SipTrunk) -> Finding {
    let check = format!("sip trunk {}", trunk.name);
    match crate::doctor_sip::options(&trunk.proxy, trunk.transport, SIP_ANSWER).await {
        Ok(status) => Finding::new(
            Verdict::Ok,
            check,
            format!("{} answered: {status}", trunk.proxy),
        ),
        Err(e) => Finding::new(
            Verdict::Fail,
            check,
            format!(
                "{} did not answer an OPTIONS ({e}): check proxy and transport of [[sip_trunks]] {:?}, and the firewall",
                trunk.proxy, trunk.name
            ),
        ),
    }
}
