//! Promise (seed "Audit log", PROTOCOL §9, §11): the audit table is append-only, enforced by
//! the storage itself; its hash chain makes tampering by someone who bypasses the storage
//! (file access, superuser) detectable, by `verify_audit_chain` and by `ami audit verify`;
//! `GET /v1/events` is tenant-filtered and payloads carry no credential and no full PII.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{ADMIN_KEY, Engine, Flow, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every column that the chain covers, plus its links, in chain order.
type Snapshot = Vec<(String, String, i64, String, String, String)>;

async fn snapshot(server: &TestServer) -> Snapshot {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_as("SELECT id, chain_id, chain_seq, data, prev_hash, hash FROM audit_events ORDER BY chain_id, chain_seq")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

/// Runs one statement as a tamperer would, on its own connection, outside any transaction.
async fn exec(server: &TestServer, sql: &str, id: &str) -> Result<u64, sqlx::Error> {
    let mut conn = server.running.services.store.reader().await.unwrap();
    let q = sqlx::query(sql);
    let q = if sql.contains("$1") { q.bind(id) } else { q };
    q.execute(&mut *conn).await.map(|r| r.rows_affected())
}

/// Two customers, each through the six steps, plus a rotation of each credential kind.
async fn populate(server: &TestServer) -> (Account, Account) {
    let mut accounts = Vec::new();
    for name in ["Alpha", "Beta"] {
        let (id, key) = server.customer(name).await;
        let flow = server.provision(&key).await;
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/rotate-token", flow.mid),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let token = v["agent_token"].as_str().unwrap().to_owned();
        let (s, v) = server
            .post(
                &format!("/v1/admin/customers/{id}/rotate-key"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let new_key = v["api_key"].as_str().unwrap().to_owned();
        accounts.push(Account {
            id,
            secrets: vec![key, flow.agent_token.clone(), token, signing_token(&flow)],
            key: new_key,
            flow,
        });
    }
    let b = accounts.pop().unwrap();
    (accounts.pop().unwrap(), b)
}

struct Account {
    id: String,
    key: String,
    flow: Flow,
    /// Every credential this account was ever handed except `key`.
    secrets: Vec<String>,
}

fn signing_token(flow: &Flow) -> String {
    flow.signature_url.split_once("?t=").unwrap().1.to_owned()
}

const COLUMNS: &str = "id, chain_id, chain_seq, account_id, at, action, actor_type, actor_id, entity_type, entity_id, mid, data, prev_hash, hash";

/// Statements that would rewrite history through the storage's own front door.
fn rewrites(engine: Engine) -> Vec<(&'static str, String)> {
    let forged = "'{\"forged\":true}'";
    // An existing row, its data forged: same id, chain position and links.
    let row = format!(
        "id, chain_id, chain_seq, account_id, at, action, actor_type, actor_id, entity_type, entity_id, mid, {forged}, prev_hash, hash"
    );
    let copy = format!("SELECT {row} FROM audit_events WHERE id = $1");
    let copy_with_seq = format!("SELECT seq, {row} FROM audit_events WHERE id = $1");
    let mut v = vec![
        (
            "UPDATE",
            format!("UPDATE audit_events SET data = {forged} WHERE id = $1"),
        ),
        (
            "UPDATE of every row",
            format!("UPDATE audit_events SET data = {forged}"),
        ),
        (
            "DELETE",
            "DELETE FROM audit_events WHERE id = $1".to_owned(),
        ),
        ("DELETE of every row", "DELETE FROM audit_events".to_owned()),
    ];
    match engine {
        Engine::Sqlite => {
            v.push((
                "INSERT OR REPLACE, same id and seq",
                format!("INSERT OR REPLACE INTO audit_events (seq, {COLUMNS}) {copy_with_seq}"),
            ));
            v.push((
                "REPLACE INTO, same id and seq",
                format!("REPLACE INTO audit_events (seq, {COLUMNS}) {copy_with_seq}"),
            ));
            v.push((
                "REPLACE INTO, existing seq under a new id",
                format!(
                    "REPLACE INTO audit_events (seq, {COLUMNS}) SELECT seq, 'evt_forged', 'forged', 1, account_id, at, action, actor_type, actor_id, entity_type, entity_id, mid, {forged}, prev_hash, hash FROM audit_events WHERE id = $1"
                ),
            ));
            v.push((
                "INSERT OR REPLACE, existing chain position under a new id",
                format!(
                    "INSERT OR REPLACE INTO audit_events ({COLUMNS}) SELECT 'evt_forged', chain_id, chain_seq, account_id, at, action, actor_type, actor_id, entity_type, entity_id, mid, {forged}, prev_hash, hash FROM audit_events WHERE id = $1"
                ),
            ));
            v.push((
                "INSERT ... ON CONFLICT DO UPDATE",
                format!("INSERT INTO audit_events ({COLUMNS}) {copy} ON CONFLICT (id) DO UPDATE SET data = excluded.data"),
            ));
        }
        Engine::Postgres => {
            v.push((
                "INSERT ... ON CONFLICT (id) DO UPDATE",
                format!("INSERT INTO audit_events ({COLUMNS}) {copy} ON CONFLICT (id) DO UPDATE SET data = excluded.data"),
            ));
            v.push(("TRUNCATE", "TRUNCATE audit_events".to_owned()));
        }
    }
    v
}

#[tokio::test]
async fn the_storage_refuses_to_rewrite_the_log() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (a, _b) = populate(&server).await;
        let before = snapshot(&server).await;
        assert!(before.len() > 20, "{engine:?}: {} events", before.len());
        let victim = before
            .iter()
            .find(|e| e.1 == a.id && e.2 == 2)
            .unwrap()
            .0
            .clone();
        for (what, sql) in rewrites(engine) {
            let refused = exec(&server, &sql, &victim).await;
            let err = refused.expect_err(&format!("{engine:?}: {what} was accepted: {sql}"));
            assert!(
                err.to_string().contains("append-only"),
                "{engine:?}: {what} failed for another reason: {err}"
            );
            assert_eq!(
                snapshot(&server).await,
                before,
                "{engine:?}: {what} changed the table"
            );
        }
        // Appending is what the table is for: the next action still writes its event.
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/rotate-token", a.flow.mid),
                &a.key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let after = snapshot(&server).await;
        assert!(
            after.len() > before.len(),
            "{engine:?}: the rotation wrote no event"
        );
        assert!(before.iter().all(|e| after.contains(e)), "{engine:?}");
        server.stop().await;
    }
}

/// `ami audit verify` on the server's database: exit code and everything it printed.
async fn cli_verify(server: &TestServer) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(["audit", "verify"])
        .env_clear()
        .env("DATABASE_URL", &server.database_url)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_hash_chain_exposes_tampering() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (a, _b) = populate(&server).await;
        let events = snapshot(&server).await;
        let report = server.running.services.verify_audit_chain().await.unwrap();
        assert!(report.first_broken.is_none(), "{engine:?}: {report:?}");
        assert_eq!(
            report.events as usize,
            events.len(),
            "{engine:?}: verify skipped events"
        );
        assert!(
            report.chains >= 3,
            "{engine:?}: global + two accounts: {report:?}"
        );
        let (code, out) = cli_verify(&server).await;
        assert_eq!(code, 0, "{engine:?}: untampered store: {out}");

        // A tamperer with file or superuser access switches the guard off.
        let unguard: &[&str] = match engine {
            Engine::Sqlite => &[
                "DROP TRIGGER audit_events_no_update",
                "DROP TRIGGER audit_events_no_delete",
            ],
            Engine::Postgres => &["ALTER TABLE audit_events DISABLE TRIGGER USER"],
        };
        for sql in unguard {
            exec(&server, sql, "").await.unwrap();
        }
        let chain: Vec<_> = events.iter().filter(|e| e.1 == a.id).collect();
        assert!(chain.len() >= 6, "{engine:?}");
        let (victim, victim_seq, original) = (&chain[2].0, chain[2].2, &chain[2].3);

        // 1. One event's data rewritten.
        let n = exec(
            &server,
            "UPDATE audit_events SET data = '{\"reason\":\"nothing happened\"}' WHERE id = $1",
            victim,
        )
        .await
        .unwrap();
        assert_eq!(n, 1);
        let broken = server
            .running
            .services
            .verify_audit_chain()
            .await
            .unwrap()
            .first_broken
            .expect("tampering missed");
        assert_eq!(
            (broken.event_id.as_str(), broken.chain.as_str()),
            (victim.as_str(), a.id.as_str()),
            "{engine:?}"
        );
        assert_eq!(broken.chain_seq, victim_seq);
        let (code, out) = cli_verify(&server).await;
        assert_eq!(code, 1, "{engine:?}: {out}");
        assert!(
            out.contains(victim.as_str()),
            "{engine:?}: the CLI does not name {victim}: {out}"
        );

        // Put back exactly, the chain holds again: the check is about content, not noise.
        let mut conn = server.running.services.store.reader().await.unwrap();
        sqlx::query("UPDATE audit_events SET data = $2 WHERE id = $1")
            .bind(victim)
            .bind(original)
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        let report = server.running.services.verify_audit_chain().await.unwrap();
        assert!(report.first_broken.is_none(), "{engine:?}: {report:?}");

        // 2. One event removed from the middle of the chain.
        exec(&server, "DELETE FROM audit_events WHERE id = $1", victim)
            .await
            .unwrap();
        let next = &chain[3].0;
        let broken = server
            .running
            .services
            .verify_audit_chain()
            .await
            .unwrap()
            .first_broken
            .expect("deletion missed");
        assert_eq!(
            broken.event_id, *next,
            "{engine:?}: the event after the gap is reported"
        );
        assert_eq!(broken.chain_seq, victim_seq + 1);
        assert!(
            broken.problem.contains("missing"),
            "{engine:?}: {}",
            broken.problem
        );
        let (code, out) = cli_verify(&server).await;
        assert_eq!(code, 1, "{engine:?}: {out}");
        assert!(
            out.contains(next.as_str()) && out.contains("missing"),
            "{engine:?}: {out}"
        );
        server.stop().await;
    }
}

