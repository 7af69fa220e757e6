//! PROTOCOL §6 over the HTTP API, on every engine: each 429 reason is reachable, with exactly
//! the §6 body and a `Retry-After` header wherever `retry_after` is a number; a refusal costs
//! nothing, reaches no carrier and is audited `sms_blocked` with its reason and no body; the
//! token bucket cuts a burst at its size; windows reset on UTC hour, day and month
//! boundaries; usage snapshots and the send headers agree with what was sent.
//!
//! Time is the harness's test clock (the server reads it; it does not move by itself), so
//! every window edge and every `retry_after` is exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Flow, TestServer, engines};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};

use ami_carrier::Submission;

/// Distinctive, so that its absence from the audit log means something.
const BODY: &str = "limits-body-91c2";
/// Every limit but the allowlist out of the way; a test then lowers the one it exercises.
const RAISED: &[(&str, i64)] = &[
    ("rate_per_second", 1000),
    ("sms_per_hour", 100_000),
    ("sms_per_day", 100_000),
    ("sms_per_destination_per_hour", 100_000),
    ("sms_per_destination_per_day", 100_000),
];

fn at(rfc3339: &str) -> i64 {
    ami_core::time::parse_rfc3339(rfc3339).unwrap()
}

fn set_clock(server: &TestServer, rfc3339: &str) {
    server.clock.0.store(at(rfc3339), Ordering::SeqCst);
}

fn advance_secs(server: &TestServer, secs: u64) {
    server
        .clock
        .0
        .fetch_add(i64::try_from(secs).unwrap() * 1000, Ordering::SeqCst);
}

/// A Spanish mobile number, distinct per `n`, never one of the sandbox's magic endings.
fn es(n: usize) -> String {
    format!("+34611{n:02}5678")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// Everything a test did to one server: what was accepted, what was refused and why.
struct Probe<'a> {
    server: &'a TestServer,
    key: String,
    accepted: HashMap<String, Vec<String>>,
    refused: HashMap<String, Vec<String>>,
    calls_accepted: HashMap<String, Vec<String>>,
    calls_refused: HashMap<String, Vec<String>>,
}

