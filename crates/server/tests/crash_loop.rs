//! Exactly once under crashes: a steady load of SMS sends while the dispatching server is
//! killed (SIGKILL) at random moments and started again. At the end every accepted SMS
//! reached the sandbox network exactly once, by the network's own record (a file that
//! survives the restarts), and every one was delivered: none lost, none doubled.
//!
//! SQLite runs one server, as it must (the file has one owner). PostgreSQL runs two
//! replicas under their own names, sharing the database and the sandbox network's record;
//! one or the other is killed each time. The lease is ten minutes, so nothing here can be
//! recovered by waiting for a lease to run out: a restarted process takes back at once what
//! its predecessor held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use common::{AmiProcess, Engine, Remote, drop_pg_database, fresh_pg_database};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

const KILLS: usize = 20;
const SENDERS: usize = 4;
const LEASE_MS: &str = "600000";

/// One `ami serve` under a fixed replica name, started again after each kill.
struct Replica {
    name: &'static str,
    env: Vec<(String, String)>,
    database_url: String,
    process: Option<AmiProcess>,
    base: Arc<RwLock<String>>,
}

impl Replica {
    async fn start(name: &'static str, database_url: &str, record: &Path) -> Replica {
        let env = vec![
            ("AMI_REPLICA_ID".to_owned(), name.to_owned()),
            ("AMI_DISPATCH_LEASE_MS".to_owned(), LEASE_MS.to_owned()),
            (
                "AMI_SANDBOX_RECORD_FILE".to_owned(),
                record.display().to_string(),
            ),
        ];
        let mut replica = Replica {
            name,
            env,
            database_url: database_url.to_owned(),
            process: None,
            base: Arc::default(),
        };
        replica.spawn().await;
        replica
    }

    async fn spawn(&mut self) {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut process = AmiProcess::spawn(&self.database_url, &env, &[]);
        *self.base.write().unwrap() = process.ready().await;
        self.process = Some(process);
    }

    async fn crash_and_restart(&mut self) {
        let process = self.process.take().unwrap();
        let log = process.stderr();
        let status = process.kill_hard();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{}: {status:?}\n{log}",
            self.name
        );
        self.spawn().await;
    }

    fn remote(&self) -> Remote {
        Remote::new(&self.base.read().unwrap())
    }
}

