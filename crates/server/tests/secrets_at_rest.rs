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
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Engine, TestServer, customer_data, engines};
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
async fn dump_tables(server: &TestServer) -> Vec<(String, String)> {
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
    for t in [
        "accounts",
        "agent_tokens",
        "contracts",
        "settings",
        "audit_events",
        "idempotency_keys",
    ] {
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
fn raw_sqlite_files(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(server.dir()).unwrap() {
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
    let engine = server.engine;
    let rows = dump_tables(server).await;
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
        let files = raw_sqlite_files(server);
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
