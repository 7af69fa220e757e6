//! Backups and restores with the real `ami` binary, as an operator runs them.
//!
//! SQLite: `ami backup` under a steady send load gives a copy that passes `integrity_check`
//! and `ami audit verify` and holds every SMS acknowledged before the backup started;
//! `ami restore` refuses a database a server has open (the dispatching owner, and an
//! API-only process too), refuses a damaged copy or one whose audit chain is broken, and
//! puts a good copy in place with mode 0600, which then serves and verifies. The schedule of
//! `ami serve` keeps the newest copies. PostgreSQL: `pg_dump` / `pg_restore` into a fresh
//! database, which passes `ami audit verify` and serves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{AmiProcess, Remote, drop_pg_database, fresh_pg_database};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

/// `ami <args>` against `database_url`, to its end.
fn ami(database_url: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("AMI_ADMIN_KEY", common::ADMIN_KEY)
        .env("AMI_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("run ami")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A customer with one active MID whose limits a load cannot reach; its agent token.
async fn agent(api: &Remote) -> String {
    let (_, key) = api.customer("Backups").await;
    let flow = api.provision(&key).await;
    api.set_limits(
        &key,
        &flow.mid,
        json!({"rate_per_second": 1000, "sms_per_hour": 1_000_000,
               "sms_per_day": 1_000_000, "monthly_budget_eur": 1_000_000}),
    )
    .await;
    flow.agent_token
}

/// Senders that keep sending until `stop`; the id of every `201` is pushed to `accepted`
/// once its answer is in.
fn start_load(
    base: String,
    token: String,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(0));
    (0..3)
        .map(|_| {
            let (base, token, accepted, stop, next) = (
                base.clone(),
                token.clone(),
                accepted.clone(),
                stop.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst) + 10;
                    let res = http
                        .post(format!("{base}/v1/agent/sms/send"))
                        .bearer_auth(&token)
                        .json(&json!({"to": format!("+3466{n:07}"), "body": "backup load"}))
                        .send()
                        .await
                        .unwrap();
                    match res.status() {
                        StatusCode::CREATED => {
                            let v: Value = res.json().await.unwrap();
                            accepted
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap().to_owned());
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => {
                            panic!("a send was refused: {other} {}", res.text().await.unwrap())
                        }
                    }
                }
            })
        })
        .collect()
}

/// Every SMS id in the SQLite file at `path`, read without changing it.
async fn message_ids(path: &Path) -> std::collections::HashSet<String> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM messages")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    ids.into_iter().collect()
}

async fn integrity(path: &Path) -> Vec<String> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("ami-") && name.ends_with(".db")
        })
        .collect();
    found.sort();
    found
}