/// Agents sending SMS to distinct numbers as fast as the servers answer, spread over the
/// replicas; the ids of every `201` are kept. Requests that meet a dead server fail and are
/// not counted as accepted.
fn start_load(
    bases: Vec<Arc<RwLock<String>>>,
    token: String,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(0));
    (0..SENDERS)
        .map(|sender| {
            let (bases, token, accepted, stop, next) = (
                bases.clone(),
                token.clone(),
                accepted.clone(),
                stop.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    // Destinations whose last four digits are not the sandbox's magic ones.
                    let n = loop {
                        let n = next.fetch_add(1, Ordering::SeqCst) + 10;
                        if !(1..=4).contains(&(n % 10_000)) {
                            break n;
                        }
                    };
                    let base = bases[(sender + n as usize) % bases.len()]
                        .read()
                        .unwrap()
                        .clone();
                    let sent = http
                        .post(format!("{base}/v1/agent/sms/send"))
                        .bearer_auth(&token)
                        .json(&json!({"to": format!("+3466{n:07}"), "body": "crash loop"}))
                        .send()
                        .await;
                    match sent {
                        Ok(res) if res.status() == StatusCode::CREATED => {
                            let v: Value = res.json().await.unwrap_or_default();
                            if let Some(id) = v["id"].as_str() {
                                accepted.lock().unwrap().push(id.to_owned());
                            }
                        }
                        // The MID's rate (1000 a second) caught up with the senders.
                        Ok(res) if res.status() == StatusCode::TOO_MANY_REQUESTS => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Ok(res) => {
                            let status = res.status();
                            assert!(
                                status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT,
                                "a send was refused: {status} {}",
                                res.text().await.unwrap_or_default()
                            );
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect()
}

/// Every outbound SMS of the agent, by id, paged through.
async fn all_outbound(api: &Remote, token: &str) -> HashMap<String, Value> {
    let mut all = HashMap::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = api
            .get(
                &format!("/v1/agent/sms?direction=outbound&limit=200&cursor={cursor}"),
                token,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for m in page["messages"].as_array().unwrap() {
            all.insert(m["id"].as_str().unwrap().to_owned(), m.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return all,
        }
    }
}

async fn crash_loop(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("network.sandbox");
    let database_url = match engine {
        Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
        Engine::Postgres => fresh_pg_database().await,
    };
    let mut replicas = vec![Replica::start("replica-a", &database_url, &record).await];
    if engine == Engine::Postgres {
        replicas.push(Replica::start("replica-b", &database_url, &record).await);
    }
    let api = replicas[0].remote();
    let (_, key) = api.customer("Crash loop").await;
    let flow = api.provision(&key).await;
    api.set_limits(
        &key,
        &flow.mid,
        json!({"rate_per_second": 1000, "sms_per_hour": 1_000_000,
                   "sms_per_day": 1_000_000, "monthly_budget_eur": 1_000_000}),
    )
    .await;

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(
        replicas.iter().map(|r| r.base.clone()).collect(),
        flow.agent_token.clone(),
        accepted.clone(),
        stop.clone(),
    );
    let seed: u64 = rand::thread_rng().r#gen();
    println!("{engine:?}: kill moments seeded with {seed}");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..700))).await;
        let victim = kill % replicas.len();
        replicas[victim].crash_and_restart().await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= KILLS,
        "{engine:?}: too little load to prove anything: {}",
        accepted.len()
    );

    // Everything accepted is delivered, by the servers of the last restart.
    let api = replicas[0].remote();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let stored = all_outbound(&api, &flow.agent_token).await;
        let pending: Vec<&Value> = stored
            .values()
            .filter(|m| m["status"] != "delivered")
            .collect();
        if pending.is_empty() {
            break stored;
        }
        assert!(
            Instant::now() < deadline,
            "{engine:?}: {} of {} not delivered, e.g. {}",
            pending.len(),
            stored.len(),
            pending[0]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stored_ids: HashSet<&String> = stored.keys().collect();
    for id in &accepted {
        assert!(stored_ids.contains(id), "{engine:?}: accepted {id} is lost");
    }
    // Each stored one (accepted, or answered while its server died) reached the network once,
    // and the network got nothing else.
    let seen = ami_carrier::submission_counts(&record).unwrap();
    for id in &stored_ids {
        assert_eq!(
            seen.get(*id),
            Some(&1),
            "{engine:?}: {id} reached the network {:?} times",
            seen.get(*id)
        );
    }
    let strangers: Vec<&String> = seen.keys().filter(|id| !stored_ids.contains(id)).collect();
    assert!(strangers.is_empty(), "{engine:?}: {strangers:?}");
    println!(
        "{engine:?}: {} accepted, {} stored, {KILLS} kills, each stored SMS submitted once",
        accepted.len(),
        stored.len()
    );

    for replica in replicas {
        let (status, log) = replica.process.unwrap().terminate().await;
        assert!(status.success(), "{status:?}\n{log}");
    }
    if engine == Engine::Postgres {
        drop_pg_database(&database_url).await;
    }
}

#[tokio::test]
async fn a_server_killed_twenty_times_under_load_submits_every_accepted_sms_once() {
    crash_loop(Engine::Sqlite).await;
}

#[tokio::test]
async fn two_replicas_killed_twenty_times_under_load_submit_every_accepted_sms_once() {
    if common::engines().contains(&Engine::Postgres) {
        crash_loop(Engine::Postgres).await;
    } else {
        common::require_postgres("two replicas under crashes");
    }
}
