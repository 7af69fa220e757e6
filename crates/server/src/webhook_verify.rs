//! `ami webhook verify`: checks a captured delivery against its secret, both signature
//! schemes, with the library's verifiers (two-sided 5-minute window, constant-time
//! comparison). Receivers use it to debug their own verification.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use http::{HeaderMap, HeaderName, HeaderValue};

use ami_webhooks::{verify_compatible, verify_standard};

#[derive(Args)]
pub struct VerifyArgs {
    /// The webhook's secret (`whsec_…`); also read from AMI_WEBHOOK_SECRET.
    #[arg(long, env = "AMI_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// The request headers: a JSON object of name to value, or `Name: value` lines.
    #[arg(long)]
    pub headers: PathBuf,
    /// The exact body bytes received.
    #[arg(long)]
    pub body: PathBuf,
    /// Verify as if the time were this (unix seconds) instead of now.
    #[arg(long)]
    pub now: Option<u64>,
}

/// Prints one line per scheme; true when both verify.
pub fn run(args: &VerifyArgs) -> anyhow::Result<bool> {
    let raw = std::fs::read(&args.headers)
        .with_context(|| format!("cannot read {}", args.headers.display()))?;
    let headers = parse_headers(&raw)?;
    let body = std::fs::read(&args.body)
        .with_context(|| format!("cannot read {}", args.body.display()))?;
    let now = match args.now {
        Some(now) => now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    };
    let standard = verify_standard(&args.secret, &headers, &body, now);
    let compatible = verify_compatible(&args.secret, &headers, &body, now);
    for (scheme, result) in [
        ("standard-webhooks (webhook-signature)", &standard),
        ("compatible (X-Ami-Signature)", &compatible),
    ] {
        match result {
            Ok(()) => println!("{scheme}: OK"),
            Err(e) => println!("{scheme}: FAIL {e}"),
        }
    }
    Ok(standard.is_ok() && compatible.is_ok())
}

/// A JSON object `{"name": "value"}`, or HTTP header lines (a status line and blank lines
/// are skipped).
fn parse_headers(raw: &[u8]) -> anyhow::Result<HeaderMap> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(raw) {
        for (name, value) in map {
            let value = value
                .as_str()
                .with_context(|| format!("header {name} is not a string"))?;
            pairs.push((name, value.to_owned()));
        }
    } else {
        let text = std::str::from_utf8(raw).context("the headers file is not UTF-8")?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some((name, value)) = line.split_once(':')
                && !name.contains(' ')
            {
                pairs.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("invalid header name {name:?}"))?;
        let value = HeaderValue::from_str(&value)
            .with_context(|| format!("invalid value of header {name}"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_header_file_forms() {
        let json = parse_headers(br#"{"Webhook-Id": "evt_1", "X-Ami-Timestamp": "1"}"#).unwrap();
        assert_eq!(json["webhook-id"], "evt_1");
        let lines =
            parse_headers(b"HTTP/1.1 200 OK\r\nWebhook-Id: evt_1\r\nX-Ami-Timestamp:  1 \r\n\r\n")
                .unwrap();
        assert_eq!(lines["webhook-id"], "evt_1");
        assert_eq!(lines["x-ami-timestamp"], "1");
        assert!(parse_headers(br#"{"a": 1}"#).is_err());
    }
}
