//! Durable dispatch (PROTOCOL §6, §8 "a queued event is never lost"): SMS accepted by an
//! `ami serve` process that dies by SIGKILL before handing them off are delivered by the
//! next process on the same database, each handed to the carrier exactly once.
//!
//! The real binary: the first process runs with `AMI_DISPATCH_ENABLED=false` (an API-only
//! replica), so the five accepted SMS are certainly still in the outbox when it is killed;
//! a second one, `--role api`, proves the flag and dies the same way; the third dispatches.
//! Before it starts, the jobs are leased for ten minutes to its replica name, as a
//! dispatching process killed mid-work leaves them: the third takes them back at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::{AmiProcess, Engine, Remote, drop_pg_database, engines, fresh_pg_database};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MESSAGES: usize = 5;

/// The SMS of this MID by id, as the agent sees them.
async fn outbound(api: &Remote, token: &str) -> HashMap<String, Value> {
    let (s, list) = api
        .get("/v1/agent/sms?direction=outbound&limit=200", token)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m.clone()))
        .collect()
}

/// Every audit event of the account with this action.
async fn events(api: &Remote, key: &str, action: &str) -> Vec<Value> {
    let (s, v) = api
        .get(&format!("/v1/events?action={action}&limit=1000"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

/// How many outbox jobs were ever claimed, by anybody.
async fn claimed(database_url: &str) -> i64 {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE attempts > 0")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn assert_killed(status: std::process::ExitStatus, log: &str) {
    assert!(
        !status.success() && status.code().is_none() && status.signal() == Some(9),
        "not a SIGKILL death: {status:?}\n{log}"
    );
}

#[tokio::test]
async fn queued_sms_survive_a_sigkill_and_are_delivered_once() {
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        // The sandbox network's record, shared by the three processes: what reached it.
        let record = dir.path().join("network.sandbox");
        let record_env = ("AMI_SANDBOX_RECORD_FILE", record.display().to_string());
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };

        // 1. An API-only process accepts five SMS, then dies without a chance to clean up.
        let mut first = AmiProcess::spawn(
            &database_url,
            &[
                ("AMI_DISPATCH_ENABLED", "false"),
                (record_env.0, &record_env.1),
            ],
            &[],
        );
        let api = Remote::new(&first.ready().await);
        let (_, key) = api.customer("Crash").await;
        let flow = api.provision(&key).await;
        api.set_limits(&key, &flow.mid, json!({"rate_per_second": 100}))
            .await;
        let mut ids = Vec::new();
        for i in 0..MESSAGES {
            let (s, sms) = api
                .post(
                    "/v1/agent/sms/send",
                    &flow.agent_token,
                    json!({"to": format!("+34611{i:02}5678"), "body": format!("crash {i}")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
            assert_eq!(sms["status"], "queued", "{sms}");
            ids.push(sms["id"].as_str().unwrap().to_owned());
        }
        // No dispatcher runs in this process: nothing was ever claimed.
        assert_eq!(claimed(&database_url).await, 0, "{engine:?}");
        let seen = outbound(&api, &flow.agent_token).await;
        for id in &ids {
            let m = &seen[id];
            assert!(
                m["status"] == "queued" && m["telco_ref"].is_null(),
                "{engine:?}: handed off by an API-only process: {m}"
            );
        }
        let log = first.stderr();
        assert!(log.contains("dispatcher disabled"), "{log}");
        assert_killed(first.kill_hard(), &log);

        // 2. `--role api` is the same switch, from the command line; crash again.
        let mut second = AmiProcess::spawn(
            &database_url,
            &[(record_env.0, &record_env.1)],
            &["--role", "api"],
        );
        let api = Remote::new(&second.ready().await);
        assert_eq!(claimed(&database_url).await, 0, "{engine:?}");
        let seen = outbound(&api, &flow.agent_token).await;
        assert_eq!(seen.len(), MESSAGES, "{engine:?}");
        assert!(
            seen.values()
                .all(|m| m["status"] == "queued" && m["telco_ref"].is_null()),
            "{engine:?}: {seen:?}"
        );
        let log = second.stderr();
        assert_killed(second.kill_hard(), &log);

        // 3. The jobs as a dispatching process of this replica name, killed while it held
        // them, leaves them: leased for ten minutes.
        let planted = {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&database_url).await.unwrap();
            sqlx::query(
                "UPDATE outbox SET lease_until = $1, lease_holder = 'replica-x', attempts = 1, fence = 1",
            )
            .bind(ami_core::time::now_ms() + 600_000)
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected()
        };
        assert_eq!(planted, MESSAGES as u64, "{engine:?}");

        // 4. Its successor delivers every one of them, without waiting for the lease.
        let mut third = AmiProcess::spawn(
            &database_url,
            &[
                ("AMI_REPLICA_ID", "replica-x"),
                (record_env.0, &record_env.1),
            ],
            &[],
        );
        let api = Remote::new(&third.ready().await);
        let ready = Instant::now();
        let mut first_handed = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        let seen = loop {
            let seen = outbound(&api, &flow.agent_token).await;
            if first_handed.is_none() && seen.values().any(|m| m["status"] != "queued") {
                first_handed = Some(ready.elapsed());
            }
            if seen.values().all(|m| m["status"] == "delivered") {
                break seen;
            }
            assert!(
                Instant::now() < deadline,
                "{engine:?}: not all delivered: {seen:?}\n{}",
                third.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!(
            "{engine:?}: first held job reported sent {:?} after the successor was ready",
            first_handed.unwrap_or_default()
        );
        // None lost, none invented.
        assert_eq!(
            seen.keys().cloned().collect::<HashSet<_>>(),
            ids.iter().cloned().collect::<HashSet<_>>(),
            "{engine:?}"
        );
        let mut refs = HashSet::new();
        for id in &ids {
            let (s, m) = api
                .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
                .await;
            assert_eq!(s, StatusCode::OK, "{m}");
            assert_eq!(m["status"], "delivered", "{m}");
            assert!(
                m["sent_at"].is_string() && m["delivered_at"].is_string(),
                "{m}"
            );
            assert_eq!(m["retry_count"], 0, "{m}");
            let telco_ref = m["telco_ref"].as_str().expect("telco_ref after hand-off");
            assert!(refs.insert(telco_ref.to_owned()), "telco_ref reused: {m}");
        }
        // Exactly one hand-off per message, by the network's own record: so no second pair of
        // reports is on its way, which the forward-only status machine would audit as ignored.
        let reached = ami_carrier::submission_counts(&record).unwrap();
        assert_eq!(
            reached,
            ids.iter().map(|id| (id.clone(), 1)).collect(),
            "{engine:?}"
        );
        for action in ["sms_queued", "sms_sent", "sms_delivered"] {
            let evs = events(&api, &key, action).await;
            let mut per_msg: HashMap<String, usize> = HashMap::new();
            for e in &evs {
                *per_msg
                    .entry(e["entity_id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            assert_eq!(evs.len(), MESSAGES, "{engine:?} {action}: {evs:?}");
            for id in &ids {
                assert_eq!(per_msg.get(id), Some(&1), "{engine:?} {action} of {id}");
            }
        }
        for action in ["sms_status_ignored", "sms_failed", "sms_cancelled"] {
            let evs = events(&api, &key, action).await;
            assert!(evs.is_empty(), "{engine:?} {action}: {evs:?}");
        }
        let (status, log) = third.terminate().await;
        assert!(status.success(), "{status:?}\n{log}");
        if engine == Engine::Postgres {
            drop_pg_database(&database_url).await;
        }
    }
}

/// A carrier that holds every SMS submission until the test lets it go: the window between
/// "the dispatcher has called the carrier" and "the carrier has answered".
struct Gated {
    entered: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
    submitted: std::sync::Mutex<Vec<String>>,
}

impl ami_carrier::Carrier for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }

    fn submit_sms(
        &self,
        sms: ami_carrier::OutboundSms,
    ) -> ami_carrier::BoxFuture<'_, Result<String, ami_carrier::SubmitError>> {
        Box::pin(async move {
            self.submitted.lock().unwrap().push(sms.id.clone());
            self.entered.notify_one();
            self.release.notified().await;
            Ok(format!("gated_{}", sms.id))
        })
    }

    fn place_call(
        &self,
        _: ami_carrier::OutboundCall,
    ) -> ami_carrier::BoxFuture<'_, Result<String, ami_carrier::SubmitError>> {
        Box::pin(async { Err(ami_carrier::SubmitError::Rejected("no calls".into())) })
    }

    fn hang_up(
        &self,
        _: String,
    ) -> ami_carrier::BoxFuture<'_, Result<(), ami_carrier::SubmitError>> {
        Box::pin(async { Ok(()) })
    }
}

/// §7 cancels "queued SMS not yet handed to the carrier"; one the carrier is taking at that
/// very moment is handed, not cancelled: it is not refunded (§6: the budget is never
/// overshot) and its record tells the truth (a telco_ref, not `cancelled`).
#[tokio::test]
async fn a_kill_switch_cancels_the_queue_but_not_an_sms_the_carrier_is_taking() {
    for engine in engines() {
        // No dispatcher of its own: the test runs the dispatch step with the gated carrier.
        let server =
            common::TestServer::start_with(engine, &[("AMI_DISPATCH_ENABLED", "false")]).await;
        let (_, key) = server.customer("Race").await;
        let flow = server.provision(&key).await;
        // Room for exactly two SMS.
        server
            .set_limits(
                &key,
                &flow.mid,
                json!({"monthly_budget_eur": 0.14, "rate_per_second": 100}),
            )
            .await;
        let send = |body: &'static str| {
            let server = &server;
            let token = flow.agent_token.clone();
            async move {
                server
                    .post(
                        "/v1/agent/sms/send",
                        &token,
                        json!({"to": "+34611005678", "body": body}),
                    )
                    .await
            }
        };
        let mut ids = Vec::new();
        for body in ["first", "second"] {
            let (s, sms) = send(body).await;
            assert_eq!(s, StatusCode::CREATED, "{sms}");
            ids.push(sms["id"].as_str().unwrap().to_owned());
        }

        let gated = std::sync::Arc::new(Gated {
            entered: Default::default(),
            release: Default::default(),
            submitted: Default::default(),
        });
        let entered = gated.entered.clone();
        // One job claimed (leased) and inside the carrier; the other still waits in the queue.
        let worker = {
            let (services, gated) = (server.running.services.clone(), gated.clone());
            tokio::spawn(async move { services.run_due_jobs(gated.as_ref(), 1).await })
        };
        tokio::time::timeout(Duration::from_secs(10), entered.notified())
            .await
            .expect("the dispatcher reached the carrier");
        let in_flight = gated.submitted.lock().unwrap()[0].clone();
        let waiting = ids.iter().find(|id| **id != in_flight).unwrap().clone();

        // The operator stops the MID while the carrier holds one message.
        let (s, ks) = server
            .post(
                "/v1/admin/kill-switch",
                common::ADMIN_KEY,
                json!({"scope": "mid", "target_id": flow.mid, "reason": "stop"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{ks}");
        assert_eq!(ks["cancelled_sms"], 1, "{engine:?}: {ks}");
        gated.release.notify_one();
        assert_eq!(worker.await.unwrap().unwrap(), 1);
        // Nothing else is left to hand off: the cancelled one's job is gone.
        assert_eq!(
            server
                .running
                .services
                .run_due_jobs(gated.as_ref(), 64)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            gated.submitted.lock().unwrap().as_slice(),
            std::slice::from_ref(&in_flight)
        );

        let (_, m) = server
            .get(&format!("/v1/agent/sms/{in_flight}"), &flow.agent_token)
            .await;
        assert_eq!(
            m["telco_ref"],
            format!("gated_{in_flight}"),
            "{engine:?} {m}"
        );
        assert_ne!(
            m["status"], "cancelled",
            "{engine:?}: the carrier has it, yet it is recorded cancelled: {m}"
        );
        let (_, m) = server
            .get(&format!("/v1/agent/sms/{waiting}"), &flow.agent_token)
            .await;
        assert_eq!(
            (m["status"].as_str(), m["telco_ref"].as_str()),
            (Some("cancelled"), None),
            "{engine:?} {m}"
        );
        let (_, usage) = server
            .get(&format!("/v1/mobile-identities/{}/usage", flow.mid), &key)
            .await;
        assert_eq!(
            usage["usage"]["spend_this_month_eur"],
            json!(0.07),
            "{engine:?}: only the cancelled one is refunded: {usage}"
        );

        // Released: room for one more, the one the cancellation gave back, and no more.
        let (s, _) = server
            .post(
                &format!(
                    "/v1/admin/kill-switch/{}/release",
                    ks["id"].as_str().unwrap()
                ),
                common::ADMIN_KEY,
                json!({"reason": "go"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = send("third").await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?}: {v}");
        let (s, v) = send("fourth").await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("monthly_budget")),
            "{engine:?}: budget overshot: {v}"
        );
        server.stop().await;
    }
}

/// A dispatching process leases its own sends at acceptance and runs them without a claim:
/// nobody else may take them meanwhile, and on a clean stop their leases are given back, so
/// the next dispatcher takes them at once instead of after the lease.
#[tokio::test]
async fn own_sends_are_leased_to_their_dispatcher_and_given_back_on_a_clean_stop() {
    for engine in engines() {
        // The dispatch steps are run by the test, on the services of a process that leases.
        let server =
            common::TestServer::start_with(engine, &[("AMI_DISPATCH_ENABLED", "false")]).await;
        let services = server.running.services.clone();
        services.dispatch_own_sends();
        let (_, key) = server.customer("Own").await;
        let flow = server.provision(&key).await;
        server
            .set_limits(&key, &flow.mid, json!({"rate_per_second": 100}))
            .await;
        let mut ids = Vec::new();
        for to in ["+34611005678", "+34611005679"] {
            let (s, sms) = server
                .post(
                    "/v1/agent/sms/send",
                    &flow.agent_token,
                    json!({"to": to, "body": "own"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
            ids.push(sms["id"].as_str().unwrap().to_owned());
        }
        let carrier = &server.running.carrier;
        // Leased: a claim finds nothing.
        assert_eq!(services.run_due_jobs(carrier, 64).await.unwrap(), 0);
        // The first goes to the carrier from memory; the second is left when the process stops.
        assert_eq!(services.run_own_jobs(carrier, 1).await.unwrap(), 1);
        services.release_own_jobs().await.unwrap();
        assert_eq!(services.run_own_jobs(carrier, 64).await.unwrap(), 0);
        // Given back: the next claim takes it, and each was handed to the carrier once.
        assert_eq!(services.run_due_jobs(carrier, 64).await.unwrap(), 1);
        let mut submitted: Vec<String> = carrier
            .submissions()
            .into_iter()
            .filter_map(|s| match s {
                ami_carrier::Submission::Sms { msg_id, .. } => Some(msg_id),
                _ => None,
            })
            .collect();
        submitted.sort();
        ids.sort();
        assert_eq!(submitted, ids, "{engine:?}");
        // Not leased any more: what it accepts now waits for a claim.
        let (s, sms) = server
            .post(
                "/v1/agent/sms/send",
                &flow.agent_token,
                json!({"to": "+34611005680", "body": "after"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {sms}");
        assert_eq!(services.run_due_jobs(carrier, 64).await.unwrap(), 1);
        server.stop().await;
    }
}
