//! Checking captured deliveries with code this project did not write (Python's
//! `standardwebhooks` package and an HMAC written with Python's standard library, in
//! `crates/webhooks/tests/verify_delivery.py`) and with the shipped `ami webhook verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::receiver::Captured;

pub const PIP: &str = "pip install 'standardwebhooks==1.1.0'";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../webhooks/tests/verify_delivery.py")
}

/// Whether python3 with `standardwebhooks` is there. In CI (`CI=true`) its absence fails
/// the test; elsewhere the independent check is skipped, loudly.
pub fn python_ready() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output();
    match probe {
        Ok(out) if out.status.success() => true,
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("python3 with standardwebhooks is required in CI: {PIP}")
        }
        _ => {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 SKIPPED: independent webhook verification needs python3 + standardwebhooks.\n\
                 Install it with: {PIP}\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            false
        }
    }
}

/// The independent verifiers' verdict on one delivery, and what they printed.
pub fn python_verdict(secret: &str, delivery: &Captured, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    delivery.save(dir.path());
    let out = Command::new("python3")
        .arg(script())
        .arg(secret)
        .arg(dir.path().join("headers.json"))
        .arg(dir.path().join("body.bin"))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `ami webhook verify` on one delivery, and what it printed.
pub fn cli_verdict(secret: &str, delivery: &Captured, now: Option<u64>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    delivery.save(dir.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ami"));
    cmd.args(["webhook", "verify", "--headers"])
        .arg(dir.path().join("headers.json"))
        .arg("--body")
        .arg(dir.path().join("body.bin"))
        .env_clear()
        .env("AMI_WEBHOOK_SECRET", secret);
    if let Some(now) = now {
        cmd.args(["--now", &now.to_string()]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
