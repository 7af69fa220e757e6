//! `GET /metrics` (PROTOCOL §3.1): the Prometheus text format, parsed here line by line. After
//! a send it counts the request by its route template and status, times the send's group
//! commit, the dispatcher's claim and hand-off, counts the carrier's answers and webhook
//! attempts, and reads the queue depths from the store; no label carries an id or a number.
//! With `metrics_public = false` only the admin key reads it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::receiver::{Receiver, Reply};
use common::{ADMIN_KEY, LOOPBACK, TestServer, engines, mid_webhooks, register_webhook, send_sms};
use reqwest::StatusCode;
use serde_json::json;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A parsed exposition: the declared type of each family and every sample.
#[derive(Debug)]
struct Exposition {
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `key="value",...}` up to and without the closing brace; returns the labels and the rest.
fn parse_labels(mut rest: &str, line: &str) -> (Vec<(String, String)>, String) {
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after.to_owned());
        }
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label without a value: {line}"));
        assert!(is_name(key), "bad label name {key:?}: {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?}: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        };
        labels.push((key.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_value(s: &str, line: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value {v:?}: {line}")),
    }
}

/// Parses the text format (version 0.0.4) strictly: `# HELP` and `# TYPE` lines with valid
/// names and types, a family typed at most once, and `name{labels} value` samples without
/// timestamps, each of a typed family (a histogram's `_bucket` with `le`, `_sum`, `_count`).
fn parse(text: &str) -> Exposition {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match words.next() {
                Some("HELP") => {
                    let name = words.next().unwrap_or_default();
                    assert!(is_name(name), "bad HELP line: {line}");
                }
                Some("TYPE") => {
                    let name = words.next().unwrap_or_default();
                    let kind = words.next().unwrap_or_default();
                    assert!(is_name(name), "bad TYPE line: {line}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "bad type: {line}"
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "typed twice: {line}"
                    );
                }
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("sample without a value: {line}"));
        let name = &line[..name_end];
        assert!(is_name(name), "bad metric name: {line}");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..], line)
        } else {
            (Vec::new(), line[name_end..].to_owned())
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(fields.len(), 1, "expected exactly one value: {line}");
        let value = parse_value(fields[0], line);
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    for s in &samples {
        let histogram_part = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| s.name.strip_suffix(suffix))
            .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"));
        match histogram_part {
            Some(_) if s.name.ends_with("_bucket") => assert!(
                s.labels.iter().any(|(k, _)| k == "le"),
                "bucket without le: {s:?}"
            ),
            Some(_) => {}
            None => assert!(types.contains_key(&s.name), "untyped sample: {s:?}"),
        }
    }
    Exposition { types, samples }
}

impl Exposition {
    /// The sum of the samples named `name` that carry all of `labels`; None when none does.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| s.value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    fn at_least(&self, name: &str, labels: &[(&str, &str)], min: f64) -> bool {
        self.value(name, labels).is_some_and(|v| v >= min)
    }
}

