//! HTTP load: a fixed number of concurrent clients for a fixed time, or a number of flows.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

pub const CLIENTS: usize = 8;
/// Longer than the sandbox's last delivery report after a send (0.45 s).
const REPORTS_SETTLE: Duration = Duration::from_millis(600);

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub(crate) fn new(base: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS * 2)
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub(crate) async fn post(&self, path: &str, key: &str, body: Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let v: Value = res.json().await?;
        ensure!(status.is_success(), "{path}: {status} {v}");
        Ok(v)
    }

    async fn get(&self, path: &str, key: Option<&str>) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await?;
        let status = res.status();
        let v: Value = res.json().await?;
        ensure!(status.is_success(), "{path}: {status} {v}");
        Ok(v)
    }
}

pub(crate) fn s(v: &Value, ptr: &str) -> anyhow::Result<String> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{ptr} in {v}"))
}

/// A customer account; returns its key.
pub(crate) async fn customer(c: &Client, admin: &str) -> anyhow::Result<String> {
    let v = c
        .post("/v1/admin/customers", admin, json!({"name": "bench"}))
        .await?;
    s(&v, "/api_key")
}

/// The six steps and the agent's first call; returns the MID id.
pub(crate) async fn flow(c: &Client, key: &str) -> anyhow::Result<String> {
    s(&activated_mid(c, key).await?, "/id")
}

/// The six steps and the agent's first call; returns the activated MID as the API shows it.
pub(crate) async fn activated_mid(c: &Client, key: &str) -> anyhow::Result<Value> {
    let r = c
        .post("/v1/sim-requests", key, json!({"country": "ES"}))
        .await?;
    let (req, offer) = (s(&r, "/sim_request/id")?, s(&r, "/offer/id")?);
    c.post(&format!("/v1/offers/{offer}/accept"), key, json!({}))
        .await?;
    let body = json!({"customer": {"legal_name": "Bench SL", "tax_id": "B1", "billing_email": "b@bench.example",
                                   "address": "Calle 1", "representative_name": "Ana"}});
    let cust = s(
        &c.post(&format!("/v1/sim-requests/{req}/customer-data"), key, body)
            .await?,
        "/customer/id",
    )?;
    let contract = s(
        &c.post(
            "/v1/contracts",
            key,
            json!({"offer_id": offer, "customer_id": cust}),
        )
        .await?,
        "/id",
    )?;
    c.post(
        &format!("/v1/contracts/{contract}/mock-sign"),
        key,
        json!({}),
    )
    .await?;
    let mid = c
        .post(
            "/v1/mobile-identities/activate",
            key,
            json!({"contract_id": contract}),
        )
        .await?;
    c.get("/v1/agent/self", Some(&s(&mid, "/agent_token")?))
        .await?;
    Ok(mid)
}