impl<'a> Probe<'a> {
    async fn new(server: &'a TestServer) -> Probe<'a> {
        let (_, key) = server.customer("Limits").await;
        Probe {
            server,
            key,
            accepted: HashMap::new(),
            refused: HashMap::new(),
            calls_accepted: HashMap::new(),
            calls_refused: HashMap::new(),
        }
    }

    /// A fresh MID with `patch` applied over the raised limits.
    async fn mid(&self, patch: Value) -> Flow {
        let flow = self.server.provision(&self.key).await;
        let mut limits: serde_json::Map<String, Value> = RAISED
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        limits.extend(patch.as_object().unwrap().clone());
        self.limits(&flow, Value::Object(limits)).await;
        flow
    }

    async fn limits(&self, flow: &Flow, patch: Value) {
        let (s, v) = self
            .server
            .post(
                &format!("/v1/mobile-identities/{}/limits", flow.mid),
                &self.key,
                patch,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    async fn send(&mut self, flow: &Flow, to: &str) -> Reply {
        let reply = send(self.server, &flow.agent_token, to).await;
        self.record(flow, &reply);
        reply
    }

    fn record(&mut self, flow: &Flow, reply: &Reply) {
        match reply.status {
            StatusCode::CREATED => self
                .accepted
                .entry(flow.mid.clone())
                .or_default()
                .push(reply.body["id"].as_str().unwrap().to_owned()),
            StatusCode::TOO_MANY_REQUESTS => self
                .refused
                .entry(flow.mid.clone())
                .or_default()
                .push(reply.body["reason"].as_str().unwrap().to_owned()),
            other => panic!("{other}: {}", reply.body),
        }
    }

    async fn accept(&mut self, flow: &Flow, to: &str) -> Reply {
        let reply = self.send(flow, to).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{:?}: {}",
            self.server.engine,
            reply.body
        );
        reply
    }

    /// A refusal with `reason`; returns its `retry_after`.
    async fn refuse(&mut self, flow: &Flow, to: &str, reason: &str) -> Option<u64> {
        let reply = self.send(flow, to).await;
        assert_refusal(&reply, reason, &flow.mid)
    }

    /// Places a call (`POST /v1/agent/calls/place`) and records the outcome.
    async fn place(&mut self, flow: &Flow, to: &str) -> Reply {
        let res = self
            .server
            .http
            .post(format!("{}/v1/agent/calls/place", self.server.base))
            .bearer_auth(&flow.agent_token)
            .json(&json!({"to": to, "callback_sip_uri": "sip:agent@voice.example.com"}))
            .send()
            .await
            .unwrap();
        let reply = Reply {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.json().await.unwrap(),
        };
        match reply.status {
            StatusCode::CREATED => self
                .calls_accepted
                .entry(flow.mid.clone())
                .or_default()
                .push(reply.body["id"].as_str().unwrap().to_owned()),
            StatusCode::TOO_MANY_REQUESTS => self
                .calls_refused
                .entry(flow.mid.clone())
                .or_default()
                .push(reply.body["reason"].as_str().unwrap().to_owned()),
            other => panic!("{other}: {}", reply.body),
        }
        reply
    }

    async fn accept_call(&mut self, flow: &Flow, to: &str) {
        let reply = self.place(flow, to).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{:?}: {}",
            self.server.engine,
            reply.body
        );
    }

    async fn refuse_call(&mut self, flow: &Flow, to: &str, reason: &str) -> Option<u64> {
        let reply = self.place(flow, to).await;
        assert_refusal(&reply, reason, &flow.mid)
    }

    /// Each refusal is audited `action` with its reason, by the agent, masked, no body.
    async fn check_blocked(&self, action: &str, refused: &HashMap<String, Vec<String>>) {
        let engine = self.server.engine;
        for (mid, reasons) in refused {
            let (s, v) = self
                .server
                .get(
                    &format!("/v1/events?action={action}&mid={mid}&limit=1000"),
                    &self.key,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let events = v["events"].as_array().unwrap();
            let mut audited: Vec<&str> = events
                .iter()
                .map(|e| e["data"]["reason"].as_str().unwrap())
                .collect();
            let mut expected: Vec<&str> = reasons.iter().map(String::as_str).collect();
            audited.sort_unstable();
            expected.sort_unstable();
            assert_eq!(audited, expected, "{engine:?} {mid}");
            for e in events {
                assert_eq!(e["mid"], mid.as_str(), "{e}");
                assert_eq!(e["actor"]["type"], "agent", "{e}");
                assert!(e["data"].get("body").is_none(), "{e}");
                // The destination is masked to its country and last digits.
                let to = e["data"]["to"].as_str().unwrap_or_default();
                assert!(!to.contains("611"), "{e}");
            }
        }
    }

    /// The audit trail of the refusals and the carrier's record of the acceptances.
    async fn check_audit_and_carrier(&self) {
        let engine = self.server.engine;
        self.check_blocked("sms_blocked", &self.refused).await;
        self.check_blocked("call_blocked", &self.calls_refused)
            .await;
        let (_, all) = self.server.get("/v1/events?limit=1000", &self.key).await;
        assert!(
            !all.to_string().contains(BODY),
            "{engine:?}: a body in the audit"
        );

        // The sandbox network saw every accepted SMS once and nothing else.
        let accepted: HashSet<String> = self.accepted.values().flatten().cloned().collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if sms_submissions(self.server).len() >= accepted.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{engine:?}: only {} of {} handed off",
                sms_submissions(self.server).len(),
                accepted.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Nothing beyond the accepted ones is on its way.
        self.server.dispatcher_caught_up().await;
        let handed = sms_submissions(self.server);
        assert_eq!(handed.len(), accepted.len(), "{engine:?}: {handed:?}");
        assert_eq!(
            handed.into_iter().collect::<HashSet<_>>(),
            accepted,
            "{engine:?}"
        );
        let placed: HashSet<String> = self.calls_accepted.values().flatten().cloned().collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while call_submissions(self.server).len() < placed.len() {
            assert!(Instant::now() < deadline, "{engine:?}: calls not placed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rung = call_submissions(self.server);
        assert_eq!(rung.len(), placed.len(), "{engine:?}: {rung:?}");
        assert_eq!(
            rung.into_iter().collect::<HashSet<_>>(),
            placed,
            "{engine:?}"
        );
    }
}

fn call_submissions(server: &TestServer) -> Vec<String> {
    server
        .running
        .carrier
        .submissions()
        .into_iter()
        .filter_map(|s| match s {
            Submission::Call { call_id, .. } => Some(call_id),
            _ => None,
        })
        .collect()
}

async fn send(server: &TestServer, token: &str, to: &str) -> Reply {
    let res = server
        .http
        .post(format!("{}/v1/agent/sms/send", server.base))
        .bearer_auth(token)
        .json(&json!({"to": to, "body": BODY}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

fn sms_submissions(server: &TestServer) -> Vec<String> {
    server
        .running
        .carrier
        .submissions()
        .into_iter()
        .filter_map(|s| match s {
            Submission::Sms { msg_id, .. } => Some(msg_id),
            _ => None,
        })
        .collect()
}

/// The exact §6 refusal: 429, `{"error", "reason", "mid", "retry_after", "message"}` and
/// nothing else, `Retry-After` iff `retry_after` is a number (and then equal, ≥ 1).
fn assert_refusal(reply: &Reply, reason: &str, mid: &str) -> Option<u64> {
    let v = &reply.body;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["error", "message", "mid", "reason", "retry_after"],
        "{v}"
    );
    assert_eq!(v["error"], reason, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert_eq!(v["mid"], mid, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(!v.to_string().contains(BODY), "{v}");
    let header = reply
        .headers
        .get(RETRY_AFTER)
        .map(|h| h.to_str().unwrap().parse::<u64>().unwrap());
    match &v["retry_after"] {
        Value::Null => {
            assert_eq!(header, None, "Retry-After without retry_after: {v}");
            None
        }
        n => {
            let secs = n.as_u64().unwrap_or_else(|| panic!("retry_after: {v}"));
            assert!(secs >= 1, "{v}");
            assert_eq!(
                header,
                Some(secs),
                "Retry-After must equal retry_after: {v}"
            );
            Some(secs)
        }
    }
}

async fn usage(server: &TestServer, key: &str, flow: &Flow) -> Value {
    let (s, by_customer) = server
        .get(&format!("/v1/mobile-identities/{}/usage", flow.mid), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{by_customer}");
    let (s, by_agent) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(s, StatusCode::OK, "{by_agent}");
    assert_eq!(by_customer, by_agent, "the two views of one MID differ");
    by_customer
}

#[tokio::test]
async fn every_sms_reason_answers_the_section_6_refusal() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        // A Wednesday morning, far from any day or month edge.
        set_clock(&server, "2027-03-10T10:00:00Z");
        let mut p = Probe::new(&server).await;

        // rate_per_second at its default, 1/s, with a burst of 2: the third send at once.
        let flow = server.provision(&p.key).await;
        server
            .set_limits(&p.key, &flow.mid, json!({"rate_burst": 2}))
            .await;
        p.accept(&flow, &es(1)).await;
        p.accept(&flow, &es(2)).await;
        assert_eq!(
            p.refuse(&flow, &es(3), "rate_per_second").await,
            Some(1),
            "{engine:?}"
        );
        let before = usage(&server, &p.key, &flow).await;
        p.refuse(&flow, &es(3), "rate_per_second").await;
        assert_eq!(
            usage(&server, &p.key, &flow).await,
            before,
            "a refusal changed the usage"
        );

        // country_not_allowed: waiting does not help, so no Retry-After.
        let flow = p.mid(json!({})).await;
        for to in ["+573001234567", "+33612345678", "+14155550123"] {
            assert_eq!(
                p.refuse(&flow, to, "country_not_allowed").await,
                None,
                "{engine:?}"
            );
        }
        // The allowlist matches the country, not a string prefix: +34 is still allowed.
        p.accept(&flow, &es(1)).await;
        p.limits(&flow, json!({"allowed_country_prefixes": []}))
            .await;
        p.refuse(&flow, &es(1), "country_not_allowed").await;

        // monthly_budget: one SMS of 0.07 fits, the second does not; March 10th is far from
        // the month's end, so waiting does not help either.
        let flow = p.mid(json!({"monthly_budget_eur": 0.1})).await;
        p.accept(&flow, &es(1)).await;
        assert_eq!(
            p.refuse(&flow, &es(2), "monthly_budget").await,
            None,
            "{engine:?}"
        );

        // sms_per_hour: the window ends at 11:00, 3600 s away.
        let flow = p.mid(json!({"sms_per_hour": 2})).await;
        p.accept(&flow, &es(1)).await;
        p.accept(&flow, &es(2)).await;
        assert_eq!(p.refuse(&flow, &es(3), "sms_per_hour").await, Some(3600));

        // sms_per_day: the day ends at midnight UTC, 14 h away.
        let flow = p.mid(json!({"sms_per_day": 2})).await;
        p.accept(&flow, &es(1)).await;
        p.accept(&flow, &es(2)).await;
        assert_eq!(
            p.refuse(&flow, &es(3), "sms_per_day").await,
            Some(14 * 3600)
        );

        // Per destination: one recipient is full, another is not.
        let flow = p.mid(json!({"sms_per_destination_per_hour": 2})).await;
        p.accept(&flow, &es(1)).await;
        p.accept(&flow, &es(1)).await;
        assert_eq!(
            p.refuse(&flow, &es(1), "sms_per_destination_per_hour")
                .await,
            Some(3600)
        );
        p.accept(&flow, &es(2)).await;

        let flow = p.mid(json!({"sms_per_destination_per_day": 2})).await;
        p.accept(&flow, &es(1)).await;
        p.accept(&flow, &es(1)).await;
        assert_eq!(
            p.refuse(&flow, &es(1), "sms_per_destination_per_day").await,
            Some(14 * 3600)
        );
        p.accept(&flow, &es(2)).await;

        // Several limits refusing at once: the reason is the first in the documented order
        // (hour before day), retry_after the wait until every one of them has cleared.
        let flow = p.mid(json!({"sms_per_hour": 1, "sms_per_day": 1})).await;
        p.accept(&flow, &es(1)).await;
        assert_eq!(
            p.refuse(&flow, &es(2), "sms_per_hour").await,
            Some(14 * 3600)
        );

        p.check_audit_and_carrier().await;
        server.stop().await;
    }
}

/// Fires `n` sends at once; (accepted ids, refusal bodies).
async fn burst(server: &TestServer, flow: &Flow, n: usize) -> (Vec<String>, Vec<Reply>) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (http, url, token) = (
            server.http.clone(),
            format!("{}/v1/agent/sms/send", server.base),
            flow.agent_token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"to": es(i), "body": BODY}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            Reply {
                status,
                headers,
                body: res.json().await.unwrap(),
            }
        }));
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::CREATED => accepted.push(r.body["id"].as_str().unwrap().to_owned()),
            _ => refused.push(r),
        }
    }
    (accepted, refused)
}

#[tokio::test]
async fn a_burst_is_cut_at_the_token_bucket() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        set_clock(&server, "2027-03-10T10:00:00Z");
        let mut p = Probe::new(&server).await;
        let flow = p.mid(json!({"rate_per_second": 5, "rate_burst": 5})).await;
        // A burst of 5; the clock does not move during the burst, so nothing refills:
        // exactly 5 of 30 get through, whatever order they arrive in.
        for round in 0..3 {
            let (accepted, refused) = burst(&server, &flow, 30).await;
            assert_eq!(
                (accepted.len(), refused.len()),
                (5, 25),
                "{engine:?} round {round}"
            );
            let mut waits = HashSet::new();
            for r in &refused {
                waits.insert(assert_refusal(r, "rate_per_second", &flow.mid));
            }
            // The 6th token is one emission interval (200 ms) away: Retry-After rounds up to 1.
            assert_eq!(waits, HashSet::from([Some(1)]), "{engine:?}");
            for id in accepted {
                p.accepted.entry(flow.mid.clone()).or_default().push(id);
            }
            p.refused
                .entry(flow.mid.clone())
                .or_default()
                .extend(refused.iter().map(|_| "rate_per_second".to_owned()));
            // After the announced Retry-After the bucket is full again: the next round
            // gets exactly 5 through once more.
            advance_secs(&server, 1);
        }
        // The edge, to the millisecond: with a full bucket 5 pass and the 6th is refused;
        // the next token comes one emission interval (1000 / 5 = 200 ms) later.
        for i in 0..5 {
            p.accept(&flow, &es(i)).await;
        }
        assert_eq!(p.refuse(&flow, &es(5), "rate_per_second").await, Some(1));
        server.clock.0.fetch_add(199, Ordering::SeqCst);
        assert_eq!(p.refuse(&flow, &es(5), "rate_per_second").await, Some(1));
        server.clock.0.fetch_add(1, Ordering::SeqCst);
        p.accept(&flow, &es(5)).await;
        p.refuse(&flow, &es(6), "rate_per_second").await;
        // The sustained rate: one send every 200 ms is always accepted.
        for i in 0..10 {
            server.clock.0.fetch_add(200, Ordering::SeqCst);
            p.accept(&flow, &es(i)).await;
        }
        p.check_audit_and_carrier().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn windows_reset_on_utc_boundaries() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        set_clock(&server, "2027-03-10T10:00:00Z");
        let mut p = Probe::new(&server).await;
        let hourly = p.mid(json!({"sms_per_hour": 3})).await;
        let per_dest = p.mid(json!({"sms_per_destination_per_hour": 2})).await;
        let daily = p.mid(json!({"sms_per_day": 3})).await;
        let per_dest_day = p.mid(json!({"sms_per_destination_per_day": 2})).await;
        let monthly = p.mid(json!({"monthly_budget_eur": 0.21})).await;

