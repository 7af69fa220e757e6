//! The SMPP carrier under SIGKILL: while an agent sends steadily, the `ami serve` process is
//! killed at random moments (mid-window, between a `submit_sm_resp` and the hand-off's
//! commit, while receipts are in flight) and started again on the same database. At the end
//! every accepted message is `delivered` or honestly `unknown`, none waits forever, and the
//! SMSC received each at most once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_smsc_sim::{Faults, ResponseDelay, SimConfig, Smsc};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use common::{AmiProcess, Remote};

const KILLS: usize = 4;

fn spawn(database_url: &str, smpp: &str) -> AmiProcess {
    AmiProcess::spawn(
        database_url,
        &[("AMI_CARRIER", "smpp"), ("AMI_SMPP", smpp)],
        &[],
    )
}

#[tokio::test]
async fn killed_mid_window_nothing_is_lost_or_sent_twice() {
    let smsc = Smsc::start(SimConfig::with_credentials("ami", "secret"))
        .await
        .unwrap();
    smsc.set_faults(Faults {
        response_delay: Some(ResponseDelay::Random(
            Duration::from_millis(1)..Duration::from_millis(60),
        )),
        ..Faults::default()
    });
    let smpp = format!(
        r#"[{{name = "sim", host = "127.0.0.1", port = {}, system_id = "ami", password = "secret", window = 8, reconnect_min_ms = 50, reconnect_max_ms = 200, response_timeout_ms = 2000}}]"#,
        smsc.addr().port()
    );
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/ami.db", dir.path().display());
    let mut first = spawn(&database_url, &smpp);
    let api = Remote::new(&first.ready().await);
    let mut process = Some(first);
    let (_, key) = api.customer("SMPP crash").await;
    let flow = api.provision(&key).await;
    api.set_limits(
        &key,
        &flow.mid,
        json!({"rate_per_second": 1000, "sms_per_hour": 1_000_000, "sms_per_day": 1_000_000,
               "monthly_budget_eur": 1_000_000}),
    )
    .await;

    // (message id, destination) of every accepted send.
    let accepted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut next = 0_usize;
    for round in 0..=KILLS {
        let base = if round == 0 {
            api.base.clone()
        } else {
            let mut next = spawn(&database_url, &smpp);
            let base = next.ready().await;
            process = Some(next);
            base
        };
        let api = Remote::new(&base);
        let until = std::time::Instant::now()
            + Duration::from_millis(rand::thread_rng().gen_range(300..1200));
        while std::time::Instant::now() < until {
            let to = format!("+3461{next:07}");
            next += 1;
            let (s, v) = api
                .post(
                    "/v1/agent/sms/send",
                    &flow.agent_token,
                    json!({"to": to, "body": "crash"}),
                )
                .await;
            if s == StatusCode::CREATED {
                accepted
                    .lock()
                    .unwrap()
                    .push((v["id"].as_str().unwrap().to_owned(), to));
            }
        }
        if round < KILLS {
            process.take().unwrap().kill_hard();
        }
    }

    let mut process = process.unwrap();
    let api = Remote::new(&process.ready().await);
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > 20, "too few sends to mean anything");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut statuses: HashMap<String, String> = HashMap::new();
    loop {
        statuses.clear();
        for (id, _) in &accepted {
            let (s, v) = api
                .get(&format!("/v1/agent/sms/{id}"), &flow.agent_token)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            statuses.insert(id.clone(), v["status"].as_str().unwrap().to_owned());
        }
        if statuses
            .values()
            .all(|s| s == "delivered" || s == "unknown")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: {:?}",
            statuses
                .values()
                .fold(HashMap::<&str, usize>::new(), |mut m, s| {
                    *m.entry(s.as_str()).or_default() += 1;
                    m
                })
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut received: HashMap<String, usize> = HashMap::new();
    for s in smsc.submits() {
        *received
            .entry(format!("+{}", s.destination_addr))
            .or_default() += 1;
    }
    for (id, to) in &accepted {
        let times = received.get(to).copied().unwrap_or(0);
        assert!(times <= 1, "{id} to {to} reached the SMSC {times} times");
        if statuses[id] == "delivered" {
            assert_eq!(times, 1, "{id} delivered without reaching the SMSC");
        }
    }
    let unknown = statuses.values().filter(|s| *s == "unknown").count();
    println!(
        "{} accepted, {} delivered, {unknown} unknown, {KILLS} kills",
        accepted.len(),
        accepted.len() - unknown
    );
    process.kill_hard();
    smsc.shutdown().await;
}
