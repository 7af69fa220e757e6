//! Promise (PROTOCOL §1, admin row): with no admin key configured, the first start generates
//! one, prints it once and keeps only its hash. A first start that cannot bind its port must
//! not keep the hash of a key nobody saw: the next start generates and prints one, and that
//! one works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::AmiProcess;
use reqwest::StatusCode;

/// The `amiadm_live_` keys printed in `log`.
fn admin_keys_in(log: &str) -> Vec<String> {
    let prefix = "amiadm_live_";
    log.match_indices(prefix)
        .map(|(i, _)| log[i..].chars().take(prefix.len() + 64).collect())
        .collect()
}

/// Waits for the process to exit and for its last line (`error: ...`) to be read.
async fn exit_with_error(ami: &mut AmiProcess) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = ami.child.try_wait().unwrap()
            && ami.stderr().contains("error:")
        {
            return (status, ami.stderr());
        }
        assert!(
            Instant::now() < deadline,
            "ami neither exited nor reported an error:\n{}",
            ami.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_first_start_that_cannot_bind_stores_no_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/ami.db", dir.path().display());
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = occupied.local_addr().unwrap().to_string();
    let env = [("AMI_LISTEN", listen.as_str()), ("AMI_ADMIN_KEY", "")];

    let mut first = AmiProcess::spawn(&database_url, &env, &[]);
    let (status, log) = exit_with_error(&mut first).await;
    assert!(!status.success(), "{log}");
    assert!(admin_keys_in(&log).is_empty(), "a key was shown:\n{log}");
    let store = ami_store::Store::open(&database_url, &ami_store::OpenOptions::default())
        .await
        .unwrap();
    let mut conn = store.reader().await.unwrap();
    let stored = ami_store::settings::get(&mut conn, ami_store::settings::ADMIN_KEY_HASH)
        .await
        .unwrap();
    assert_eq!(stored, None, "the hash of a key nobody saw was stored");
    drop(conn);
    store.close().await;

    drop(occupied);
    let mut second = AmiProcess::spawn(&database_url, &env, &[]);
    let base = second.ready().await;
    let keys = admin_keys_in(&second.stderr());
    assert_eq!(keys.len(), 1, "printed exactly once:\n{}", second.stderr());
    let res = reqwest::Client::new()
        .get(format!("{base}/v1/admin/customers"))
        .bearer_auth(&keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, log) = second.terminate().await;
    assert!(status.success(), "{log}");
}
