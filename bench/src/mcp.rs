//! `ami.provision_number` through MCP over HTTP: the whole contracting flow as one tool call,
//! one call at a time, for its p50 and p99.

use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{Value, json};

pub async fn provision(base: &str, admin: &str, n: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = base.trim_end_matches('/');
    let key: Value = http
        .post(format!("{base}/v1/admin/customers"))
        .bearer_auth(admin)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let key = key["api_key"].as_str().unwrap_or_default().to_owned();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "ami.provision_number", "arguments": {}}});
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let v: Value = http
            .post(format!("{base}/mcp"))
            .bearer_auth(&key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&call)
            .send()
            .await?
            .json()
            .await?;
        lat.push(t.elapsed());
        ensure!(
            v["result"]["isError"] == json!(false),
            "provision_number: {v}"
        );
    }
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        json!({"scenario": "mcp_provision_number", "calls": n,
               "p50_ms": pct(0.5), "p99_ms": pct(0.99)})
    );
    Ok(())
}