/// Every event `key` can see through `GET /v1/events`, following the cursor.
async fn all_events(server: &TestServer, key: &str, filter: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor
            .as_deref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (s, v) = server
            .get(&format!("/v1/events?limit=7{filter}{after}"), key)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        events.extend(v["events"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return events,
        }
    }
}

#[tokio::test]
async fn events_are_tenant_filtered_and_carry_no_secret() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (a, b) = populate(&server).await;
        let stored = snapshot(&server).await;
        for (me, other) in [(&a, &b), (&b, &a)] {
            let mine = all_events(&server, &me.key, "").await;
            let mut conn = server.running.services.store.reader().await.unwrap();
            let expected: BTreeSet<String> =
                sqlx::query_scalar("SELECT id FROM audit_events WHERE account_id = $1")
                    .bind(&me.id)
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
            drop(conn);
            for e in &mine {
                assert_eq!(
                    e["account_id"],
                    me.id.as_str(),
                    "{engine:?}: foreign event {e}"
                );
            }
            let seen: BTreeSet<String> = mine
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                mine.len(),
                seen.len(),
                "{engine:?}: an event listed twice across pages"
            );
            assert_eq!(
                seen, expected,
                "{engine:?}: {} sees exactly its own events",
                me.id
            );
            // Naming the other tenant's resources in the filters finds nothing.
            for filter in [
                format!("&mid={}", other.flow.mid),
                format!("&entity_id={}", other.id),
                format!("&entity_id={}", other.flow.sim_request),
            ] {
                let found = all_events(&server, &me.key, &filter).await;
                assert!(found.is_empty(), "{engine:?}: {filter} leaked {found:?}");
            }
        }

        // No payload, in the store or on the wire, carries a credential or full PII.
        let mut forbidden: Vec<String> =
            vec![ADMIN_KEY.to_owned(), "B12345678".into(), "600111222".into()];
        for acct in [&a, &b] {
            forbidden.push(acct.key.clone());
            forbidden.extend(acct.secrets.iter().cloned());
        }
        let admin_view = {
            let (s, v) = server.get("/v1/admin/events?limit=1000", ADMIN_KEY).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v.to_string()
        };
        let wire = format!(
            "{admin_view}{:?}{:?}",
            all_events(&server, &a.key, "").await,
            all_events(&server, &b.key, "").await
        );
        for secret in &forbidden {
            for (id, _, _, data, _, _) in &stored {
                assert!(
                    !data.contains(secret.as_str()),
                    "{engine:?}: event {id} data carries {secret}: {data}"
                );
            }
            assert!(
                !wire.contains(secret.as_str()),
                "{engine:?}: an event on the wire carries {secret}"
            );
        }
        server.stop().await;
    }
}