/// `GET /metrics` with an optional bearer credential: status, content type, body.
async fn fetch(server: &TestServer, credential: Option<&str>) -> (StatusCode, String, String) {
    let mut req = server.http.get(format!("{}/metrics", server.base));
    if let Some(c) = credential {
        req = req.bearer_auth(c);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

async fn scrape(server: &TestServer, credential: Option<&str>) -> Exposition {
    let (status, content_type, body) = fetch(server, credential).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&body)
}

/// Scrapes until `ready` holds, for ten seconds at most; returns the last scrape.
async fn scrape_until(server: &TestServer, ready: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = scrape(server, None).await;
        if ready(&metrics) || Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn store_count(server: &TestServer, sql: &str) -> f64 {
    let mut conn = server.running.services.store.reader().await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap();
    n as f64
}

const SEND_ROUTE: &str = "/v1/agent/sms/send";

fn sent_and_handed(m: &Exposition) -> bool {
    m.at_least(
        "ami_http_requests_total",
        &[("route", SEND_ROUTE), ("status", "201"), ("method", "POST")],
        1.0,
    ) && m.at_least("ami_sms_send_duration_seconds_count", &[], 1.0)
        && m.at_least("ami_dispatch_claim_duration_seconds_count", &[], 1.0)
        && m.at_least("ami_dispatch_hand_off_duration_seconds_count", &[], 1.0)
        && m.at_least(
            "ami_carrier_sms_submissions_total",
            &[("outcome", "handed")],
            1.0,
        )
}

#[tokio::test]
async fn a_send_is_counted_timed_and_handed_off_with_route_templates_as_labels() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Measured").await;
        let flow = server.provision(&key).await;
        let sms = send_sms(&server, &flow.agent_token).await;
        let (s, _) = server
            .get(&format!("/v1/agent/sms/{sms}"), &flow.agent_token)
            .await;
        assert_eq!(s, StatusCode::OK);
        // A path no route matches, full of things that must never become a label.
        let (s, _) = server
            .get(
                &format!("/v1/nowhere/{}/{sms}/+34600123456", flow.mid),
                &key,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        let metrics = scrape_until(&server, sent_and_handed).await;
        assert!(sent_and_handed(&metrics), "{engine:?}: {metrics:#?}");
        let types = &metrics.types;
        for (family, kind) in [
            ("ami_http_requests_total", "counter"),
            ("ami_http_request_duration_seconds", "histogram"),
            ("ami_sms_send_duration_seconds", "histogram"),
            ("ami_dispatch_claim_duration_seconds", "histogram"),
            ("ami_dispatch_hand_off_duration_seconds", "histogram"),
            ("ami_carrier_sms_submissions_total", "counter"),
            ("ami_carrier_binds_up", "gauge"),
            ("ami_webhook_attempts_total", "counter"),
            ("ami_outbox_jobs", "gauge"),
            ("ami_webhook_deliveries_pending", "gauge"),
            ("ami_carrier_events_parked", "gauge"),
        ] {
            assert_eq!(
                types.get(family).map(String::as_str),
                Some(kind),
                "{engine:?}: {family}"
            );
        }
        let by_template = [("route", "/v1/agent/sms/{id}"), ("status", "200")];
        assert!(metrics.at_least("ami_http_requests_total", &by_template, 1.0));
        let unmatched = [("route", "unmatched"), ("status", "404")];
        assert!(metrics.at_least("ami_http_requests_total", &unmatched, 1.0));
        assert!(metrics.at_least(
            "ami_http_request_duration_seconds_count",
            &[("route", SEND_ROUTE), ("method", "POST")],
            1.0
        ));
        assert_eq!(
            metrics.value("ami_carrier_binds_up", &[("carrier", "sandbox")]),
            Some(1.0)
        );
        for gauge in [
            "ami_outbox_jobs",
            "ami_webhook_deliveries_pending",
            "ami_carrier_events_parked",
        ] {
            assert!(metrics.value(gauge, &[]).is_some(), "{engine:?}: {gauge}");
        }
        // A webhook-less flow attempts nothing; every outcome is there, at zero.
        for outcome in ["delivered", "retry", "failed", "refused"] {
            assert_eq!(
                metrics.value("ami_webhook_attempts_total", &[("outcome", outcome)]),
                Some(0.0),
                "{engine:?}: {outcome}"
            );
        }
        for sample in &metrics.samples {
            for (label, value) in &sample.labels {
                for raw in ["mid_", "msg_", "+34", "acct_"] {
                    assert!(
                        !value.contains(raw),
                        "{engine:?}: {}{{{label}={value:?}}} carries {raw}",
                        sample.name
                    );
                }
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn queue_depths_are_read_from_the_store_at_each_scrape() {
    for engine in engines() {
        // No dispatcher and no webhook worker: what is queued stays queued.
        let server =
            TestServer::start_with(engine, &[("AMI_DISPATCH_ENABLED", "false"), LOOPBACK]).await;
        let (_, key) = server.customer("Backlog").await;
        let flow = server.provision(&key).await;
        server
            .set_limits(&key, &flow.mid, json!({"rate_per_second": 100}))
            .await;
        let before = scrape(&server, None).await;
        for _ in 0..3 {
            send_sms(&server, &flow.agent_token).await;
        }
        let hooks = mid_webhooks(&flow.mid);
        let hook = register_webhook(
            &server.remote(),
            &key,
            &hooks,
            "http://127.0.0.1:9/never",
            json!(["*"]),
        )
        .await;
        let (s, v) = server
            .post(&format!("{hooks}/{}/test", hook.id), &key, json!({}))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");

        let after = scrape(&server, None).await;
        let outbox = store_count(&server, "SELECT COUNT(*) FROM outbox").await;
        let pending = store_count(
            &server,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE due_at IS NOT NULL",
        )
        .await;
        let parked = store_count(
            &server,
            "SELECT COUNT(*) FROM carrier_events_parked WHERE resolved_at IS NULL",
        )
        .await;
        assert!(
            outbox >= 3.0 && pending >= 1.0,
            "{engine:?}: {outbox} {pending}"
        );
        assert_eq!(
            after.value("ami_outbox_jobs", &[]),
            Some(outbox),
            "{engine:?}"
        );
        assert_eq!(
            before.value("ami_outbox_jobs", &[]),
            Some(outbox - 3.0),
            "{engine:?}"
        );
        assert_eq!(
            after.value("ami_webhook_deliveries_pending", &[]),
            Some(pending),
            "{engine:?}"
        );
        assert_eq!(
            after.value("ami_carrier_events_parked", &[]),
            Some(parked),
            "{engine:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn webhook_attempts_are_counted_by_outcome() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let receiver = Receiver::start(Reply::ok()).await;
        let (_, key) = server.customer("Hooked").await;
        let flow = server.provision(&key).await;
        let hooks = mid_webhooks(&flow.mid);
        for url in [
            receiver.url("/hook"),
            "http://127.0.0.1:9/closed".to_owned(),
        ] {
            let hook = register_webhook(&server.remote(), &key, &hooks, &url, json!(["*"])).await;
            let (s, v) = server
                .post(&format!("{hooks}/{}/test", hook.id), &key, json!({}))
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        }
        let attempted = |m: &Exposition| {
            m.at_least(
                "ami_webhook_attempts_total",
                &[("outcome", "delivered")],
                1.0,
            ) && m.at_least("ami_webhook_attempts_total", &[("outcome", "retry")], 1.0)
        };
        let metrics = scrape_until(&server, attempted).await;
        assert!(attempted(&metrics), "{engine:?}: {metrics:#?}");
        for outcome in ["failed", "refused"] {
            assert_eq!(
                metrics.value("ami_webhook_attempts_total", &[("outcome", outcome)]),
                Some(0.0),
                "{engine:?}: {outcome}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn private_metrics_take_the_admin_key_and_nothing_else() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_METRICS_PUBLIC", "false")]).await;
        let (_, key) = server.customer("Curious").await;
        let flow = server.provision(&key).await;
        let wrong_admin = format!("{ADMIN_KEY}-not");
        for (what, credential) in [
            ("no credential", None),
            ("a customer key", Some(key.as_str())),
            ("an agent token", Some(flow.agent_token.as_str())),
            ("a wrong admin key", Some(wrong_admin.as_str())),
        ] {
            let (status, _, body) = fetch(&server, credential).await;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                (status, v["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized_admin")),
                "{engine:?} with {what}: {body}"
            );
        }
        let metrics = scrape(&server, Some(ADMIN_KEY)).await;
        // The refusals above were counted, under the route's template.
        assert!(
            metrics.at_least(
                "ami_http_requests_total",
                &[("route", "/metrics"), ("status", "401")],
                4.0
            ),
            "{engine:?}: {metrics:#?}"
        );
        server.stop().await;

        // Public (the default): no credential needed, and one given changes nothing.
        let server = TestServer::start(engine).await;
        scrape(&server, None).await;
        scrape(&server, Some("not-a-credential")).await;
        server.stop().await;
    }
}
