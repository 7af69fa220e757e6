//! Promise (seed "Authentication levels", PROTOCOL §1, §10, §11): customer keys, agent tokens,
//! signing tokens and the admin key are stored only as SHA-256 hashes, "rotate, never restore".
//!
//! After signup, the six contracting steps, `rotate-key` and `rotate-token`, every table the
//! catalogue lists is dumped as text (and, on SQLite, the raw bytes of `ami.db` and its
//! `-wal`/`-shm` companions are read): no plaintext secret appears anywhere, while the
//! SHA-256 hex of each live secret does, which proves the scan really sees the stored data.
//! Every secret-issuing POST carries an `Idempotency-Key` and is retried once, as SDKs do
//! after a lost response: the replay must return the same secret without the server keeping
//! it in plaintext.
//!
//! The secrets the server must read back in clear (webhook and voice signing secrets) are
//! sealed with a key kept outside the database: the same scans find none of them, a key
//! rotation leaves every one of them working, and a start with the wrong key stops with a
//! clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::receiver::{Receiver, Reply};
use common::verify::cli_verdict;
use common::{
    ADMIN_KEY, Engine, LOOPBACK, PG_SECRETS_KEY, TestServer, customer_data, drop_pg_database,
    engines, fresh_pg_database, mid_webhooks, register_webhook,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

/// A secret the server has handed out, by name for readable failures.
struct Seen {
    what: String,
    plaintext: String,
}

impl Seen {
    fn new(what: &str, plaintext: &str) -> Self {
        Seen {
            what: what.to_owned(),
            plaintext: plaintext.to_owned(),
        }
    }

    fn sha256_hex(&self) -> String {
        ami_core::secret::hash(&self.plaintext)
    }

    /// The plaintext and, for prefixed credentials, its random tail alone: storing the tail
    /// without the `amik_live_` prefix would be the same leak.
    fn needles(&self) -> Vec<String> {
        let mut n = vec![self.plaintext.clone()];
        if let Some((_, tail)) = self.plaintext.rsplit_once('_')
            && tail.len() >= 32
        {
            n.push(tail.to_owned());
        }
        n
    }
}

/// POSTs with an `Idempotency-Key`, then retries the very same request: both answers must be
/// identical (the retry is a replay), and the status `expected`.
async fn post_retried(
    server: &TestServer,
    path: &str,
    credential: &str,
    body: Value,
    expected: StatusCode,
) -> Value {
    let key = ami_core::id::new_id("idem");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let res = server
            .http
            .post(format!("{}{path}", server.base))
            .bearer_auth(credential)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let replayed = res.headers().get("idempotent-replayed").is_some();
        let text = res.text().await.unwrap();
        assert_eq!(status, expected, "POST {path}: {text}");
        answers.push((replayed, text));
    }
    assert!(
        !answers[0].0 && answers[1].0,
        "POST {path}: the retry was not a replay"
    );
    assert_eq!(
        answers[0].1, answers[1].1,
        "POST {path}: the replay differs from the original"
    );
    serde_json::from_str(&answers[0].1).unwrap()
}

/// Every table the catalogue lists, each row rendered as one line of text.
/// The tables the hashed credentials live in.
const CREDENTIAL_TABLES: &[&str] = &[
    "accounts",
    "agent_tokens",
    "contracts",
    "settings",
    "audit_events",
    "idempotency_keys",
];
/// The tables the sealed signing secrets live in.
const SEALED_TABLES: &[&str] = &["webhooks", "voice_configs", "settings"];

