//! Promise (seed "Data at rest", PROTOCOL §10, §1 admin row): the real `ami serve` binary
//! creates the SQLite file and its `-wal`/`-shm` companions owner-only (0600) even under
//! `umask 000`; refuses to start on a database file readable by others unless told to; and,
//! with no admin key configured, generates one on the first start, prints it once and keeps
//! only its hash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

const ADMIN_KEY: &str = "file-permissions-admin-key-0123456789";

/// A running (or exited) `ami serve` and everything it wrote on stderr so far.
struct Ami {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// Starts `ami serve <args>` under `umask 000` on a free port with only the environment given.
fn spawn(db: &Path, env: &[(&str, &str)], args: &[&str]) -> Ami {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 000; exec "$0" serve "$@""#)
        .arg(env!("CARGO_BIN_EXE_ami"))
        .args(args)
        .env_clear()
        .env("AMI_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("NO_COLOR", "1")
        .env("AMI_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&strip_ansi(&line));
            s.push('\n');
        }
    });
    Ami { child, stderr }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Ami {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the "ami listening addr=..." line, then for `/v1/health`; the base URL.
    async fn ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let log = self.stderr();
            if let Some(rest) = log.lines().find(|l| l.contains("ami listening")) {
                let addr = rest
                    .split("addr=")
                    .nth(1)
                    .expect("addr= in the listening line");
                break addr.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ami exited with {status} before listening:\n{log}");
            }
            assert!(Instant::now() < deadline, "ami never listened:\n{log}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let base = format!("http://{addr}");
        loop {
            if let Ok(res) = reqwest::get(format!("{base}/v1/health")).await
                && res.status() == StatusCode::OK
            {
                return base;
            }
            assert!(
                Instant::now() < deadline,
                "ami never became healthy:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the process to exit on its own.
    async fn exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ami did not exit:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A graceful stop (SIGTERM), as an operator or a supervisor would.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        self.exit().await;
    }

    /// A hard stop (SIGKILL): the companions stay behind, as after a crash.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn companion(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

async fn create_customer(base: &str, admin_key: &str) {
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/admin/customers"))
        .bearer_auth(admin_key)
        .json(&serde_json::json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn database_files_are_owner_only_and_checked_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ami.db");
    let admin = [("AMI_ADMIN_KEY", ADMIN_KEY)];

    let mut ami = spawn(&db, &admin, &[]);
    let base = ami.ready().await;
    create_customer(&base, ADMIN_KEY).await;
    for file in [db.clone(), companion(&db, "-wal"), companion(&db, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{} under umask 000", file.display());
    }
    ami.kill();

    // Readable by others: refused, naming the file and its mode.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut refused = spawn(&db, &admin, &[]);
    let status = refused.exit().await;
    let log = refused.stderr();
    assert!(!status.success(), "started on a 0644 database:\n{log}");
    assert!(
        log.contains(&db.display().to_string()) && log.contains("644"),
        "the refusal does not name the file and its mode:\n{log}"
    );
    assert!(!log.contains("ami listening"), "{log}");

    // Unless the operator says so, by flag or by environment.
    let mut flagged = spawn(&db, &admin, &["--allow-insecure-db-permissions"]);
    flagged.ready().await;
    flagged.stop().await;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let insecure_env = [
        ("AMI_ADMIN_KEY", ADMIN_KEY),
        ("AMI_ALLOW_INSECURE_DB_PERMISSIONS", "true"),
    ];
    let mut by_env = spawn(&db, &insecure_env, &[]);
    by_env.ready().await;
    by_env.stop().await;
}

/// The `amiadm_live_` + 64 hex keys printed in `log`.
fn admin_keys_in(log: &str) -> Vec<String> {
    let prefix = "amiadm_live_";
    log.match_indices(prefix)
        .map(|(i, _)| log[i..].chars().take(prefix.len() + 64).collect::<String>())
        .collect()
}

#[tokio::test]
async fn a_generated_admin_key_is_shown_once_and_kept_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ami.db");

    let mut first = spawn(&db, &[], &[]);
    let base = first.ready().await;
    let keys = admin_keys_in(&first.stderr());
    assert_eq!(keys.len(), 1, "printed exactly once:\n{}", first.stderr());
    let key = keys[0].clone();
    assert!(
        key[12..].len() == 64 && key[12..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{base}/v1/admin/customers"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    first.stop().await;

    let mut second = spawn(&db, &[], &[]);
    let base = second.ready().await;
    assert!(
        !second.stderr().contains("amiadm_live_"),
        "printed again:\n{}",
        second.stderr()
    );
    let res = http
        .get(format!("{base}/v1/admin/customers"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the generated key survives a restart"
    );
    second.stop().await;

    let mut bytes = Vec::new();
    for file in [db.clone(), companion(&db, "-wal"), companion(&db, "-shm")] {
        bytes.extend(std::fs::read(&file).unwrap_or_default());
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        !contains(&key) && !contains(&key[12..]),
        "the admin key is stored in plaintext"
    );
    assert!(
        contains(&ami_core::secret::hash(&key)),
        "its SHA-256 is not in the database"
    );
}
