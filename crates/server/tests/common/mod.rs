//! The test harness: a real server on 127.0.0.1:0 over SQLite, and over PostgreSQL whenever
//! `AMI_TEST_DATABASE_URL` is set (a fresh database per server).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod kyc;
pub mod peers;
pub mod receiver;
pub mod sipp;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use ami_server::app::{self, Running};
use ami_server::config::Config;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when the environment names a server. Under `CI=true` a
/// missing PostgreSQL fails the test instead of leaving half of it unrun.
pub fn engines() -> Vec<Engine> {
    let mut e = vec![Engine::Sqlite];
    if std::env::var("AMI_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        e.push(Engine::Postgres);
    } else {
        require_postgres("the PostgreSQL half of this test");
    }
    e
}

/// For a test that exists only on PostgreSQL: under `CI=true` its absence is a failure;
/// elsewhere it is said, not hidden.
pub fn require_postgres(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} needs PostgreSQL: set AMI_TEST_DATABASE_URL (CI must)"
    );
    println!("{what}: skipped, AMI_TEST_DATABASE_URL is not set");
}

/// A clock the test moves by hand.
pub struct TestClock(pub AtomicI64);

impl ami_services::Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub fn advance_days(&self, days: i64) {
        self.0.fetch_add(days * 86_400_000, Ordering::SeqCst);
    }
}

pub struct TestServer {
    pub engine: Engine,
    pub base: String,
    pub http: reqwest::Client,
    pub running: Running,
    pub database_url: String,
    pub clock: Arc<TestClock>,
    _dir: tempfile::TempDir,
}

/// A fresh, empty PostgreSQL database named after the base one.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let base = std::env::var("AMI_TEST_DATABASE_URL").expect("AMI_TEST_DATABASE_URL");
    let (server, base_db) = base
        .rsplit_once('/')
        .expect("database url with a database name");
    let base_db = base_db.split('?').next().unwrap_or(base_db);
    let name = format!(
        "{base_db}_t_{}",
        ami_core::id::new_id("x").trim_start_matches("x_")
    );
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to AMI_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create database");
    format!("{server}/{name}")
}

