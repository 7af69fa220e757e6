//! Webhook fan-out against the send path: agents send SMS on several MIDs, each MID with one
//! webhook hearing `sms.delivered` and `sms.failed` (so every accepted SMS makes exactly one
//! delivery; the sandbox fails destinations ending 0001) at a loopback receiver. The server
//! signs every delivery and its SSRF guard judges every attempt (the run allowlists
//! 127.0.0.0/8). Two phases, `secs` of sends each:
//!
//! - live: deliveries run alongside the sends. Reported: the send rate, the delivery rate
//!   (deliveries over the time from the first delivery to the last), how long the deliveries
//!   took to catch up after the sends stopped (the sandbox's 0.45 s report delay included)
//!   and the largest delivery backlog seen. Deliveries that keep up can only match the send
//!   rate here, never exceed it: the sends are what feeds them.
//! - capacity: the receiver holds every request while the agents send, so the deliveries
//!   pile up in the outbox; then it opens, and the time to drain that backlog gives the
//!   deliveries per second the pipeline can sustain.
//!
//! The target: deliveries never become the bottleneck, i.e. `capacity_vs_sends` ≥ 1, the
//! capacity against the faster of the two phases' send rates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::load::{CLIENTS, Client, customer, flow, pct, rate, s, send_sms_for};

/// Longest wait for the deliveries to catch up after the sends stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// The capacity phase's longest hold: the requests held first must be answered before the
/// server's attempt timeout (15 s by default) gives up on them.
const HOLD_LIMIT: Duration = Duration::from_secs(12);

/// Counts what reaches the receiver.
#[derive(Default)]
struct Counts {
    received: AtomicU64,
    /// Requests without both signature headers: must stay 0.
    unsigned: AtomicU64,
    /// When the first and the latest delivery arrived.
    span: Mutex<Option<(Instant, Instant)>>,
    /// While true, requests are read but not answered (the capacity phase's backlog).
    hold: watch::Sender<bool>,
}

impl Counts {
    fn arrived(&self, signed: bool) {
        let now = Instant::now();
        let mut span = self
            .span
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
        drop(span);
        self.received.fetch_add(1, Ordering::SeqCst);
        if !signed {
            self.unsigned.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// From the first delivery to the latest.
    fn span(&self) -> Duration {
        self.span
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map_or(Duration::ZERO, |(first, last)| last - first)
    }
}

pub async fn run(base: &str, admin: &str, secs: u64, sqlite_path: &str) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(receive(listener, counts.clone()));

    let c = Client::new(base)?;
    let key = customer(&c, admin).await?;
    let limits = json!({"rate_per_second": 1000, "sms_per_hour": 10_000_000, "sms_per_day": 10_000_000,
        "sms_per_destination_per_hour": 10_000_000, "sms_per_destination_per_day": 10_000_000,
        "monthly_budget_eur": 10_000_000, "allowed_country_prefixes": ["+34"]});
    let mut tokens = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mid = flow(&c, &key).await?;
        let rotated = c
            .post(
                &format!("/v1/mobile-identities/{mid}/rotate-token"),
                &key,
                json!({}),
            )
            .await?;
        tokens.push(s(&rotated, "/agent_token")?);
        c.post(
            &format!("/v1/mobile-identities/{mid}/limits"),
            &key,
            limits.clone(),
        )
        .await?;
        c.post(
            &format!("/v1/mobile-identities/{mid}/webhooks"),
            &key,
            json!({"url": hook_url, "events": ["sms.delivered", "sms.failed"]}),
        )
        .await
        .context("register the webhook (is AMI_WEBHOOK_ALLOW_SUBNETS=127.0.0.0/8 set?)")?;
    }
    rate(base, "/v1/health", None, 1).await?;
    let (health, _) = rate(base, "/v1/health", None, secs).await?;

    // Live: deliveries run alongside the sends.
    let backlog = tokio::spawn(sample_backlog(sqlite_path.to_owned(), secs));
    let started = Instant::now();
    let lat = send_sms_for(base, &tokens, secs, "+3461", 0).await?;
    let window = started.elapsed();
    let in_window = counts.received.load(Ordering::SeqCst);
    let sends = lat.len() as u64;
    let max_backlog = backlog.await??;
    // Every accepted SMS is delivered (or failed) by the sandbox 0.45 s later and announced
    // once.
    let drain = wait_for(&counts, sends).await;
    let delivered = counts.received.load(Ordering::SeqCst);
    anyhow::ensure!(
        delivered >= sends,
        "only {delivered} of {sends} deliveries arrived within {DRAIN_LIMIT:?}"
    );
    let send_rps = sends as f64 / window.as_secs_f64();
    // Each delivery trails its send by the sandbox's report delay (0.45 s), so the delivery
    // rate is taken over the deliveries' own span: as long as the sends' span when
    // deliveries keep up, longer when they fall behind.
    let sustained = delivered as f64 / counts.span().as_secs_f64().max(0.001);

