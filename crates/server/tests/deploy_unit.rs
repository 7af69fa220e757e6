//! The systemd unit of docs/deploy.md (`deploy/ami.service`) parses, with the hardening the
//! page promises. `systemd-analyze verify` runs on a copy whose `ExecStart` names the
//! binary just built (the unit's own path exists only where it is installed); it exits 0
//! on unknown keys and bad values too, so any line it writes about the unit fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

const UNIT: &str = include_str!("../../../deploy/ami.service");

#[test]
fn the_unit_has_the_promised_hardening() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    for expected in [
        "User=ami",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=ami",
        "StateDirectoryMode=0700",
        "UMask=0077",
        "ExecStart=/usr/local/bin/ami serve",
        "Environment=DATABASE_URL=sqlite:///var/lib/ami/ami.db",
    ] {
        assert!(lines.contains(&expected), "{expected} is missing");
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let found = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is needed to check deploy/ami.service (CI must have it)"
        );
        println!("SKIPPED: systemd-analyze is not installed; deploy/ami.service was not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("ami.service");
    let binary = Path::new(env!("CARGO_BIN_EXE_ami"));
    assert!(UNIT.contains("/usr/local/bin/ami serve"));
    std::fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/ami", binary.to_str().unwrap()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let about_the_unit: Vec<&str> = said.lines().filter(|l| l.contains("ami.service")).collect();
    assert!(about_the_unit.is_empty(), "{said}");

    // The check itself catches a mistake: a misspelt value is reported.
    std::fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/ami", binary.to_str().unwrap())
            .replace("ProtectSystem=strict", "ProtectSystem=strictly"),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ami.service"));
}