        // The hour: full at 10:59:30, still full at 10:59:59.999, free at 11:00:00.
        set_clock(&server, "2027-03-10T10:59:30Z");
        for i in 0..3 {
            p.accept(&hourly, &es(i)).await;
        }
        for _ in 0..2 {
            p.accept(&per_dest, &es(1)).await;
        }
        assert_eq!(p.refuse(&hourly, &es(9), "sms_per_hour").await, Some(30));
        assert_eq!(
            p.refuse(&per_dest, &es(1), "sms_per_destination_per_hour")
                .await,
            Some(30)
        );
        let u = usage(&server, &p.key, &hourly).await;
        assert_eq!(u["usage"]["sms_count_this_hour"], 3, "{u}");
        assert_eq!(u["consumed_pct"]["sms_hour"], json!(100.0), "{u}");
        set_clock(&server, "2027-03-10T10:59:59.999Z");
        assert_eq!(p.refuse(&hourly, &es(9), "sms_per_hour").await, Some(1));
        set_clock(&server, "2027-03-10T11:00:00Z");
        let u = usage(&server, &p.key, &hourly).await;
        assert_eq!(
            (
                &u["usage"]["sms_count_this_hour"],
                &u["usage"]["sms_count_today"]
            ),
            (&json!(0), &json!(3)),
            "{u}"
        );
        p.accept(&hourly, &es(9)).await;
        p.accept(&per_dest, &es(1)).await;