    // Capacity: a backlog piles up behind the held receiver, then drains.
    counts.hold.send_replace(true);
    let hold_secs = secs.min(HOLD_LIMIT.as_secs() - 1);
    let started = Instant::now();
    let held_lat = send_sms_for(base, &tokens, hold_secs, "+3462", 0).await?;
    let held_rps = held_lat.len() as f64 / started.elapsed().as_secs_f64();
    let held = held_lat.len() as u64;
    let backlog = wait_for_backlog(sqlite_path, held).await?;
    let opened = Instant::now();
    counts.hold.send_replace(false);
    wait_for(&counts, delivered + held).await;
    let drained = counts.received.load(Ordering::SeqCst) - delivered;
    anyhow::ensure!(
        drained >= held,
        "only {drained} of {held} held deliveries arrived within {DRAIN_LIMIT:?}"
    );
    let capacity = drained as f64 / opened.elapsed().as_secs_f64();

    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "scenario": "webhook_fanout", "clients": CLIENTS, "mids": CLIENTS, "webhooks_per_mid": 1,
            "seconds": secs, "health_rps": health.round(),
            "send_rps": send_rps.round(), "send_p50_ms": pct(&lat, 0.5), "send_p99_ms": pct(&lat, 0.99),
            "deliveries_in_send_window_per_sec": (in_window as f64 / window.as_secs_f64()).round(),
            "deliveries_per_sec_sustained": sustained.round(),
            "deliveries_vs_sends": round(sustained / send_rps),
            "drain_secs_after_sends": round(drain.as_secs_f64()),
            "sends": sends, "delivered": delivered,
            "max_delivery_backlog": max_backlog,
            "held_send_rps": held_rps.round(), "held_backlog": backlog,
            "delivery_capacity_per_sec": capacity.round(),
            "capacity_vs_sends": round(capacity / send_rps.max(held_rps)),
            "unsigned": counts.unsigned.load(Ordering::SeqCst),
        })
    );
    Ok(())
}

/// Waits until `total` deliveries have been answered (or `DRAIN_LIMIT`); how long it took.
async fn wait_for(counts: &Counts, total: u64) -> Duration {
    let started = Instant::now();
    while counts.received.load(Ordering::SeqCst) < total && started.elapsed() < DRAIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// Waits until the outbox holds a pending delivery for each of the `held` sends (the sandbox
/// reports each 0.45 s after its hand-off); the backlog then.
async fn wait_for_backlog(path: &str, held: u64) -> anyhow::Result<i64> {
    use sqlx::{Connection, SqliteConnection};
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}?mode=ro")).await?;
    let started = Instant::now();
    loop {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(&mut conn)
                .await?;
        if u64::try_from(n)? >= held || started.elapsed() > Duration::from_secs(5) {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP/1.1 receiver: one request per connection (the server never reuses one),
/// answered 204.
async fn receive(listener: TcpListener, counts: Arc<Counts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let counts = counts.clone();
        tokio::spawn(async move {
            if let Ok(signed) = answer(stream, counts.hold.subscribe()).await {
                counts.arrived(signed);
            }
        });
    }
}

/// Reads one request, answers 204 once the receiver is not holding; whether it carried both
/// signature headers.
async fn answer(mut stream: TcpStream, mut hold: watch::Receiver<bool>) -> anyhow::Result<bool> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before the headers");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf.len() - head_end - 4;
    while body < length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "closed before the body");
        body += n;
    }
    hold.wait_for(|held| !held).await?;
    stream
        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await?;
    Ok(
        head.contains("\r\nx-ami-signature: sha256=")
            && head.contains("\r\nwebhook-signature: v1,"),
    )
}

/// The largest number of deliveries waiting for an attempt, sampled every 100 ms.
async fn sample_backlog(path: String, secs: u64) -> anyhow::Result<i64> {
    use sqlx::{Connection, SqliteConnection};
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}?mode=ro")).await?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut max = 0;
    while Instant::now() < deadline {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE due_at IS NOT NULL")
                .fetch_one(&mut conn)
                .await?;
        max = max.max(n);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(max)
}