async fn dump_tables(server: &TestServer, required: &[&str]) -> Vec<(String, String)> {
    let mut conn = server.running.services.store.reader().await.unwrap();
    let mut rows = Vec::new();
    match server.engine {
        Engine::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                        .bind(&table)
                        .fetch_all(&mut *conn)
                        .await
                        .unwrap();
                assert!(!columns.is_empty(), "no columns for {table}");
                let line = columns
                    .iter()
                    .map(|c| format!("COALESCE(CAST({} AS TEXT), 'NULL')", ident(c)))
                    .collect::<Vec<_>>()
                    .join(" || ' | ' || ");
                let sql = format!("SELECT {line} AS line FROM {}", ident(&table));
                for row in sqlx::query(&sql).fetch_all(&mut *conn).await.unwrap() {
                    rows.push((table.clone(), row.get::<String, _>("line")));
                }
            }
        }
        Engine::Postgres => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            for table in tables {
                let sql = format!("SELECT t::text AS line FROM {} t", ident(&table));
                for row in sqlx::query(&sql).fetch_all(&mut *conn).await.unwrap() {
                    rows.push((table.clone(), row.get::<String, _>("line")));
                }
            }
        }
    }
    // The scan is only meaningful if it covers the tables that hold credentials.
    let tables: std::collections::BTreeSet<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    for &t in required {
        assert!(
            tables.contains(t),
            "{:?}: table {t} dumped no row (tables seen: {tables:?})",
            server.engine
        );
    }
    rows
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The raw bytes of the SQLite file and its companions (every `ami.db*` in the directory).
fn raw_sqlite_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ami.db") {
            files.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"ami.db") && names.contains(&"ami.db-wal"),
        "{names:?}"
    );
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// No plaintext of `secrets` anywhere; the hash of each of `stored` somewhere.
async fn assert_at_rest(server: &TestServer, stage: &str, secrets: &[Seen], stored: &[&str]) {
    assert_at_rest_in(
        server,
        server.dir(),
        CREDENTIAL_TABLES,
        stage,
        secrets,
        stored,
    )
    .await;
}

/// [`assert_at_rest`] for a SQLite database in `dir`.
async fn assert_at_rest_in(
    server: &TestServer,
    dir: &Path,
    tables: &[&str],
    stage: &str,
    secrets: &[Seen],
    stored: &[&str],
) {
    let engine = server.engine;
    let rows = dump_tables(server, tables).await;
    for s in secrets {
        for needle in s.needles() {
            for (table, line) in &rows {
                assert!(
                    !line.contains(&needle),
                    "{engine:?} {stage}: {} in plaintext in table {table}: {line}",
                    s.what
                );
            }
        }
    }
    for s in secrets.iter().filter(|s| stored.contains(&s.what.as_str())) {
        let hash = s.sha256_hex();
        assert!(
            rows.iter().any(|(_, line)| line.contains(&hash)),
            "{engine:?} {stage}: the SHA-256 of {} is in no table: the scan does not see the data",
            s.what
        );
    }
    if engine == Engine::Sqlite {
        let files = raw_sqlite_files(dir);
        for s in secrets {
            for needle in s.needles() {
                for (file, bytes) in &files {
                    assert!(
                        !contains(bytes, &needle),
                        "{stage}: {} in plaintext in the bytes of {file}",
                        s.what
                    );
                }
            }
        }
        for s in secrets.iter().filter(|s| stored.contains(&s.what.as_str())) {
            let hash = s.sha256_hex();
            assert!(
                files.iter().any(|(_, bytes)| contains(bytes, &hash)),
                "{stage}: the SHA-256 of {} is in no file: the raw scan does not see the data",
                s.what
            );
        }
    }
}

