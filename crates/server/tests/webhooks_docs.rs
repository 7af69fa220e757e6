//! The test vectors published in `docs/webhooks.md` are the library's, value for value, and
//! `ami webhook verify` accepts each of them (and refuses each with a changed body): the
//! documentation cannot drift from what the server signs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::Command;

use ami_webhooks::TEST_VECTORS;

/// The `name  value` lines of each ```text block that follows a "Vector N" line.
fn published_vectors() -> Vec<HashMap<String, String>> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/webhooks.md"
    ))
    .unwrap();
    let mut vectors = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("Vector ") {
            continue;
        }
        let mut fields = HashMap::new();
        let mut inside = false;
        for l in lines.by_ref() {
            match (inside, l.trim_end()) {
                (false, "```text") => inside = true,
                (true, "```") => break,
                (true, l) if !l.is_empty() => {
                    // A name column 18 wide ("webhook id" holds a space), then the value.
                    let (name, value) = l.split_at(18);
                    fields.insert(name.trim().to_owned(), value.to_owned());
                }
                _ => {}
            }
        }
        vectors.push(fields);
    }
    vectors
}

fn verify(v: &HashMap<String, String>, body: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let header_names = [
        "x-ami-signature",
        "x-ami-timestamp",
        "x-ami-webhook-id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ];
    let lines: String = header_names
        .iter()
        .map(|n| format!("{n}: {}\n", v[*n]))
        .collect();
    std::fs::write(dir.path().join("headers.txt"), lines).unwrap();
    std::fs::write(dir.path().join("body.bin"), body).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ami"))
        .args([
            "webhook",
            "verify",
            "--secret",
            &v["secret"],
            "--now",
            &v["timestamp"],
        ])
        .arg("--headers")
        .arg(dir.path().join("headers.txt"))
        .arg("--body")
        .arg(dir.path().join("body.bin"))
        .env_clear()
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_published_vectors_are_the_librarys_and_verify() {
    let published = published_vectors();
    assert_eq!(published.len(), TEST_VECTORS.len(), "{published:?}");
    for (doc, lib) in published.iter().zip(TEST_VECTORS) {
        let body = std::str::from_utf8(lib.body).unwrap();
        let ts = lib.timestamp.to_string();
        for (field, want) in [
            ("secret", lib.secret),
            ("webhook id", lib.webhook_id),
            ("message id", lib.message_id),
            ("timestamp", ts.as_str()),
            ("body", body),
            ("x-ami-signature", lib.ami_signature),
            ("x-ami-timestamp", ts.as_str()),
            ("x-ami-webhook-id", lib.webhook_id),
            ("webhook-id", lib.message_id),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", lib.webhook_signature),
        ] {
            assert_eq!(doc.get(field).map(String::as_str), Some(want), "{field}");
        }
        let (ok, out) = verify(doc, body);
        assert!(ok, "{out}");
        assert_eq!(out.matches(": OK").count(), 2, "{out}");
        let (ok, out) = verify(doc, &format!("{body} "));
        assert!(!ok && out.matches(": FAIL").count() == 2, "{out}");
    }
}
