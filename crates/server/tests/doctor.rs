//! `ami doctor` with the real binary: a sound setup passes with every line `ok`; each broken
//! part of a bad one is a `FAIL` line saying what to fix, and the exit status is 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use ami_smsc_sim::{Credentials, SimConfig, Smsc};
use tokio::net::UdpSocket;

fn ami(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ami"));
    cmd.args(args)
        .env_clear()
        .env("AMI_LOG", "warn")
        .env("AMI_MOCK_SIGN_ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ami")
}

/// `ami doctor` off the async threads (the test's SMSC and trunk answer on them).
async fn doctor(env: &[(&str, &str)]) -> (bool, String) {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ami(&["doctor"], &env)
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{:?}\n{report}",
        out.status
    );
    (out.status.success(), report)
}

fn migrated(dir: &Path) -> String {
    let url = format!("sqlite://{}/ami.db", dir.display());
    let out = ami(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(out.status.success(), "{out:?}");
    url
}

/// `[sip]` on loopback: the doctor binds none of it, the configuration needs it sound.
const SIP: &str = "{listen_udp = \"127.0.0.1:5060\", listen_tcp = \"\", public_host = \"\", \
    rtp_port_first = 20000, rtp_port_last = 20999, codecs = [\"PCMU\", \"PCMA\"], \
    ring_timeout_secs = 60}";

fn failures(report: &str) -> Vec<&str> {
    report.lines().filter(|l| l.starts_with("FAIL")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_setup_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let url = migrated(dir.path());
    // An SMSC that takes the account, and a trunk that answers OPTIONS.
    let smsc = Smsc::start(SimConfig {
        credentials: vec![Credentials::new("ami", "secret1")],
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let trunk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let trunk_addr = trunk.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        loop {
            let (_, from) = trunk.recv_from(&mut buf).await.unwrap();
            trunk
                .send_to(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", from)
                .await
                .unwrap();
        }
    });
    let smpp = format!(
        r#"[{{name = "smsc1", host = "127.0.0.1", port = {}, system_id = "ami", password = "secret1"}}]"#,
        smsc.addr().port()
    );
    let trunks = format!(r#"[{{name = "trunk1", proxy = "{trunk_addr}"}}]"#);
    let (ok, report) = doctor(&[
        ("DATABASE_URL", &url),
        ("AMI_CARRIER", "smpp"),
        ("AMI_SMPP", &smpp),
        ("AMI_CALL_CARRIER", "sip"),
        ("AMI_SIP", SIP),
        ("AMI_SIP_TRUNKS", &trunks),
    ])
    .await;
    assert!(ok, "{report}");
    for line in [
        "ok   config: loaded and valid",
        "ok   migrations: all applied",
        "ok   smpp smsc1: bound and unbound",
        "warn secrets key: none yet: the first `ami serve` makes one next to the database; in production configure secrets_key_file and keep a copy elsewhere",
    ] {
        assert!(report.lines().any(|l| l == line), "{line}\n{report}");
    }
    assert!(report.contains("ok   database file mode: "), "{report}");
    assert!(report.contains("ok   sip trunk trunk1: "), "{report}");
    assert!(failures(&report).is_empty(), "{report}");
    assert!(
        !report.contains("secret1"),
        "a secret in the report:\n{report}"
    );

    // PostgreSQL too, with the clock compared to the database's.
    if std::env::var("AMI_TEST_DATABASE_URL").is_ok() {
        let pg = common::fresh_pg_database().await;
        let out = ami(&["migrate"], &[("DATABASE_URL", &pg)]);
        assert!(out.status.success(), "{out:?}");
        let (ok, report) = doctor(&[("DATABASE_URL", &pg)]).await;
        assert!(!ok, "{report}");
        assert!(
            report.contains("FAIL secrets key: PostgreSQL needs a secrets key"),
            "{report}"
        );
        let key = "11".repeat(32);
        let (ok, report) = doctor(&[("DATABASE_URL", &pg), ("AMI_SECRETS_KEY", &key)]).await;
        assert!(ok, "{report}");
        assert!(
            report.contains("ok   secrets key: secrets_key; no secret sealed yet"),
            "{report}"
        );
        assert!(report.contains("ok   clock: within "), "{report}");
        assert!(report.contains("ok   migrations: all applied"), "{report}");
        common::drop_pg_database(&pg).await;
    } else {
        common::require_postgres("ami doctor on PostgreSQL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setup_fails_with_one_line_per_fix() {
    let dir = tempfile::tempdir().unwrap();
    let url = migrated(dir.path());
    let db = dir.path().join("ami.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Nothing listens on the SMSC's port; the trunk never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let smpp = format!(
        r#"[{{name = "smsc1", host = "127.0.0.1", port = {closed_port}, system_id = "ami", password = "secret1"}}]"#
    );
    let trunks = format!(
        r#"[{{name = "trunk1", proxy = "{}"}}]"#,
        silent.local_addr().unwrap()
    );
    let (ok, report) = doctor(&[
        ("DATABASE_URL", &url),
        ("AMI_CARRIER", "smpp"),
        ("AMI_SMPP", &smpp),
        ("AMI_CALL_CARRIER", "sip"),
        ("AMI_SIP", SIP),
        ("AMI_SIP_TRUNKS", &trunks),
    ])
    .await;
    assert!(!ok, "{report}");
    let failed = failures(&report);
    let expected_mode = format!(
        "FAIL database file mode: {} is 0644, readable by others: run `chmod 600 {}`",
        db.display(),
        db.display()
    );
    assert!(failed.contains(&expected_mode.as_str()), "{report}");
    assert!(
        failed.iter().any(|l| l.starts_with("FAIL smpp smsc1: ")),
        "{report}"
    );
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("FAIL sip trunk trunk1: ")),
        "{report}"
    );
    assert_eq!(failed.len(), 3, "{report}");
    assert!(
        !report.contains("secret1"),
        "a secret in the report:\n{report}"
    );

    // A configuration that does not load: each problem is a line.
    let (ok, report) = doctor(&[("DATABASE_URL", &url), ("AMI_DB_MAX_CONNECTIONS", "0")]).await;
    assert!(!ok, "{report}");
    assert!(
        failures(&report)
            .iter()
            .any(|l| l.starts_with("FAIL config: db_max_connections")),
        "{report}"
    );

    // No database at all.
    let missing = format!("sqlite://{}/nothing.db", dir.path().display());
    let (ok, report) = doctor(&[("DATABASE_URL", &missing)]).await;
    assert!(!ok, "{report}");
    assert!(report.contains("FAIL database: no database at"), "{report}");
    assert!(
        !dir.path().join("nothing.db").exists(),
        "the doctor created the database"
    );

    // Migrations missing: a database another tool made.
    let empty = dir.path().join("empty.db");
    std::fs::File::create(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, report) = doctor(&[("DATABASE_URL", &format!("sqlite://{}", empty.display()))]).await;
    assert!(!ok, "{report}");
    assert!(report.contains("pending: run `ami migrate`"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secrets_key_must_open_the_database_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let url = migrated(dir.path());
    // The rotation records the key beside the database, then moves the secrets to a new one.
    let new_key = dir.path().join("new.key");
    let out = ami(
        &[
            "secrets",
            "rotate-key",
            "--new-key-file",
            new_key.to_str().unwrap(),
        ],
        &[("DATABASE_URL", &url)],
    );
    assert!(out.status.success(), "{out:?}");

    // The operator forgot to point the server at the new key: the old one no longer opens.
    let (ok, report) = doctor(&[("DATABASE_URL", &url)]).await;
    assert!(!ok, "{report}");
    assert!(
        failures(&report)
            .iter()
            .any(|l| l.starts_with("FAIL secrets key: key file ")
                && l.contains("is not the key this database's secrets were sealed with")),
        "{report}"
    );

    let file = new_key.to_str().unwrap();
    let (ok, report) = doctor(&[("DATABASE_URL", &url), ("AMI_SECRETS_KEY_FILE", file)]).await;
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!(
            "ok   secrets key: secrets_key_file {file} opens this database's secrets"
        )),
        "{report}"
    );

    // The key beside the database lost: the doctor says where it should be.
    std::fs::remove_file(dir.path().join("ami.secrets-key")).unwrap();
    let (ok, report) = doctor(&[("DATABASE_URL", &url)]).await;
    assert!(!ok, "{report}");
    assert!(
        report.contains(
            "FAIL secrets key: this database's secrets are sealed with a key that is not at "
        ),
        "{report}"
    );
}