#[tokio::test]
async fn no_plaintext_secret_is_stored() {
    for engine in engines() {
        let server = TestServer::start(engine).await;

        // Signup: the admin creates the customer and receives its API key once.
        let created = post_retried(
            &server,
            "/v1/admin/customers",
            ADMIN_KEY,
            json!({"name": "Acme"}),
            StatusCode::CREATED,
        )
        .await;
        let account = created["id"].as_str().unwrap().to_owned();
        let key1 = created["api_key"].as_str().unwrap().to_owned();

        // The six steps.
        let (s, r) = server
            .post("/v1/sim-requests", &key1, json!({"country": "ES"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        let sim_request = r["sim_request"]["id"].as_str().unwrap().to_owned();
        let offer = r["offer"]["id"].as_str().unwrap().to_owned();
        let (s, v) = server
            .post(&format!("/v1/offers/{offer}/accept"), &key1, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = server
            .post(
                &format!("/v1/sim-requests/{sim_request}/customer-data"),
                &key1,
                customer_data(),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let customer = v["customer"]["id"].as_str().unwrap().to_owned();
        let contract = post_retried(
            &server,
            "/v1/contracts",
            &key1,
            json!({"offer_id": offer, "customer_id": customer}),
            StatusCode::CREATED,
        )
        .await;
        let contract_id = contract["id"].as_str().unwrap().to_owned();
        let signature_url = contract["signature_url"].as_str().unwrap();
        let signing_token = signature_url
            .split_once("?t=")
            .expect("token in signature_url")
            .1
            .to_owned();
        assert!(signing_token.len() >= 32, "{signature_url}");
        let (s, v) = server
            .post(
                &format!("/v1/contracts/{contract_id}/mock-sign"),
                &key1,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let mid = post_retried(
            &server,
            "/v1/mobile-identities/activate",
            &key1,
            json!({"contract_id": contract_id}),
            StatusCode::CREATED,
        )
        .await;
        let mid_id = mid["id"].as_str().unwrap().to_owned();
        let token1 = mid["agent_token"].as_str().unwrap().to_owned();
        let (s, me) = server.get("/v1/agent/self", &token1).await;
        assert_eq!(s, StatusCode::OK, "{me}");

        let mut secrets = vec![
            Seen::new("admin key", ADMIN_KEY),
            Seen::new("first api key", &key1),
            Seen::new("signing token", &signing_token),
            Seen::new("first agent token", &token1),
        ];
        let all = [
            "admin key",
            "first api key",
            "signing token",
            "first agent token",
        ];
        assert_at_rest(&server, "after signup and activation", &secrets, &all).await;

        // Rotation: a new API key (admin) and a new agent token (customer).
        let rotated = post_retried(
            &server,
            &format!("/v1/admin/customers/{account}/rotate-key"),
            ADMIN_KEY,
            json!({}),
            StatusCode::OK,
        )
        .await;
        let key2 = rotated["api_key"].as_str().unwrap().to_owned();
        assert_ne!(key1, key2);
        let rotated = post_retried(
            &server,
            &format!("/v1/mobile-identities/{mid_id}/rotate-token"),
            &key2,
            json!({}),
            StatusCode::OK,
        )
        .await;
        let token2 = rotated["agent_token"].as_str().unwrap().to_owned();
        assert_ne!(token1, token2);
        let (s, me) = server.get("/v1/agent/self", &token2).await;
        assert_eq!(s, StatusCode::OK, "{me}");

        secrets.push(Seen::new("second api key", &key2));
        secrets.push(Seen::new("second agent token", &token2));
        // The first key's hash was replaced by the second's; the revoked token's row stays.
        let live = [
            "admin key",
            "second api key",
            "signing token",
            "first agent token",
            "second agent token",
        ];
        assert_at_rest(
            &server,
            "after rotate-key and rotate-token",
            &secrets,
            &live,
        )
        .await;
        server.stop().await;
    }
}

/// `ami secrets rotate-key --new-key-file <new>` on a stopped server's database.
fn rotate_key(database_url: &str, old_key: Option<&str>, new_key_file: &Path) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ami"));
    cmd.args(["secrets", "rotate-key", "--new-key-file"])
        .arg(new_key_file)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("NO_COLOR", "1");
    if let Some(key) = old_key {
        cmd.env("AMI_SECRETS_KEY", key);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Why a start on `database_url` with `env` fails (it must fail).
async fn start_error(database_url: &str, env: &[(&str, &str)]) -> String {
    let mut all: HashMap<String, String> = HashMap::new();
    all.insert("AMI_LISTEN".into(), "127.0.0.1:0".into());
    all.insert("DATABASE_URL".into(), database_url.into());
    all.insert("AMI_ADMIN_KEY".into(), ADMIN_KEY.into());
    for (k, v) in env {
        all.insert((*k).into(), (*v).into());
    }
    let config = ami_server::config::Config::load_from(&all).unwrap();
    match ami_server::app::start(config).await {
        Ok(running) => {
            running.shutdown.cancel();
            panic!("started with {env:?}");
        }
        Err(e) => format!("{e:#}"),
    }
}

/// A test delivery through `path`; the receiver's `n`th request.
async fn ping(
    server: &TestServer,
    key: &str,
    path: &str,
    receiver: &Receiver,
    n: usize,
) -> common::receiver::Captured {
    let (s, v) = server.post(path, key, json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    receiver
        .wait_until(20, "the ping", |seen| seen.len() >= n)
        .await;
    receiver.requests()[n - 1].clone()
}

#[tokio::test]
async fn signing_secrets_are_sealed_and_survive_a_key_rotation() {
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };
        // SQLite: the first start makes its key file next to the database; PostgreSQL: the
        // test harness configures `AMI_SECRETS_KEY`.
        let old_key = (engine == Engine::Postgres).then_some(PG_SECRETS_KEY);
        let server = TestServer::start_on(engine, &database_url, &[LOOPBACK]).await;
        if engine == Engine::Sqlite {
            let key_file = dir.path().join("ami.secrets-key");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());
        }
        let receiver = Receiver::start(Reply::ok()).await;
        let (_, key) = server.customer("Sealed").await;
        let flow = server.provision(&key).await;
        let hooks = mid_webhooks(&flow.mid);
        let hook = register_webhook(
            &server.remote(),
            &key,
            &hooks,
            &receiver.url("/hook"),
            json!(["*"]),
        )
        .await;
        let voice_path = format!("/v1/mobile-identities/{}/voice-config", flow.mid);
        let (s, v) = server
            .post(
                &voice_path,
                &key,
                json!({"voice_url": "wss://8.8.8.8/agent"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let voice_secret = v["signing_secret"].as_str().unwrap().to_owned();
        let voice_hint = ami_core::secret::hint(&voice_secret);
        let secrets = [
            Seen::new("webhook secret", &hook.secret),
            Seen::new("voice signing secret", &voice_secret),
        ];

        // A delivery is signed with the secret that was shown.
        let ping_path = format!("{hooks}/{}/test", hook.id);
        let first = ping(&server, &key, &ping_path, &receiver, 1).await;
        let (ok, out) = cli_verdict(&hook.secret, &first, None);
        assert!(ok, "{engine:?}: {out}");
        assert_at_rest_in(
            &server,
            dir.path(),
            SEALED_TABLES,
            "after registration",
            &secrets,
            &[],
        )
        .await;
        server.stop_replica().await;

        // The rotation re-seals both under a new key; the old key is then refused.
        let new_key_file = dir.path().join("new.secrets-key");
        let (ok, out) = rotate_key(&database_url, old_key, &new_key_file);
        assert!(ok, "{engine:?}: {out}");
        assert!(out.contains("re-sealed 2 secret(s)"), "{engine:?}: {out}");
        let old_env: Vec<(&str, &str)> = match old_key {
            Some(k) => vec![("AMI_SECRETS_KEY", k)],
            None => vec![],
        };
        let refused = start_error(&database_url, &old_env).await;
        assert!(
            refused.contains("secrets key does not match"),
            "{engine:?}: {refused}"
        );
        let refused = start_error(&database_url, &[("AMI_SECRETS_KEY", "not-a-key")]).await;
        assert!(refused.contains("32 bytes"), "{engine:?}: {refused}");

        // With the new key every secret still works: the old webhook secret value verifies
        // a new delivery, the voice secret reads back as the same one.
        let new_key = new_key_file.display().to_string();
        let server = TestServer::start_on(
            engine,
            &database_url,
            &[LOOPBACK, ("AMI_SECRETS_KEY_FILE", &new_key)],
        )
        .await;
        let second = ping(&server, &key, &ping_path, &receiver, 2).await;
        let (ok, out) = cli_verdict(&hook.secret, &second, None);
        assert!(ok, "{engine:?} after rotation: {out}");
        let (s, v) = server.get(&voice_path, &key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["signing_secret_hint"], voice_hint.as_str(), "{engine:?}");
        assert_at_rest_in(
            &server,
            dir.path(),
            SEALED_TABLES,
            "after rotation",
            &secrets,
            &[],
        )
        .await;
        server.stop_replica().await;
        if engine == Engine::Postgres {
            drop_pg_database(&database_url).await;
        }
    }
}
