//! Exactly once to the carrier, or honestly unknown (docs/durability.md): a dispatcher whose
//! lease runs out while the carrier holds its submission can neither see it submitted a
//! second time by another dispatcher nor record its late outcome over the new holder's.
//!
//! Two servers share one database, neither dispatching on its own: the test runs their
//! dispatch steps with a carrier that holds every submission until released, and moves each
//! server's clock past the lease.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_carrier::{BoxFuture, Carrier, Lookup, OutboundCall, OutboundSms, SubmitError};
use common::{Engine, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Past the default dispatch lease (30 s).
const PAST_THE_LEASE_MS: i64 = 31_000;

/// A carrier that records each submission as it arrives and answers only when released.
/// With `looks_up`, it can say afterwards which submissions it has.
#[derive(Default)]
struct Held {
    looks_up: bool,
    submitted: Mutex<Vec<String>>,
    entered: Notify,
    release: Notify,
    /// Never answers at all (a carrier that hangs).
    silent: bool,
}

impl Carrier for Held {
    fn name(&self) -> &'static str {
        "held"
    }

    fn looks_up(&self) -> bool {
        self.looks_up
    }

    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async move {
            self.submitted.lock().unwrap().push(sms.id.clone());
            self.entered.notify_one();
            if self.silent {
                std::future::pending::<()>().await;
            }
            self.release.notified().await;
            Ok(format!("held_{}", sms.id))
        })
    }

    fn find_sms(&self, msg_id: &str) -> BoxFuture<'_, Lookup> {
        let found = self.submitted.lock().unwrap().iter().any(|id| id == msg_id);
        let lookup = if found {
            Lookup::Found(format!("held_{msg_id}"))
        } else {
            Lookup::NotFound
        };
        Box::pin(async move { lookup })
    }

    fn place_call(&self, _: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async { Err(SubmitError::Rejected("no calls".into())) })
    }

    fn hang_up(&self, _: String) -> BoxFuture<'_, Result<(), SubmitError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Two servers on one database, no dispatcher of their own, and one queued SMS.
async fn two_dispatchers(
    engine: Engine,
    env: &[(&str, &str)],
) -> (TestServer, TestServer, String, String) {
    let mut env = env.to_vec();
    env.push(("AMI_DISPATCH_ENABLED", "false"));
    let a = TestServer::start_with(engine, &env).await;
    let b = TestServer::start_on(engine, &a.database_url, &env).await;
    let (_, key) = a.customer("Fenced").await;
    let flow = a.provision(&key).await;
    let (s, sms) = a
        .post(
            "/v1/agent/sms/send",
            &flow.agent_token,
            json!({"to": "+34611005678", "body": "once"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sms}");
    (
        a,
        b,
        flow.agent_token,
        sms["id"].as_str().unwrap().to_owned(),
    )
}

async fn sms_of(server: &TestServer, token: &str, id: &str) -> Value {
    let (s, m) = server.get(&format!("/v1/agent/sms/{id}"), token).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    m
}

async fn audit_count(server: &TestServer, action: &str) -> i64 {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_submission_that_outlives_its_lease_is_not_submitted_again_by_another_dispatcher() {
    for engine in engines() {
        for looks_up in [false, true] {
            let (a, b, token, id) = two_dispatchers(engine, &[]).await;
            let carrier = Arc::new(Held {
                looks_up,
                ..Held::default()
            });
            // Dispatcher A claims the job and the carrier holds its submission.
            let first = {
                let (services, carrier) = (a.running.services.clone(), carrier.clone());
                tokio::spawn(async move { services.run_due_jobs(carrier.as_ref(), 8).await })
            };
            tokio::time::timeout(Duration::from_secs(10), carrier.entered.notified())
                .await
                .expect("dispatcher A reached the carrier");
            // A's lease runs out; dispatcher B claims the same job.
            b.clock
                .0
                .fetch_add(PAST_THE_LEASE_MS, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(
                b.running
                    .services
                    .run_due_jobs(carrier.as_ref(), 8)
                    .await
                    .unwrap(),
                1,
                "{engine:?} looks_up={looks_up}: B takes over the expired lease"
            );
            // A's submission now comes back; its outcome is no longer A's to record.
            carrier.release.notify_one();
            first.await.unwrap().unwrap();

            assert_eq!(
                carrier.submitted.lock().unwrap().as_slice(),
                std::slice::from_ref(&id),
                "{engine:?} looks_up={looks_up}: submitted once"
            );
            let m = sms_of(&a, &token, &id).await;
            if looks_up {
                // B asked the carrier, which has it: handed off under the carrier's reference.
                assert_eq!(m["telco_ref"], format!("held_{id}"), "{engine:?} {m}");
                assert_eq!(m["status"], "queued", "{engine:?} {m}");
                assert_eq!(audit_count(&a, "sms_outcome_unknown").await, 0);
            } else {
                // B cannot ask: the message is honestly unknown, and never sent again.
                assert_eq!(m["status"], "unknown", "{engine:?} {m}");
                assert!(
                    m["telco_ref"].is_null(),
                    "{engine:?}: A's late write landed: {m}"
                );
                assert_eq!(audit_count(&a, "sms_outcome_unknown").await, 1);
            }
            // Nothing is left to hand off, by either.
            for server in [&a, &b] {
                server
                    .clock
                    .0
                    .fetch_add(PAST_THE_LEASE_MS, std::sync::atomic::Ordering::SeqCst);
                assert_eq!(
                    server
                        .running
                        .services
                        .run_due_jobs(carrier.as_ref(), 8)
                        .await
                        .unwrap(),
                    0,
                    "{engine:?} looks_up={looks_up}"
                );
            }
            assert_eq!(carrier.submitted.lock().unwrap().len(), 1);
            b.stop_replica().await;
            a.stop().await;
        }
    }
}

#[tokio::test]
async fn a_carrier_that_never_answers_leaves_the_message_unknown_and_not_sent_again() {
    for engine in engines() {
        let (a, b, token, id) = two_dispatchers(engine, &[("AMI_CARRIER_TIMEOUT_MS", "300")]).await;
        let carrier = Held {
            silent: true,
            ..Held::default()
        };
        assert_eq!(
            a.running.services.run_due_jobs(&carrier, 8).await.unwrap(),
            1
        );
        let m = sms_of(&a, &token, &id).await;
        assert_eq!(
            (m["status"].as_str(), m["error"].as_str()),
            (Some("unknown"), Some("the carrier did not answer in time")),
            "{engine:?} {m}"
        );
        // The reservation stands: the carrier may have it.
        let (_, usage) = a.get("/v1/agent/usage", &token).await;
        assert_eq!(
            usage["usage"]["spend_this_month_eur"],
            json!(0.07),
            "{usage}"
        );
        b.clock
            .0
            .fetch_add(PAST_THE_LEASE_MS, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            b.running.services.run_due_jobs(&carrier, 8).await.unwrap(),
            0
        );
        assert_eq!(carrier.submitted.lock().unwrap().len(), 1, "{engine:?}");
        b.stop_replica().await;
        a.stop().await;
    }
}