/// The outbound SMS the agent sees, over the API.
async fn listed(api: &Remote, token: &str) -> std::collections::HashSet<String> {
    let mut all = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = api
            .get(
                &format!("/v1/agent/sms?direction=outbound&limit=200&cursor={cursor}"),
                token,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for m in page["messages"].as_array().unwrap() {
            all.insert(m["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_backup_under_load_then_restore() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ami.db");
    let url = sqlite_url(&live);
    let backups = dir.path().join("backups");

    let mut server = AmiProcess::spawn(&url, &[], &[]);
    let api = Remote::new(&server.ready().await);
    let token = agent(&api).await;

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(
        api.base.clone(),
        token.clone(),
        accepted.clone(),
        stop.clone(),
    );
    // Let the load get going, so that the backup runs beside writes.
    while accepted.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acknowledged_before: Vec<String> = accepted.lock().unwrap().clone();
    let backup_dir = backups.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || ami(&url, &["backup", "--to", &backup_dir, "--keep", "3"])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let during = accepted.lock().unwrap().len();
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.await.unwrap();
    }
    let copy = PathBuf::from(String::from_utf8(out.stdout.clone()).unwrap().trim());
    assert_eq!(
        backups_in(&backups),
        std::slice::from_ref(&copy),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&copy), 0o600);
    assert_eq!(mode(&backups), 0o700);
    println!(
        "{} SMS acknowledged before the backup, {during} by its end",
        acknowledged_before.len()
    );

    // The copy: sound, holding every SMS acknowledged before it started, audit chain intact.
    assert_eq!(integrity(&copy).await, ["ok"]);
    let in_copy = message_ids(&copy).await;
    let missing: Vec<&String> = acknowledged_before
        .iter()
        .filter(|id| !in_copy.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged, not in the backup: {missing:?}"
    );
    let verified = ami(&sqlite_url(&copy), &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));

    // While the owner runs, and while an API-only process has the file open, restore refuses
    // and changes nothing.
    let refused = ami(&url, &["restore", copy.to_str().unwrap()]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("a running server holds"),
        "{}",
        text(&refused)
    );
    let all_sent = accepted.lock().unwrap().len();
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    let mut api_only = AmiProcess::spawn(&url, &[], &["--role", "api"]);
    api_only.ready().await;
    let refused = ami(&url, &["restore", copy.to_str().unwrap()]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("a running server holds"),
        "{}",
        text(&refused)
    );
    assert_eq!(message_ids(&live).await.len(), all_sent);
    let (status, log) = api_only.terminate().await;
    assert!(status.success(), "{log}");

    // Stopped: the copy goes in place, owner-only; the database it replaced is kept.
    let restored = ami(&url, &["restore", copy.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(mode(&live), 0o600);
    let kept: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("ami.db.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "{}", text(&restored));
    assert_eq!(
        message_ids(&dir.path().join(&kept[0])).await.len(),
        all_sent,
        "the database set aside is complete"
    );

    // The restored database serves what the copy holds, and its chain verifies.
    let mut server = AmiProcess::spawn(&url, &[], &[]);
    let api = Remote::new(&server.ready().await);
    let serving = listed(&api, &token).await;
    assert_eq!(serving, in_copy);
    let (s, v) = api
        .post(
            "/v1/agent/sms/send",
            &token,
            json!({"to": "+34660000001", "body": "after the restore"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert_eq!(mode(&live), 0o600);
    let verified = ami(&url, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_damaged_copy_or_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("ami.db");
    let url = sqlite_url(&live);
    let mut server = AmiProcess::spawn(&url, &[], &[]);
    let api = Remote::new(&server.ready().await);
    agent(&api).await;
    let backups = dir.path().join("backups");
    let out = ami(&url, &["backup", "--to", backups.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    let copy = backups_in(&backups).pop().unwrap();
    // The server may leave its last writes in the write-ahead log, which the next open
    // folds into the file: fold them now, so the bytes compared below are the database's.
    {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let before = std::fs::read(&live).unwrap();

    // Pages of the copy overwritten: integrity_check (or opening it at all) fails.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&copy).unwrap();
    let page = 4096;
    assert!(bytes.len() > 4 * page, "a copy of a few pages at least");
    for b in &mut bytes[page + 16..3 * page] {
        *b = 0x5a;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    let refused = ami(&url, &["restore", damaged.to_str().unwrap()]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("refusing to restore")
            || text(&refused).contains("not a readable SQLite database"),
        "{}",
        text(&refused)
    );

    // An audit event rewritten after the fact: the chain check refuses it.
    let forged = dir.path().join("forged.db");
    std::fs::copy(&copy, &forged).unwrap();
    {
        let mut conn = sqlx::SqliteConnection::connect(&sqlite_url(&forged))
            .await
            .unwrap();
        for sql in [
            "DROP TRIGGER audit_events_no_update",
            "UPDATE audit_events SET data = '{\"reason\":\"nothing happened\"}' WHERE id = (SELECT MIN(id) FROM audit_events)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let refused = ami(&url, &["restore", forged.to_str().unwrap()]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("audit chain"), "{}", text(&refused));

    // Neither touched the database, and neither left a file behind.
    assert!(
        std::fs::read(&live).unwrap() == before,
        "a refused restore changed the database"
    );
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("restoring") || n.contains("before-restore"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_keeps_the_newest_backups() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("ami.db"));
    let backups = dir.path().join("scheduled");
    let mut server = AmiProcess::spawn(
        &url,
        &[
            ("AMI_BACKUP_DIR", backups.to_str().unwrap()),
            ("AMI_BACKUP_INTERVAL_SECS", "1"),
            ("AMI_BACKUP_KEEP", "2"),
        ],
        &[],
    );
    server.ready().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.stderr().matches("backup taken").count() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled backups:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    let kept = backups_in(&backups);
    assert_eq!(kept.len(), 2, "{kept:?}\n{log}");
    for copy in &kept {
        assert_eq!(mode(copy), 0o600);
        assert_eq!(integrity(copy).await, ["ok"]);
    }
}

#[tokio::test]
async fn backup_and_restore_point_postgres_to_its_own_tools() {
    let url = "postgres://nobody@127.0.0.1:1/none";
    for args in [
        &["backup", "--to", "/tmp/unused"][..],
        &["restore", "/tmp/unused.db"],
    ] {
        let out = ami(url, args);
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("PostgreSQL"), "{}", text(&out));
    }
}

/// The procedure of docs/deploy.md: `pg_dump -Fc` of a live database, `pg_restore` into a
/// fresh one, which passes `ami audit verify` and serves what was there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dump_restored_into_a_fresh_database_verifies() {
    if std::env::var("AMI_TEST_DATABASE_URL").is_err() {
        common::require_postgres("pg_dump / pg_restore");
        return;
    }
    let found = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !found("pg_dump") || !found("pg_restore") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pg_dump and pg_restore are needed (CI must have them)"
        );
        println!("pg_dump / pg_restore: skipped, not installed");
        return;
    }
    let source = fresh_pg_database().await;
    let mut server = AmiProcess::spawn(&source, &[], &[]);
    let api = Remote::new(&server.ready().await);
    let token = agent(&api).await;
    for n in 0..20 {
        let (s, v) = api
            .post(
                "/v1/agent/sms/send",
                &token,
                json!({"to": format!("+346601000{n:02}"), "body": "before the dump"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let before = listed(&api, &token).await;

    // Dumped while the server runs.
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("ami.dump");
    let out = std::process::Command::new("pg_dump")
        .args(["-Fc", "-f", dump.to_str().unwrap(), "-d", &source])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");

    let target = fresh_pg_database().await;
    let out = std::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "--exit-on-error",
            "-d",
            &target,
            dump.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let verified = ami(&target, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert!(report["events"].as_u64().unwrap() > 20, "{report}");

    let mut server = AmiProcess::spawn(&target, &[], &[]);
    let api = Remote::new(&server.ready().await);
    assert_eq!(listed(&api, &token).await, before);
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    drop_pg_database(&source).await;
    drop_pg_database(&target).await;
}