/// Removes a database made by `fresh_pg_database`; best effort.
pub async fn drop_pg_database(url: &str) {
    use sqlx::Connection;
    let (Ok(base), Some((_, name))) =
        (std::env::var("AMI_TEST_DATABASE_URL"), url.rsplit_once('/'))
    else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

/// The secrets key of the PostgreSQL test servers (a SQLite one makes its own key file next
/// to its database, as a first start does): PostgreSQL has no place of its own for one.
pub const PG_SECRETS_KEY: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";

/// Adds [`PG_SECRETS_KEY`] to a PostgreSQL server's environment, unless it names a key.
pub fn with_secrets_key(env: &mut HashMap<String, String>) {
    let postgres = env
        .get("DATABASE_URL")
        .is_some_and(|u| u.starts_with("postgres"));
    if postgres && !env.contains_key("AMI_SECRETS_KEY") && !env.contains_key("AMI_SECRETS_KEY_FILE")
    {
        env.insert("AMI_SECRETS_KEY".into(), PG_SECRETS_KEY.into());
    }
}

impl TestServer {
    pub async fn start(engine: Engine) -> TestServer {
        Self::start_with(engine, &[]).await
    }

    pub async fn start_with(engine: Engine, extra_env: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("AMI_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("DATABASE_URL".into(), database_url.clone());
        env.insert("AMI_ADMIN_KEY".into(), ADMIN_KEY.into());
        env.insert(
            "AMI_SANDBOX_POOL".into(),
            r#"[{country = "ES", from = "+34600000000", count = 40}, {country = "CO", from = "+573000000000", count = 10}]"#.into(),
        );
        for (k, v) in extra_env {
            env.insert((*k).into(), (*v).into());
        }
        with_secrets_key(&mut env);
        let config = Config::load_from(&env).expect("test configuration");
        let clock = Arc::new(TestClock(AtomicI64::new(ami_core::time::now_ms())));
        let running = app::start_with_clock(config, clock.clone())
            .await
            .expect("server starts");
        let base = format!("http://{}", running.addr);
        TestServer {
            engine,
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            running,
            database_url,
            clock,
            _dir: dir,
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Waits until the sandbox network has nothing more to report: every delivery report and
    /// call state it scheduled is committed.
    pub async fn network_quiet(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.running.carrier.is_quiet() {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}: the sandbox network kept reporting",
                self.engine
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits until this server's webhook worker has claimed what was due when it was called:
    /// three more claims, as for [`TestServer::dispatcher_caught_up`].
    pub async fn webhook_worker_caught_up(&self) {
        let services = &self.running.services;
        let target = services.delivery_claims() + 3;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while services.delivery_claims() < target {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}: the webhook worker stopped claiming",
                self.engine
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits until no webhook delivery is pending: every attempt that was going to be made
    /// has been made and recorded.
    pub async fn deliveries_settled(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let mut conn = self.running.services.store.reader().await.unwrap();
            let pending: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'",
            )
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            if pending == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}: {pending} deliveries still pending",
                self.engine
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits until this server's dispatcher has claimed and run whatever was due when it was
    /// called (after a clock move, say): three more claims, since the first may have begun
    /// before the call and the second's jobs run after it is counted.
    pub async fn dispatcher_caught_up(&self) {
        let services = &self.running.services;
        let target = services.job_claims() + 3;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while services.job_claims() < target {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}: the dispatcher stopped claiming",
                self.engine
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The HTTP client of this server; the request helpers below go through it.
    pub fn remote(&self) -> Remote {
        Remote {
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    /// Sends a request; `body` None means no body at all.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.remote().call(method, path, credential, body).await
    }

    pub async fn get(&self, path: &str, credential: &str) -> (StatusCode, Value) {
        self.remote().get(path, credential).await
    }

    pub async fn post(&self, path: &str, credential: &str, body: Value) -> (StatusCode, Value) {
        self.remote().post(path, credential, body).await
    }

    /// A new customer account; returns (account id, api key).
    pub async fn customer(&self, name: &str) -> (String, String) {
        self.remote().customer(name).await
    }

    /// Runs the contracting steps up to an accepted offer with customer data; returns
    /// (sim request, offer, customer).
    pub async fn up_to_customer_data(&self, key: &str) -> (String, String, String) {
        self.remote().up_to_customer_data(key).await
    }

    /// Runs the six contracting steps; returns every id and the agent token.
    pub async fn provision(&self, key: &str) -> Flow {
        self.remote().provision(key).await
    }

    /// Changes a MID's limits with its customer's key; the change must be accepted.
    pub async fn set_limits(&self, key: &str, mid: &str, limits: Value) {
        self.remote().set_limits(key, mid, limits).await
    }

    /// Number of audit events in the whole store (operator view, paged through).
    pub async fn event_count(&self) -> usize {
        let mut conn = self.running.services.store.reader().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        n as usize
    }

    pub async fn stop(self) {
        self.running.shutdown.cancel();
        let _ = self.running.task.await;
        self.running.services.store.close().await;
        if self.engine == Engine::Postgres {
            drop_pg_database(&self.database_url).await;
        }
    }

    /// A second replica on an existing database (another server's `database_url`): its own
    /// listener, clock, dispatcher and sandbox carrier, the same store. Stop it with
    /// [`TestServer::stop_replica`], which leaves the database to its owner.
    pub async fn start_on(
        engine: Engine,
        database_url: &str,
        extra_env: &[(&str, &str)],
    ) -> TestServer {
        let clock = Arc::new(TestClock(AtomicI64::new(ami_core::time::now_ms())));
        Self::start_on_clock(engine, database_url, extra_env, clock).await
    }

    /// [`TestServer::start_on`] beside `owner`, on its clock: replicas of one deployment
    /// share the time, so what one records (a rate limit's next slot, say) is as recent for
    /// the other.
    pub async fn start_beside(owner: &TestServer, extra_env: &[(&str, &str)]) -> TestServer {
        Self::start_on_clock(
            owner.engine,
            &owner.database_url,
            extra_env,
            owner.clock.clone(),
        )
        .await
    }

    async fn start_on_clock(
        engine: Engine,
        database_url: &str,
        extra_env: &[(&str, &str)],
        clock: Arc<TestClock>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("AMI_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("DATABASE_URL".into(), database_url.to_owned());
        env.insert("AMI_ADMIN_KEY".into(), ADMIN_KEY.into());
        env.insert(
            "AMI_SANDBOX_POOL".into(),
            r#"[{country = "ES", from = "+34600000000", count = 40}, {country = "CO", from = "+573000000000", count = 10}]"#.into(),
        );
        for (k, v) in extra_env {
            env.insert((*k).into(), (*v).into());
        }
        with_secrets_key(&mut env);
        let config = Config::load_from(&env).expect("test configuration");
        let running = app::start_with_clock(config, clock.clone())
            .await
            .expect("replica starts");
        TestServer {
            engine,
            base: format!("http://{}", running.addr),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            running,
            database_url: database_url.to_owned(),
            clock,
            _dir: dir,
        }
    }

    /// Stops a server started with [`TestServer::start_on`]; the database stays.
    pub async fn stop_replica(self) {
        self.running.shutdown.cancel();
        let _ = self.running.task.await;
        self.running.services.store.close().await;
    }
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub sim_request: String,
    pub offer: String,
    pub customer: String,
    pub contract: String,
    pub signature_url: String,
    pub mid: String,
    pub agent_token: String,
    pub phone_number: String,
    /// An SMS the agent sent, when a test needs one.
    pub sms: Option<String>,
    /// A call the agent placed, when a test needs one.
    pub call: Option<String>,
    /// A webhook of the MID and one of its deliveries, when a test needs them.
    pub webhook: Option<String>,
    pub delivery: Option<String>,
    /// An account-scoped webhook and one of its deliveries, when a test needs them.
    pub account_webhook: Option<String>,
    pub account_delivery: Option<String>,
}

pub fn customer_data() -> Value {
    json!({"customer": {
        "legal_name": "Acme Robotics SL",
        "tax_id": "B12345678",
        "billing_email": "billing@acme.example",
        "address": "Calle Mayor 1, Madrid",
        "representative_name": "Ana Garcia",
        "representative_phone": "+34 600 111 222"
    }})
}

/// Sends one SMS to a Spanish number with the agent token; returns its id.
pub async fn send_sms(server: &TestServer, agent_token: &str) -> String {
    let (s, v) = server
        .post(
            "/v1/agent/sms/send",
            agent_token,
            json!({"to": "+34600123456", "body": "tenancy"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The real `ami serve` binary as a child process, with everything it writes on stderr.
pub struct AmiProcess {
    pub child: std::process::Child,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl AmiProcess {
    /// Starts `ami serve <args>` on a free port of 127.0.0.1, with only the environment given
    /// (plus `DATABASE_URL`, `AMI_ADMIN_KEY`, a small sandbox pool, no colours, `AMI_LOG=info`
    /// unless `env` says otherwise).
    pub fn spawn(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> AmiProcess {
        use std::io::{BufRead, BufReader};
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ami"));
        cmd.arg("serve")
            .args(args)
            .env_clear()
            .env("AMI_LISTEN", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("AMI_ADMIN_KEY", ADMIN_KEY)
            .env(
                "AMI_SANDBOX_POOL",
                r#"[{country = "ES", from = "+34600000000", count = 40}]"#,
            )
            .env("NO_COLOR", "1")
            .env("AMI_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut all: HashMap<String, String> = HashMap::new();
        all.insert("DATABASE_URL".into(), database_url.into());
        for (k, v) in env {
            all.insert((*k).into(), (*v).into());
        }
        with_secrets_key(&mut all);
        all.remove("DATABASE_URL");
        cmd.envs(all);
        let mut child = cmd.spawn().expect("spawn ami serve");
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        AmiProcess { child, stderr }
    }

    /// Everything written on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the "ami listening addr=..." line, then for `/v1/health`; the base URL.
    pub async fn ready(&mut self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let addr = loop {
            let log = self.stderr();
            if let Some(line) = log.lines().find(|l| l.contains("ami listening")) {
                // A text line says `addr=...`; a JSON one (`log_format = "json"`) has the field.
                if let Ok(json) = serde_json::from_str::<Value>(line) {
                    break json["addr"].as_str().expect("addr in the line").to_owned();
                }
                let rest = line.split("addr=").nth(1).expect("addr= in the line");
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ami exited with {status} before listening:\n{log}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ami never listened:\n{log}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let base = format!("http://{addr}");
        loop {
            if let Ok(res) = reqwest::get(format!("{base}/v1/health")).await
                && res.status() == StatusCode::OK
            {
                return base;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ami never became healthy:\n{}",
                self.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash or the OOM killer would: no shutdown code runs.
    pub fn kill_hard(mut self) -> std::process::ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    /// SIGTERM, as an operator or a supervisor would; waits for the exit.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread collect the last lines.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                return (status, self.stderr());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ami did not stop:\n{}",
                self.stderr()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A test that fails (panics) still ends its server: no `ami serve` outlives the run.
impl Drop for AmiProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client of a server reached only over HTTP (a child process).
#[derive(Clone)]
pub struct Remote {
    pub base: String,
    pub http: reqwest::Client,
}

impl Remote {
    pub fn new(base: &str) -> Remote {
        Remote {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = credential {
            req = req.bearer_auth(c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str, credential: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(credential), None).await
    }

    pub async fn post(&self, path: &str, credential: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(credential), Some(body))
            .await
    }

    /// A new customer account through the admin API; returns (account id, api key).
    pub async fn customer(&self, name: &str) -> (String, String) {
        let (s, v) = self
            .post("/v1/admin/customers", ADMIN_KEY, json!({"name": name}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Changes a MID's limits with its customer's key; the change must be accepted.
    pub async fn set_limits(&self, key: &str, mid: &str, limits: Value) {
        let (s, v) = self
            .post(&format!("/v1/mobile-identities/{mid}/limits"), key, limits)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// Runs the contracting steps up to an accepted offer with customer data; returns
    /// (sim request, offer, customer).
    pub async fn up_to_customer_data(&self, key: &str) -> (String, String, String) {
        let (s, r) = self
            .post("/v1/sim-requests", key, json!({"country": "ES"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{r}");
        let sim_request = r["sim_request"]["id"].as_str().unwrap().to_owned();
        let offer = r["offer"]["id"].as_str().unwrap().to_owned();
        let (s, v) = self
            .post(&format!("/v1/offers/{offer}/accept"), key, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = self
            .post(
                &format!("/v1/sim-requests/{sim_request}/customer-data"),
                key,
                customer_data(),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let customer = v["customer"]["id"].as_str().unwrap().to_owned();
        (sim_request, offer, customer)
    }

    /// Runs the six contracting steps over HTTP; returns every id and the agent token.
    pub async fn provision(&self, key: &str) -> Flow {
        let (sim_request, offer, customer) = self.up_to_customer_data(key).await;
        let (s, v) = self
            .post(
                "/v1/contracts",
                key,
                json!({"offer_id": offer, "customer_id": customer}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let contract = v["id"].as_str().unwrap().to_owned();
        let signature_url = v["signature_url"].as_str().unwrap().to_owned();
        let (s, v) = self
            .post(
                &format!("/v1/contracts/{contract}/mock-sign"),
                key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = self
            .post(
                "/v1/mobile-identities/activate",
                key,
                json!({"contract_id": contract}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        Flow {
            sim_request,
            offer,
            customer,
            contract,
            signature_url,
            mid: v["id"].as_str().unwrap().to_owned(),
            agent_token: v["agent_token"].as_str().unwrap().to_owned(),
            phone_number: v["phone_number"].as_str().unwrap().to_owned(),
            sms: None,
            call: None,
            webhook: None,
            delivery: None,
            account_webhook: None,
            account_delivery: None,
        }
    }
}

/// The allowlist the webhook tests run with: loopback receivers are their only receivers.
pub const LOOPBACK: (&str, &str) = ("AMI_WEBHOOK_ALLOW_SUBNETS", "127.0.0.0/8");

/// A registered webhook: its id and its secret (shown once).
#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub secret: String,
}

/// Registers a webhook at `collection` (`/v1/mobile-identities/{mid}/webhooks` or
/// `/v1/account/webhooks`).
pub async fn register_webhook(
    api: &Remote,
    key: &str,
    collection: &str,
    url: &str,
    events: Value,
) -> Hook {
    let (s, v) = api
        .post(collection, key, json!({"url": url, "events": events}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    Hook {
        id: v["id"].as_str().unwrap().to_owned(),
        secret: v["secret"].as_str().unwrap().to_owned(),
    }
}

/// A MID webhook and an account webhook of `flow`'s account, each with one delivery (a
/// ping), aimed at a loopback port nobody listens on; the server must allow loopback.
pub async fn with_webhooks(api: &Remote, key: &str, mut flow: Flow) -> Flow {
    let url = "http://127.0.0.1:9/unreachable";
    for (collection, is_mid) in [
        (mid_webhooks(&flow.mid), true),
        ("/v1/account/webhooks".to_owned(), false),
    ] {
        let hook = register_webhook(api, key, &collection, url, json!(["*"])).await;
        let (s, ping) = api
            .post(&format!("{collection}/{}/test", hook.id), key, json!({}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{ping}");
        let delivery = ping["id"].as_str().unwrap().to_owned();
        if is_mid {
            flow.webhook = Some(hook.id);
            flow.delivery = Some(delivery);
        } else {
            flow.account_webhook = Some(hook.id);
            flow.account_delivery = Some(delivery);
        }
    }
    flow
}

/// `/v1/mobile-identities/{mid}/webhooks`.
pub fn mid_webhooks(mid: &str) -> String {
    format!("/v1/mobile-identities/{mid}/webhooks")
}