        // The day: full at 23:59, still full at 23:59:59.999, free at midnight UTC.
        set_clock(&server, "2027-03-10T23:59:00Z");
        for i in 0..3 {
            p.accept(&daily, &es(i)).await;
        }
        for _ in 0..2 {
            p.accept(&per_dest_day, &es(1)).await;
        }
        assert_eq!(p.refuse(&daily, &es(9), "sms_per_day").await, Some(60));
        assert_eq!(
            p.refuse(&per_dest_day, &es(1), "sms_per_destination_per_day")
                .await,
            Some(60)
        );
        set_clock(&server, "2027-03-10T23:59:59.999Z");
        p.refuse(&daily, &es(9), "sms_per_day").await;
        p.refuse(&per_dest_day, &es(1), "sms_per_destination_per_day")
            .await;
        set_clock(&server, "2027-03-11T00:00:00Z");
        let u = usage(&server, &p.key, &daily).await;
        assert_eq!(u["usage"]["sms_count_today"], 0, "{u}");
        p.accept(&daily, &es(9)).await;
        p.accept(&per_dest_day, &es(1)).await;

        // The calendar month: spent at 23:30 on March 31st; the budget comes back 30 min later
        // and, since that is within a day, the refusal says so.
        set_clock(&server, "2027-03-31T23:30:00Z");
        for i in 0..3 {
            p.accept(&monthly, &es(i)).await;
        }
        assert_eq!(
            p.refuse(&monthly, &es(9), "monthly_budget").await,
            Some(1800)
        );
        let u = usage(&server, &p.key, &monthly).await;
        assert_eq!(
            (
                &u["usage"]["spend_this_month_eur"],
                &u["consumed_pct"]["monthly_budget"]
            ),
            (&json!(0.21), &json!(100.0)),
            "{u}"
        );
        set_clock(&server, "2027-03-31T23:59:59.999Z");
        assert_eq!(p.refuse(&monthly, &es(9), "monthly_budget").await, Some(1));
        set_clock(&server, "2027-04-01T00:00:00Z");
        let u = usage(&server, &p.key, &monthly).await;
        assert_eq!(u["usage"]["spend_this_month_eur"], json!(0.0), "{u}");
        p.accept(&monthly, &es(9)).await;
        let u = usage(&server, &p.key, &monthly).await;
        assert_eq!(u["usage"]["spend_this_month_eur"], json!(0.07), "{u}");