/// Requests per second of `path` with CLIENTS concurrent clients for `secs`.
pub(crate) async fn rate(
    base: &str,
    path: &str,
    key: Option<&str>,
    secs: u64,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let c = Client::new(base)?;
        let (path, key) = (path.to_owned(), key.map(str::to_owned));
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                c.get(&path, key.as_deref()).await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    Ok((all.len() as f64 / secs as f64, all))
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub async fn throughput(base: &str, admin: &str, secs: u64) -> anyhow::Result<()> {
    let c = Client::new(base)?;
    let key = customer(&c, admin).await?;
    let mid = flow(&c, &key).await?;
    let path = format!("/v1/mobile-identities/{mid}");
    // Warm both paths, then let them take turns a second at a time: a fast or slow phase of
    // a noisy machine weighs on both figures alike.
    rate(base, "/v1/health", None, 1).await?;
    rate(base, &path, Some(&key), 1).await?;
    let (mut health, mut read) = (0.0, 0.0);
    let (mut hl, mut rl) = (Vec::new(), Vec::new());
    for _ in 0..secs {
        let (h, l) = rate(base, "/v1/health", None, 1).await?;
        health += h / secs as f64;
        hl.extend(l);
        let (r, l) = rate(base, &path, Some(&key), 1).await?;
        read += r / secs as f64;
        rl.extend(l);
    }
    hl.sort();
    rl.sort();
    println!(
        "{}",
        json!({
            "scenario": "throughput", "clients": CLIENTS, "seconds": secs,
            "health_rps": health.round(), "health_p50_ms": pct(&hl, 0.5), "health_p99_ms": pct(&hl, 0.99),
            "mid_read_rps": read.round(), "mid_read_p50_ms": pct(&rl, 0.5), "mid_read_p99_ms": pct(&rl, 0.99),
            "mid_read_vs_health": (read / health * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

pub async fn flows(base: &str, admin: &str, n: usize) -> anyhow::Result<()> {
    let c = Client::new(base)?;
    let key = customer(&c, admin).await?;
    flow(&c, &key).await?;
    // Latency: one flow at a time.
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        flow(&c, &key).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    // Throughput: CLIENTS flows at a time.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (c, key) = (Client::new(base)?, key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / CLIENTS {
                flow(&c, &key).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let per_sec = (n / CLIENTS * CLIENTS) as f64 / started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "scenario": "contracting_flow", "flows": n,
            "p50_ms": pct(&lat, 0.5), "p99_ms": pct(&lat, 0.99),
            "flows_per_sec_8_clients": per_sec.round(),
        })
    );
    Ok(())
}

/// Agent SMS sends with every check on (limits raised so nothing is refused), against
/// `/v1/health` in the same run; samples the dispatch backlog from the store meanwhile.
/// Agents on CLIENTS MIDs of one new customer, limits raised so that nothing they send to
/// +34 is refused; their tokens.
async fn sending_agents(c: &Client, admin: &str) -> anyhow::Result<Vec<String>> {
    let key = customer(c, admin).await?;
    // One MID per client: a MID's own rate is capped at 1000/s, and several agents sending
    // at once is the load that matters.
    let limits = json!({"rate_per_second": 1000, "sms_per_hour": 10_000_000, "sms_per_day": 10_000_000,
        "sms_per_destination_per_hour": 10_000_000, "sms_per_destination_per_day": 10_000_000,
        "monthly_budget_eur": 10_000_000, "allowed_country_prefixes": ["+34"]});
    let mut tokens = Vec::new();
    for _ in 0..CLIENTS {
        let mid = flow(c, &key).await?;
        let v = c
            .post(
                &format!("/v1/mobile-identities/{mid}/rotate-token"),
                &key,
                json!({}),
            )
            .await?;
        tokens.push(s(&v, "/agent_token")?);
        c.post(
            &format!("/v1/mobile-identities/{mid}/limits"),
            &key,
            limits.clone(),
        )
        .await?;
    }
    Ok(tokens)
}

/// Agent SMS sends with every check on (limits raised so nothing is refused), against
/// `/v1/health` in the same run; samples the dispatch backlog from the store meanwhile.
pub async fn sms(base: &str, admin: &str, secs: u64, sqlite_path: &str) -> anyhow::Result<()> {
    let c = Client::new(base)?;
    let tokens = sending_agents(&c, admin).await?;
    // Health and sends take turns, as in `throughput`, two seconds at a time. Each send
    // slice leaves the delivery reports of its last 0.45 s to come: they are let through
    // before health runs again, so they slow no health slice; a send slice carries a
    // little less report work than steady sending would (its first 0.45 s has none).
    const SLICE: u64 = 2;
    let rounds = (secs / SLICE).max(1);
    rate(base, "/v1/health", None, 1).await?;
    let backlog = tokio::spawn(sample_backlog(
        sqlite_path.to_owned(),
        rounds * (2 * SLICE + 1),
    ));
    let mut health = 0.0;
    let mut lat = Vec::new();
    for round in 0..rounds {
        health += rate(base, "/v1/health", None, SLICE).await?.0 / rounds as f64;
        lat.extend(send_sms_for(base, &tokens, SLICE, "+3460", round * 100_000).await?);
        tokio::time::sleep(REPORTS_SETTLE).await;
    }
    lat.sort();
    let sends = lat.len() as f64 / (rounds * SLICE) as f64;
    let max_backlog = backlog.await??;
    println!(
        "{}",
        json!({
            "scenario": "sms_send", "clients": CLIENTS, "seconds": rounds * SLICE,
            "health_rps": health.round(), "send_rps": sends.round(),
            "send_vs_health": (sends / health * 1000.0).round() / 1000.0,
            "send_p50_ms": pct(&lat, 0.5), "send_p99_ms": pct(&lat, 0.99),
            "max_dispatch_backlog": max_backlog,
        })
    );
    Ok(())
}

/// Agents send SMS for `secs` without pause, as in `sms` but with nothing else in the run:
/// the SMPP comparison counts what reaches the SMSC, so this reports only what was accepted,
/// then waits (up to `drain_secs`) until the dispatcher has handed every send to the carrier.
pub async fn sms_steady(
    base: &str,
    admin: &str,
    secs: u64,
    sqlite_path: &str,
    drain_secs: u64,
) -> anyhow::Result<()> {
    use sqlx::{Connection, SqliteConnection};
    let c = Client::new(base)?;
    let tokens = sending_agents(&c, admin).await?;
    let started = Instant::now();
    let lat = send_sms_for(base, &tokens, secs, "+3460", 0).await?;
    let sent = started.elapsed();
    let mut conn = SqliteConnection::connect(&format!("sqlite://{sqlite_path}?mode=ro")).await?;
    let deadline = Instant::now() + Duration::from_secs(drain_secs);
    let mut backlog: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&mut conn)
        .await?;
    let backlog_at_stop = backlog;
    while backlog > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        backlog = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&mut conn)
            .await?;
    }
    println!(
        "{}",
        json!({
            "scenario": "sms_steady", "clients": CLIENTS, "seconds": secs,
            "accepted": lat.len(), "accepted_per_sec": (lat.len() as f64 / sent.as_secs_f64()).round(),
            "send_p50_ms": pct(&lat, 0.5), "send_p99_ms": pct(&lat, 0.99),
            "backlog_at_stop": backlog_at_stop, "backlog_left": backlog,
            "handed_off_after_s": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// Sends SMS from every agent at once for `secs`, each to its own run of destinations
/// under `prefix`, numbered from `first`; every request's latency, sorted.
pub async fn send_sms_for(
    base: &str,
    tokens: &[String],
    secs: u64,
    prefix: &str,
    first: u64,
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (worker, token) in tokens.iter().cloned().enumerate() {
        let c = Client::new(base)?;
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = first;
            while Instant::now() < deadline {
                let to = format!("{prefix}{worker}{:06}", i % 1_000_000);
                i += 1;
                let t = Instant::now();
                c.post(
                    "/v1/agent/sms/send",
                    &token,
                    json!({"to": to, "body": "benchmark message"}),
                )
                .await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort();
    Ok(lat)
}

/// The largest number of accepted-but-not-handed-off jobs seen, sampled every 100 ms.
async fn sample_backlog(path: String, secs: u64) -> anyhow::Result<i64> {
    use sqlx::{Connection, SqliteConnection};
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}?mode=ro")).await?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut max = 0;
    while Instant::now() < deadline {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&mut conn)
            .await?;
        max = max.max(n);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(max)
}
