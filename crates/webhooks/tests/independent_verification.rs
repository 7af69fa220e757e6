//! A real delivery to a loopback receiver, verified by code this project did not
//! write: the `standardwebhooks` package for the Standard Webhooks scheme, and an HMAC
//! check written with Python's standard library for the compatible scheme
//! (`tests/verify_delivery.py`). Needs `python3` with `standardwebhooks` installed;
//! without it the test fails when `CI=true` and is skipped loudly otherwise.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ami_webhooks::{Disposition, StaticLookup, classify, generate_secret, sign};
use bytes::Bytes;
use common::{Reply, guard, sender, spawn_receiver};
use http::{HeaderMap, HeaderValue};

const PIP: &str = "pip install 'standardwebhooks==1.1.0'";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_delivery.py")
}

fn python_ready() -> bool {
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
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 SKIPPED: independent webhook verification needs python3 + standardwebhooks.\n\
                 Install it with: {PIP}\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            false
        }
    }
}

fn run(secret: &str, dir: &Path, body_file: &str, extra: &[&str]) -> Output {
    Command::new("python3")
        .arg(script())
        .arg(secret)
        .arg(dir.join("headers.json"))
        .arg(dir.join(body_file))
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_real_delivery_verifies_with_independent_code() {
    if !python_ready() {
        return;
    }
    let receiver = spawn_receiver("127.0.0.1:0", Reply::status(204)).await;
    let sender = sender(guard("127.0.0.0/8", Arc::new(StaticLookup::new())));
    let url = sender
        .guard()
        .check_url(&format!("http://127.0.0.1:{}/hook", receiver.port()))
        .unwrap();

    let secret = generate_secret();
    let body = Bytes::from(
        "{\"id\":\"evt_01jdq4v8k2x9m3n5p7r9t1v3w6\",\"event\":\"sms.inbound\",\
         \"data\":{\"text\":\"caf\u{e9} \u{1f44b}\"}}",
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature = sign(
        &secret,
        "wh_01jdq4v8k2x9m3n5p7r9t1v3w5",
        "evt_01jdq4v8k2x9m3n5p7r9t1v3w6",
        now,
        &body,
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    signature.apply_to(&mut headers).unwrap();

    let outcome = sender.send(&url, headers, body.clone()).await;
    assert_eq!(classify(&outcome), Disposition::Delivered, "{outcome:?}");

    let captured = receiver.requests();
    assert_eq!(captured.len(), 1);
    let request = &captured[0];
    assert_eq!(request.request_line, "POST /hook HTTP/1.1");
    assert_eq!(
        request.body,
        body.as_ref(),
        "the signed bytes are the sent bytes"
    );
    assert_eq!(
        request.header("x-ami-webhook-id"),
        Some("wh_01jdq4v8k2x9m3n5p7r9t1v3w5")
    );
    assert_eq!(
        request.header("webhook-id"),
        Some("evt_01jdq4v8k2x9m3n5p7r9t1v3w6")
    );

    let dir = tempfile::tempdir().unwrap();
    let headers_json: serde_json::Map<String, serde_json::Value> = request
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone())))
        .collect();
    std::fs::write(
        dir.path().join("headers.json"),
        serde_json::to_vec(&headers_json).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("body.bin"), &request.body).unwrap();
    let mut tampered = request.body.clone();
    tampered.push(b' ');
    std::fs::write(dir.path().join("tampered.bin"), &tampered).unwrap();

    let good = run(&secret, dir.path(), "body.bin", &[]);
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(stdout.contains("standard-webhooks: OK"), "{stdout}");
    assert!(stdout.contains("compat: OK"), "{stdout}");

    // The checker can fail: a changed body, another secret, a clock 400 s ahead.
    let bad = run(&secret, dir.path(), "tampered.bin", &[]);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("standard-webhooks: FAIL"), "{stdout}");
    assert!(stdout.contains("compat: FAIL"), "{stdout}");

    let other = run(&generate_secret(), dir.path(), "body.bin", &[]);
    assert_eq!(other.status.code(), Some(1));

    let later = (now + 400).to_string();
    let late = run(&secret, dir.path(), "body.bin", &["--now", &later]);
    assert_eq!(late.status.code(), Some(1));
}
