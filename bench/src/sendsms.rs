//! Load on an SMS gateway's HTTP `sendsms` interface (Kannel's smsbox), for the SMPP
//! comparison: a fixed number of concurrent clients for a fixed time, each request one SMS.
//! What reaches the SMSC is counted at the SMSC, not here.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::json;

/// After the load, polls the bearerbox's `status_url` (its `status.txt`) until it has sent
/// as many SMS as smsbox accepted, for up to `drain_secs`.
///
/// `url` is the whole sendsms URL up to the destination, e.g.
/// `http://127.0.0.1:13013/cgi-bin/sendsms?username=u&password=p&from=346&text=hi&to=`;
/// each request appends its own destination under +34 (digits only, as smsbox takes them).
pub async fn run(
    url: &str,
    secs: u64,
    clients: usize,
    status_url: &str,
    drain_secs: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut accepted, mut refused) = (0u64, 0u64);
            let mut i = 0u64;
            while Instant::now() < deadline {
                let to = format!("3460{worker}{:06}", i % 1_000_000);
                i += 1;
                let res = http.get(format!("{url}{to}")).send().await?;
                // smsbox answers 202 "Accepted for delivery" (or "Queued for later delivery").
                if res.status().as_u16() == 202 {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                res.bytes().await?;
            }
            anyhow::Ok((accepted, refused))
        }));
    }
    let (mut accepted, mut refused) = (0, 0);
    for t in tasks {
        let (a, r) = t.await??;
        accepted += a;
        refused += r;
    }
    let elapsed = started.elapsed().as_secs_f64();
    ensure!(
        accepted > 0,
        "the gateway accepted nothing ({refused} refused)"
    );
    let deadline = Instant::now() + Duration::from_secs(drain_secs);
    let mut sent = sent_so_far(&http, status_url).await?;
    while sent < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sent = sent_so_far(&http, status_url).await?;
    }
    println!(
        "{}",
        json!({
            "scenario": "sendsms", "clients": clients, "seconds": secs,
            "accepted": accepted, "refused": refused,
            "accepted_per_sec": (accepted as f64 / elapsed).round(),
            "gateway_sent": sent,
            "handed_off_after_s": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// The `sent` count of the `SMS:` line of bearerbox's `status.txt`:
/// `SMS: received 0 (0 queued), sent 120 (3 queued), store size 3`.
async fn sent_so_far(http: &reqwest::Client, status_url: &str) -> anyhow::Result<u64> {
    let text = http.get(status_url).send().await?.text().await?;
    let sent = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SMS:"))
        .and_then(|l| l.split("sent ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    sent.with_context(|| format!("no SMS sent count in the status page: {text}"))
}
