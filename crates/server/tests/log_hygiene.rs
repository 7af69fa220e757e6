//! PROTOCOL §3.5: "SMS bodies are stored for the agent's own reads; they are never written to
//! the audit log or to logs", and no credential reaches the logs either. The real binary at
//! `AMI_LOG=debug` (every crate, sqlx and hyper included) sends, delivers and stops; its whole
//! stderr is then searched. Both log formats: readable text, and `log_format = "json"`,
//! whose every line must be a JSON object and whose request lines must carry the request id,
//! route, status, latency and account id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, AmiProcess, Engine, Remote, drop_pg_database, engines, fresh_pg_database};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BODY: &str = "secret-body-7f3a";

#[tokio::test]
async fn no_sms_body_or_credential_in_the_logs_or_the_audit() {
    for engine in engines() {
        let log = run(engine, "text").await;
        assert!(log.contains("DEBUG"), "not a debug log:\n{log}");
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_one_line_per_request() {
    for engine in engines() {
        run(engine, "json").await;
    }
}

/// Sends, delivers and stops a server logging at debug level in `format`; checks the
/// audit log and the whole log for bodies and credentials; returns the log.
async fn run(engine: Engine, format: &str) -> String {
    {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };
        let mut ami = AmiProcess::spawn(
            &database_url,
            &[("AMI_LOG", "debug"), ("AMI_LOG_FORMAT", format)],
            &[],
        );
        let api = Remote::new(&ami.ready().await);
        let (account, key) = api.customer("Quiet").await;
        let flow = api.provision(&key).await;

        // A GSM-7 body and a UCS-2 one, plus a refused send that carries the body too.
        let mut ids = Vec::new();
        for body in [BODY.to_owned(), format!("{BODY} ✓ €")] {
            let (s, sms) = api
                .post(
                    "/v1/agent/sms/send",
                    &flow.agent_token,
                    json!({"to": "+34611005678", "body": body}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
            ids.push(sms["id"].as_str().unwrap().to_owned());
        }
        let (s, v) = api
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+573001234567", "body": BODY}),
            )
            .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
        // A malformed request echoes nothing of the body either.
        let (s, v) = api
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+34611005678", "body": BODY, "unexpected": BODY}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(!v.to_string().contains(BODY), "{v}");

        let deadline = Instant::now() + Duration::from_secs(10);
        for id in &ids {
            loop {
                let (_, m) = api
                    .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
                    .await;
                if m["status"] == "delivered" {
                    // Stored for the agent's own reads.
                    assert!(m["body"].as_str().unwrap().starts_with(BODY), "{m}");
                    break;
                }
                assert!(Instant::now() < deadline, "{engine:?}: {m}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }

        // The audit log, the tenant's and the operator's, has every step but no body.
        let (s, events) = api.get("/v1/events?limit=1000", &key).await;
        assert_eq!(s, StatusCode::OK, "{events}");
        let (s, all) = api.get("/v1/admin/events?limit=1000", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        for text in [events.to_string(), all.to_string()] {
            for action in ["sms_queued", "sms_sent", "sms_delivered", "sms_blocked"] {
                assert!(text.contains(action), "{engine:?}: no {action} in {text}");
            }
            assert!(
                !text.contains(BODY),
                "{engine:?}: body in the audit: {text}"
            );
        }

        let (status, log) = ami.terminate().await;
        assert!(status.success(), "{status:?}\n{log}");
        // The log is not empty: it did run at debug level and said what it did.
        assert!(log.contains("ami listening"), "{log}");
        assert!(log.contains("request finished"), "no request line:\n{log}");
        for (what, secret) in [
            ("the SMS body", BODY),
            ("the agent token", flow.agent_token.as_str()),
            ("the customer key", key.as_str()),
            ("the admin key", ADMIN_KEY),
        ] {
            let line = log.lines().find(|l| l.contains(secret));
            assert!(line.is_none(), "{engine:?}: {what} in the log: {line:?}");
        }
        if format == "json" {
            assert_json_lines(&log, &account);
        }
        if engine == Engine::Postgres {
            drop_pg_database(&database_url).await;
        }
        log
    }
}

/// Every line is a JSON object; each request ends with one line naming its request id,
/// route, status, latency and, once authenticated, its account.
fn assert_json_lines(log: &str, account: &str) {
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    assert!(!requests.is_empty(), "{log}");
    for r in &requests {
        assert_eq!(r["level"], "INFO", "request lines are at info level: {r}");
        assert!(r["status"].as_u64().is_some(), "{r}");
        assert!(r["latency_ms"].as_f64().is_some(), "{r}");
        let id = r["span"]["id"].as_str().unwrap_or_default();
        assert!(id.starts_with("req_"), "{r}");
        assert!(r["span"]["path"].as_str().is_some(), "{r}");
    }
    // The agent's sends: one line each, with the route template and the account.
    let sends: Vec<&&Value> = requests
        .iter()
        .filter(|r| r["span"]["route"] == "/v1/agent/sms/send")
        .collect();
    assert_eq!(sends.len(), 4, "{requests:?}");
    for r in &sends {
        assert_eq!(r["span"]["account"], account, "{r}");
    }
    assert!(
        sends.iter().any(|r| r["status"] == 201) && sends.iter().any(|r| r["status"] == 429),
        "{sends:?}"
    );
    let ids: std::collections::BTreeSet<&str> = requests
        .iter()
        .filter_map(|r| r["span"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), requests.len(), "one line per request");
}