        p.check_audit_and_carrier().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn usage_snapshots_and_send_headers_agree_with_what_was_sent() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        set_clock(&server, "2027-03-10T10:00:00Z");
        let mut p = Probe::new(&server).await;
        let flow = server.provision(&p.key).await;
        p.limits(&flow, json!({"rate_per_second": 100})).await;

        let u = usage(&server, &p.key, &flow).await;
        assert_snapshot_shape(&u, &flow.mid);
        assert_eq!(u["usage"]["spend_this_month_eur"], json!(0.0), "{u}");

        // One single-segment SMS, then a two-segment one (161 GSM-7 characters), twice.
        let long = "x".repeat(161);
        let mut budget = Vec::new();
        let mut hour = Vec::new();
        for body in [BODY, long.as_str(), BODY, long.as_str()] {
            let res = server
                .http
                .post(format!("{}/v1/agent/sms/send", server.base))
                .bearer_auth(&flow.agent_token)
                .json(&json!({"to": es(1), "body": body}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED, "{engine:?}");
            let header = |name: &str| -> f64 {
                res.headers()
                    .get(name)
                    .unwrap_or_else(|| panic!("no {name}"))
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            budget.push(header("x-ami-budget-remaining-eur"));
            hour.push(header("x-ami-sms-remaining-hour"));
            let v: Value = res.json().await.unwrap();
            p.accepted
                .entry(flow.mid.clone())
                .or_default()
                .push(v["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(budget, [99.93, 99.79, 99.72, 99.58], "{engine:?}");
        assert_eq!(hour, [59.0, 58.0, 57.0, 56.0], "{engine:?}");

        let u = usage(&server, &p.key, &flow).await;
        assert_snapshot_shape(&u, &flow.mid);
        let expected_usage = BTreeMap::from([
            ("sms_count_this_hour", json!(4)),
            ("sms_count_today", json!(4)),
            ("calls_count_this_hour", json!(0)),
            ("calls_count_today", json!(0)),
            ("calls_minutes_this_month", json!(0)),
            ("spend_this_month_eur", json!(0.42)),
        ]);
        for (k, v) in expected_usage {
            assert_eq!(u["usage"][k], v, "{engine:?} {k}: {u}");
        }
        assert_eq!(
            u["usage"]["remaining_budget_eur"],
            json!(budget[3]),
            "the header and the snapshot disagree: {u}"
        );
        assert_eq!(
            u["pricing"],
            json!({"sms_eur": 0.07, "call_per_min_eur": 0.05}),
            "{u}"
        );
        assert_eq!(
            u["consumed_pct"],
            json!({"sms_hour": 6.7, "sms_day": 0.8, "calls_hour": 0.0, "calls_day": 0.0, "monthly_budget": 0.4}),
            "{u}"
        );
        let (_, limits) = server
            .get(
                &format!("/v1/mobile-identities/{}/limits", flow.mid),
                &p.key,
            )
            .await;
        assert_eq!(u["limits"], limits["limits"], "{u}");
        assert_eq!(u["limits"]["rate_per_second"], json!(100.0), "{u}");

        // A refusal leaves every number where it was.
        p.limits(&flow, json!({"sms_per_hour": 4})).await;
        p.refuse(&flow, &es(1), "sms_per_hour").await;
        let after = usage(&server, &p.key, &flow).await;
        assert_eq!(after["usage"], u["usage"], "{engine:?}");
        assert_eq!(after["consumed_pct"]["sms_hour"], json!(100.0), "{after}");

        p.check_audit_and_carrier().await;
        server.stop().await;
    }
}

/// The §6 snapshot: `{mid, usage:{…}, limits, pricing:{sms_eur, call_per_min_eur},
/// consumed_pct:{sms_hour, sms_day, calls_hour, calls_day, monthly_budget}}`.
fn assert_snapshot_shape(u: &Value, mid: &str) {
    assert_eq!(u["mid"], mid, "{u}");
    for k in [
        "sms_count_this_hour",
        "sms_count_today",
        "calls_count_this_hour",
        "calls_count_today",
        "calls_minutes_this_month",
        "spend_this_month_eur",
    ] {
        assert!(u["usage"][k].is_number(), "usage.{k}: {u}");
    }
    for k in [
        "rate_per_second",
        "rate_burst",
        "sms_per_hour",
        "sms_per_day",
        "calls_per_hour",
        "calls_per_day",
        "sms_per_destination_per_hour",
        "sms_per_destination_per_day",
        "calls_per_destination_per_hour",
        "calls_per_destination_per_day",
        "monthly_budget_eur",
        "allowed_country_prefixes",
    ] {
        assert!(u["limits"].get(k).is_some(), "limits.{k}: {u}");
    }
    let mut pricing: Vec<&String> = u["pricing"].as_object().unwrap().keys().collect();
    pricing.sort();
    assert_eq!(pricing, ["call_per_min_eur", "sms_eur"], "{u}");
    let mut pct: Vec<&String> = u["consumed_pct"].as_object().unwrap().keys().collect();
    pct.sort();
    assert_eq!(
        pct,
        [
            "calls_day",
            "calls_hour",
            "monthly_budget",
            "sms_day",
            "sms_hour"
        ],
        "{u}"
    );
}

#[tokio::test]
async fn every_call_reason_answers_the_section_6_refusal() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        set_clock(&server, "2027-03-10T10:00:00Z");
        let mut p = Probe::new(&server).await;
        let raised = json!({"calls_per_hour": 100_000, "calls_per_day": 100_000,
                            "calls_per_destination_per_hour": 100_000, "calls_per_destination_per_day": 100_000});
        let with = |patch: Value| {
            let mut all = raised.as_object().unwrap().clone();
            all.extend(patch.as_object().unwrap().clone());
            Value::Object(all)
        };

        // Calls and SMS share one token bucket: at the default 1/s with a burst of 2, an SMS
        // and a call pass and the next call is refused.
        let flow = server.provision(&p.key).await;
        server
            .set_limits(&p.key, &flow.mid, json!({"rate_burst": 2}))
            .await;
        p.accept(&flow, &es(1)).await;
        p.accept_call(&flow, &es(2)).await;
        assert_eq!(
            p.refuse_call(&flow, &es(3), "rate_per_second").await,
            Some(1)
        );

        let flow = p.mid(with(json!({}))).await;
        assert_eq!(
            p.refuse_call(&flow, "+573001234567", "country_not_allowed")
                .await,
            None
        );

        let flow = p.mid(with(json!({"calls_per_hour": 2}))).await;
        p.accept_call(&flow, &es(1)).await;
        p.accept_call(&flow, &es(2)).await;
        assert_eq!(
            p.refuse_call(&flow, &es(3), "calls_per_hour").await,
            Some(3600)
        );
        // SMS are counted apart from calls.
        p.accept(&flow, &es(3)).await;

        let flow = p.mid(with(json!({"calls_per_day": 2}))).await;
        p.accept_call(&flow, &es(1)).await;
        p.accept_call(&flow, &es(2)).await;
        assert_eq!(
            p.refuse_call(&flow, &es(3), "calls_per_day").await,
            Some(14 * 3600)
        );

        let flow = p
            .mid(with(json!({"calls_per_destination_per_hour": 2})))
            .await;
        p.accept_call(&flow, &es(1)).await;
        p.accept_call(&flow, &es(1)).await;
        assert_eq!(
            p.refuse_call(&flow, &es(1), "calls_per_destination_per_hour")
                .await,
            Some(3600)
        );
        p.accept_call(&flow, &es(2)).await;

        let flow = p
            .mid(with(json!({"calls_per_destination_per_day": 2})))
            .await;
        p.accept_call(&flow, &es(1)).await;
        p.accept_call(&flow, &es(1)).await;
        assert_eq!(
            p.refuse_call(&flow, &es(1), "calls_per_destination_per_day")
                .await,
            Some(14 * 3600)
        );
        p.accept_call(&flow, &es(2)).await;
        let u = usage(&server, &p.key, &flow).await;
        assert_eq!(
            (
                &u["usage"]["calls_count_this_hour"],
                &u["usage"]["calls_count_today"],
                &u["usage"]["sms_count_today"]
            ),
            (&json!(3), &json!(3), &json!(0)),
            "{u}"
        );

        p.check_audit_and_carrier().await;
        server.stop().await;
    }
}
