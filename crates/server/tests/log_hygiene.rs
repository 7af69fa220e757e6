//! PROTOCOL §3.5: "SMS bodies are stored for the agent's own reads; they are never written to
//! the audit log or to logs", and no credential reaches the logs either. The real binary at
//! `AMI_LOG=debug` (every crate, sqlx and hyper included) sends, delivers and stops; its whole
//! stderr is then searched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_KEY, AmiProcess, Engine, Remote, drop_pg_database, engines, fresh_pg_database};
use reqwest::StatusCode;
use serde_json::json;

const BODY: &str = "secret-body-7f3a";

#[tokio::test]
async fn no_sms_body_or_credential_in_the_logs_or_the_audit() {
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };
        let mut ami = AmiProcess::spawn(&database_url, &[("AMI_LOG", "debug")], &[]);
        let api = Remote::new(&ami.ready().await);
        let (_, key) = api.customer("Quiet").await;
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
        assert!(
            log.contains("DEBUG") && log.contains("request finished"),
            "not a debug log:\n{log}"
        );
        for (what, secret) in [
            ("the SMS body", BODY),
            ("the agent token", flow.agent_token.as_str()),
            ("the customer key", key.as_str()),
            ("the admin key", ADMIN_KEY),
        ] {
            let line = log.lines().find(|l| l.contains(secret));
            assert!(line.is_none(), "{engine:?}: {what} in the log: {line:?}");
        }
        if engine == Engine::Postgres {
            drop_pg_database(&database_url).await;
        }
    }
}
