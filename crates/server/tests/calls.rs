//! Agent calls through the sandbox carrier (PROTOCOL §3.5, §4, §6, §7): placed, ringing,
//! answered, completed and charged per started minute; hung up by the agent before and after
//! the answer; unanswered attempts retried on the §3.5 backoff; refusals that reach no
//! carrier; the budget and the kill-switch ending calls in progress.
//!
//! The test clock stands still unless a test moves it: call durations and retry delays are
//! driven by hand, the sandbox's own timers run in real time. Destinations ending `0004` are
//! the sandbox's long calls (answered, on the line until hung up).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ami_carrier::Submission;
use ami_core::delivery::CallStatus;
use ami_services::auth::Actor;
use common::{ADMIN_KEY, Flow, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CALLBACK: &str = "sip:agent@voice.example.com";
const NORMAL: &str = "+34600123456";
const FAILS: &str = "+34600120001";
const NO_ANSWER: &str = "+34600120002";
const LONG: &str = "+34600120004";

/// Runs `case` on a server of each engine, both at once: the waits are the sandbox's timers.
async fn on_every_engine<F, Fut>(case: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut servers = Vec::new();
    for engine in engines() {
        servers.push(TestServer::start(engine).await);
    }
    let mut servers = servers.into_iter();
    let first = servers.next().expect("SQLite always");
    let second = servers.next();
    tokio::join!(case(first), async {
        if let Some(server) = second {
            case(server).await;
        }
    });
}

/// A provisioned MID whose rate and count limits stay out of the way of a test placing
/// several calls on a clock that stands still.
async fn agent(server: &TestServer) -> (String, Flow) {
    let (_, key) = server.customer("Caller").await;
    let flow = server.provision(&key).await;
    let limits = json!({"rate_per_second": 1000, "calls_per_hour": 1000, "calls_per_day": 1000,
                        "calls_per_destination_per_hour": 1000, "calls_per_destination_per_day": 1000});
    let (s, v) = server
        .post(
            &format!("/v1/mobile-identities/{}/limits", flow.mid),
            &key,
            limits,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (key, flow)
}

async fn place(server: &TestServer, flow: &Flow, to: &str) -> Value {
    let (s, call) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": to, "callback_sip_uri": CALLBACK}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{:?} {call}", server.engine);
    call
}

async fn get_call(server: &TestServer, flow: &Flow, id: &str) -> Value {
    let (s, call) = server
        .get(&format!("/v1/agent/calls/{id}"), &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{call}");
    call
}

/// Polls the call every 10 ms until `done` holds (5 s at most); the call, and every status
/// seen on the way.
async fn wait_for(
    server: &TestServer,
    flow: &Flow,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let call = get_call(server, flow, id).await;
        let status = call["status"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        if done(&call) {
            return (call, seen);
        }
        assert!(
            Instant::now() < deadline,
            "{:?}: call never {what}; last {call}, seen {seen:?}",
            server.engine
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |c| c["status"] == status
}

fn placements(server: &TestServer, id: &str) -> usize {
    server
        .running
        .carrier
        .submissions()
        .iter()
        .filter(|s| matches!(s, Submission::Call { call_id, .. } if call_id == id))
        .count()
}

/// Waits until the sandbox was asked to hang up `telco_ref` (3 s at most).
async fn wait_for_hang_up(server: &TestServer, telco_ref: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let wanted = Submission::HangUp {
        telco_ref: telco_ref.to_owned(),
    };
    while !server.running.carrier.submissions().contains(&wanted) {
        assert!(
            Instant::now() < deadline,
            "{:?}: no hang-up of {telco_ref} reached the carrier: {:?}",
            server.engine,
            server.running.carrier.submissions()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn advance_ms(server: &TestServer, ms: i64) {
    server.clock.0.fetch_add(ms, Ordering::SeqCst);
}

/// The customer's audit events, oldest first, as one text and as actions.
async fn events(server: &TestServer, key: &str) -> (String, Vec<String>) {
    let (s, v) = server.get("/v1/events?limit=1000", key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut actions: Vec<String> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    actions.reverse();
    (v.to_string(), actions)
}

#[tokio::test]
async fn a_call_rings_is_answered_completes_and_is_charged_one_minute() {
    on_every_engine(a_call_rings_is_answered_completes_and_is_charged_one_minute_on).await;
}

async fn a_call_rings_is_answered_completes_and_is_charged_one_minute_on(server: TestServer) {
    let (key, flow) = agent(&server).await;
    // Time runs as it does for the sandbox: the call lasts about half a second.
    let clock = server.clock.clone();
    let (base, t0) = (clock.0.load(Ordering::SeqCst), Instant::now());
    let ticker = tokio::spawn(async move {
        loop {
            clock
                .0
                .store(base + t0.elapsed().as_millis() as i64, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let (s, call) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": "+34 600-123.456", "callback_sip_uri": CALLBACK}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{call}");
    for field in [
        "id",
        "mid",
        "direction",
        "from",
        "to",
        "callback_sip_uri",
        "status",
        "created_at",
        "started_at",
        "ended_at",
        "duration_sec",
        "hangup_cause",
        "telco_ref",
        "retry_count",
    ] {
        assert!(call.get(field).is_some(), "no {field} in {call}");
    }
    assert_eq!(
        (
            call["status"].as_str(),
            call["direction"].as_str(),
            call["to"].as_str(),
            call["from"].as_str(),
            call["mid"].as_str(),
            call["callback_sip_uri"].as_str(),
            call["retry_count"].as_i64(),
        ),
        (
            Some("initiated"),
            Some("outbound"),
            Some(NORMAL),
            Some(flow.phone_number.as_str()),
            Some(flow.mid.as_str()),
            Some(CALLBACK),
            Some(0)
        ),
        "{call}"
    );
    assert!(call["id"].as_str().unwrap().starts_with("call_"), "{call}");
    let id = call["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let (done, seen) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    ticker.abort();
    // The sandbox completes a call 0.9 s after placing it; slack for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}: took {:?}",
        server.engine,
        started.elapsed()
    );
    // Every status seen by polling comes in order (the audit log below has each one).
    let order = ["ringing", "in_progress", "completed"];
    let seen: Vec<usize> = seen
        .iter()
        .filter(|s| *s != "initiated")
        .map(|s| order.iter().position(|o| o == s).expect("a known status"))
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]) && seen.last() == Some(&2),
        "{:?}: {seen:?}",
        server.engine
    );
    assert_eq!(done["hangup_cause"], "normal_clearing", "{done}");
    let duration = done["duration_sec"].as_i64().unwrap();
    assert!((1..=60).contains(&duration), "{done}");
    assert_eq!(done["cost_eur"], json!(0.05), "{done}");
    for field in ["started_at", "answered_at", "ended_at", "telco_ref"] {
        assert!(done[field].is_string(), "no {field} in {done}");
    }
    assert_eq!(placements(&server, &id), 1);

    let (s, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    assert_eq!(
        usage["usage"]["spend_this_month_eur"],
        json!(0.05),
        "{usage}"
    );
    assert_eq!(usage["usage"]["calls_count_this_hour"], 1, "{usage}");
    assert_eq!(usage["usage"]["calls_minutes_this_month"], 1, "{usage}");

    let (s, list) = server.get("/v1/agent/calls", &flow.agent_token).await;
    assert_eq!(
        (s, list["count"].as_u64(), list["calls"][0]["id"].as_str()),
        (StatusCode::OK, Some(1), Some(id.as_str())),
        "{list}"
    );
    assert!(list["next_cursor"].is_null(), "{list}");
    let (_, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(list["count"], 0, "{list}");
    // An empty filter is no direction either, and an empty limit no number.
    for (query, code) in [
        ("direction=sideways", "invalid_direction"),
        ("direction=", "invalid_direction"),
        ("limit=", "invalid_limit"),
    ] {
        let (s, v) = server
            .get(&format!("/v1/agent/calls?{query}"), &flow.agent_token)
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }
    let (s, v) = server
        .get(
            &format!("/v1/agent/calls/{}", ami_core::id::new_id("call")),
            &flow.agent_token,
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("call_not_found"))
    );

    let (text, actions) = events(&server, &key).await;
    let call_actions: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("call_"))
        .collect();
    assert_eq!(
        call_actions,
        [
            "call_placed",
            "call_ringing",
            "call_in_progress",
            "call_completed"
        ]
    );
    assert!(
        !text.contains("600123456") && !text.contains(CALLBACK),
        "a full destination reached the audit log: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn hanging_up_before_the_answer_cancels_and_after_it_completes() {
    on_every_engine(hanging_up_before_the_answer_cancels_and_after_it_completes_on).await;
}

async fn hanging_up_before_the_answer_cancels_and_after_it_completes_on(server: TestServer) {
    let (_, flow) = agent(&server).await;

    // Before the answer: cancelled, whatever the sandbox still reports for it.
    let early = place(&server, &flow, NORMAL).await;
    let early_id = early["id"].as_str().unwrap().to_owned();
    let (s, hung) = server
        .post(
            &format!("/v1/agent/calls/{early_id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{hung}");
    assert_eq!(
        (
            hung["status"].as_str(),
            hung["hangup_cause"].as_str(),
            hung["duration_sec"].as_i64()
        ),
        (Some("cancelled"), Some("hangup_by_agent"), Some(0)),
        "{hung}"
    );
    assert_eq!(hung["cost_eur"], json!(0.0), "{hung}");

    // After the answer: completed, charged for its started minute.
    let long = place(&server, &flow, LONG).await;
    let long_id = long["id"].as_str().unwrap().to_owned();
    let (answered, _) = wait_for(
        &server,
        &flow,
        &long_id,
        "answered",
        status_is("in_progress"),
    )
    .await;
    assert!(answered["answered_at"].is_string(), "{answered}");
    advance_ms(&server, 30_000);
    let (s, hung) = server
        .post(
            &format!("/v1/agent/calls/{long_id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{hung}");
    assert_eq!(
        (
            hung["status"].as_str(),
            hung["hangup_cause"].as_str(),
            hung["duration_sec"].as_i64()
        ),
        (Some("completed"), Some("hangup_by_agent"), Some(30)),
        "{hung}"
    );
    assert_eq!(hung["cost_eur"], json!(0.05), "{hung}");
    wait_for_hang_up(&server, answered["telco_ref"].as_str().unwrap()).await;

    // Again: 200 and the call exactly as it was.
    let (s, again) = server
        .post(
            &format!("/v1/agent/calls/{long_id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!((s, &again), (StatusCode::OK, &hung));
    // The early call's sandbox events (if it reached the carrier) are over and changed
    // nothing; a call that was handed off was hung up there too.
    server.dispatcher_caught_up().await;
    server.network_quiet().await;
    let settled = get_call(&server, &flow, &early_id).await;
    assert_eq!(
        (settled["status"].as_str(), settled["hangup_cause"].as_str()),
        (Some("cancelled"), Some("hangup_by_agent")),
        "{settled}"
    );
    if let Some(r) = settled["telco_ref"].as_str() {
        wait_for_hang_up(&server, r).await;
    }
    let (s, again) = server
        .post(
            &format!("/v1/agent/calls/{early_id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!((s, &again), (StatusCode::OK, &settled));
    let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(
        usage["usage"]["spend_this_month_eur"],
        json!(0.05),
        "{usage}"
    );

    let (s, v) = server
        .post(
            &format!("/v1/agent/calls/{}/hangup", ami_core::id::new_id("call")),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("call_not_found"))
    );
    server.stop().await;
}

/// Two retries of an attempt that failed (`0001`) or went unanswered (`0002`): after 3 s and
/// 15 s of clock time, never sooner; then the call ends in the last attempt's status. A busy
/// callee is never called again.
#[tokio::test]
async fn unanswered_attempts_are_placed_again_on_the_backoff() {
    on_every_engine(unanswered_attempts_are_placed_again_on_the_backoff_on).await;
}

async fn unanswered_attempts_are_placed_again_on_the_backoff_on(server: TestServer) {
    let (key, flow) = agent(&server).await;
    let cases = [
        (FAILS, "failed", "sandbox: destination always fails"),
        (NO_ANSWER, "no_answer", "no_answer"),
    ];
    let mut ids = Vec::new();
    for (to, _, _) in cases {
        ids.push(
            place(&server, &flow, to).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Reported busy while the sandbox lets it ring (before its own no-answer).
    let busy = place(&server, &flow, NO_ANSWER).await;
    let busy_id = busy["id"].as_str().unwrap().to_owned();
    let (ringing, _) = wait_for(&server, &flow, &busy_id, "ringing", |c| {
        c["status"] != "initiated"
    })
    .await;
    assert_eq!(ringing["status"], "ringing", "{ringing}");
    let telco_ref = ringing["telco_ref"].as_str().unwrap().to_owned();
    let services = &server.running.services;
    let out = services
        .apply_call_status(
            &Actor::Telco,
            &busy_id,
            CallStatus::Busy,
            Some(&telco_ref),
            Some("user_busy"),
        )
        .await
        .unwrap();
    assert!(out.applied);
    assert_eq!(
        (out.call.status.as_str(), out.call.retry_count),
        ("busy", 0)
    );

    for (retry, delay) in [(1, 3_000), (2, 15_000)] {
        for id in &ids {
            let (waiting, _) = wait_for(&server, &flow, id, "scheduled again", |c| {
                c["retry_count"] == retry && c["status"] == "initiated"
            })
            .await;
            assert!(
                waiting["telco_ref"].is_null() && waiting["ended_at"].is_null(),
                "{waiting}"
            );
            assert_eq!(placements(&server, id), retry as usize, "{waiting}");
        }
        // Not a moment before the backoff has passed (the dispatcher polls every 200 ms).
        advance_ms(&server, delay - 100);
        server.dispatcher_caught_up().await;
        for id in &ids {
            assert_eq!(placements(&server, id), retry as usize, "retry {retry}");
        }
        advance_ms(&server, 100);
        let deadline = Instant::now() + Duration::from_secs(3);
        while ids
            .iter()
            .any(|id| placements(&server, id) == retry as usize)
        {
            assert!(Instant::now() < deadline, "retry {retry} never placed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for (id, (_, last, cause)) in ids.iter().zip(cases) {
        let (done, _) = wait_for(&server, &flow, id, last, status_is(last)).await;
        assert_eq!(
            (
                done["retry_count"].as_i64(),
                done["hangup_cause"].as_str(),
                done["duration_sec"].as_i64()
            ),
            (Some(2), Some(cause), Some(0)),
            "{done}"
        );
        assert_eq!(done["cost_eur"], json!(0.0), "{done}");
    }
    // No third retry, however long one waits; and none ever for the busy callee.
    advance_ms(&server, 120_000);
    server.dispatcher_caught_up().await;
    for id in &ids {
        assert_eq!(placements(&server, id), 3);
    }
    assert_eq!(placements(&server, &busy_id), 1);
    let after = get_call(&server, &flow, &busy_id).await;
    assert_eq!(
        (after["status"].as_str(), after["hangup_cause"].as_str()),
        (Some("busy"), Some("user_busy")),
        "{after}"
    );
    let (_, actions) = events(&server, &key).await;
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(
        (count("call_retry_scheduled"), count("call_failed")),
        (4, 3),
        "{actions:?}"
    );

    // A report that would move a call backwards is audited and ignored.
    let before = get_call(&server, &flow, &busy_id).await;
    let out = services
        .apply_call_status(
            &Actor::Telco,
            &busy_id,
            CallStatus::Ringing,
            Some(&telco_ref),
            None,
        )
        .await
        .unwrap();
    assert!(!out.applied);
    assert_eq!(get_call(&server, &flow, &busy_id).await, before);
    let (_, actions) = events(&server, &key).await;
    assert_eq!(
        actions.last().map(String::as_str),
        Some("call_status_ignored")
    );
    server.stop().await;
}

#[tokio::test]
async fn refused_calls_reach_no_carrier() {
    on_every_engine(refused_calls_reach_no_carrier_on).await;
}

async fn refused_calls_reach_no_carrier_on(server: TestServer) {
    let (key, flow) = agent(&server).await;
    for body in [
        json!({"to": NORMAL}),
        json!({"to": NORMAL, "callback_sip_uri": ""}),
        json!({"to": NORMAL, "callback_sip_uri": "http://voice.example.com/"}),
        json!({"to": NORMAL, "callback_sip_uri": "sip:voice.example.com"}),
        json!({"to": NORMAL, "callback_sip_uri": "sip:agent@voice.example.com\r\nX: y"}),
    ] {
        let (s, v) = server
            .post("/v1/agent/calls/place", &flow.agent_token, body.clone())
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_callback_sip_uri")),
            "{body} {v}"
        );
    }
    for to in ["", "12345", "+34 abc"] {
        let (s, v) = server
            .post(
                "/v1/agent/calls/place",
                &flow.agent_token,
                json!({"to": to, "callback_sip_uri": CALLBACK}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_to")),
            "{to} {v}"
        );
    }
    let (s, v) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": "+573001234567", "callback_sip_uri": CALLBACK}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str(), v["reason"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("country_not_allowed"),
            Some("country_not_allowed")
        ),
        "{v}"
    );
    assert_eq!(v["mid"], flow.mid.as_str());
    let (text, actions) = events(&server, &key).await;
    assert_eq!(actions.last().map(String::as_str), Some("call_blocked"));
    assert!(
        text.contains("country_not_allowed") && !text.contains("3001234567"),
        "{text}"
    );

    let (s, ks) = server
        .post(
            "/v1/admin/kill-switch",
            ADMIN_KEY,
            json!({"scope": "mid", "target_id": flow.mid, "reason": "test"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ks}");
    let (s, v) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": NORMAL, "callback_sip_uri": CALLBACK}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str(), v["scope"].as_str()),
        (StatusCode::FORBIDDEN, Some("kill_switch"), Some("mid")),
        "{v}"
    );
    let (text, actions) = events(&server, &key).await;
    assert!(
        actions.iter().any(|a| a == "call_blocked") && text.contains("\"kill_switch\""),
        "{text}"
    );

    server.dispatcher_caught_up().await;
    assert!(
        server.running.carrier.submissions().is_empty(),
        "{:?}",
        server.running.carrier.submissions()
    );
    let (_, list) = server.get("/v1/agent/calls", &flow.agent_token).await;
    assert_eq!(list["count"], 0, "{list}");
    let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(usage["usage"]["calls_count_this_hour"], 0, "{usage}");
    server.stop().await;
}

#[tokio::test]
async fn a_kill_switch_hangs_up_the_calls_in_progress() {
    on_every_engine(a_kill_switch_hangs_up_the_calls_in_progress_on).await;
}

async fn a_kill_switch_hangs_up_the_calls_in_progress_on(server: TestServer) {
    let (key, flow) = agent(&server).await;
    let long = place(&server, &flow, LONG).await;
    let long_id = long["id"].as_str().unwrap().to_owned();
    let (answered, _) = wait_for(
        &server,
        &flow,
        &long_id,
        "answered",
        status_is("in_progress"),
    )
    .await;
    // A call between two attempts: initiated, not with the carrier.
    let waiting = place(&server, &flow, FAILS).await;
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    wait_for(&server, &flow, &waiting_id, "scheduled again", |c| {
        c["retry_count"] == 1 && c["status"] == "initiated"
    })
    .await;

    let (s, ks) = server
        .post(
            &format!("/v1/mobile-identities/{}/suspend", flow.mid),
            &key,
            json!({"reason": "stop everything"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ks}");
    assert_eq!(ks["hung_up_calls"], 2, "{ks}");
    wait_for_hang_up(&server, answered["telco_ref"].as_str().unwrap()).await;
    let ended = get_call(&server, &flow, &long_id).await;
    assert_eq!(
        (ended["status"].as_str(), ended["hangup_cause"].as_str()),
        (Some("completed"), Some("kill_switch")),
        "{ended}"
    );
    let cancelled = get_call(&server, &flow, &waiting_id).await;
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["hangup_cause"].as_str()
        ),
        (Some("cancelled"), Some("kill_switch")),
        "{cancelled}"
    );
    // Its next attempt never happens.
    advance_ms(&server, 20_000);
    server.dispatcher_caught_up().await;
    assert_eq!(placements(&server, &waiting_id), 1);
    let (s, v) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": NORMAL, "callback_sip_uri": CALLBACK}),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("kill_switch")),
        "{v}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_call_is_ended_before_a_minute_the_budget_cannot_pay() {
    on_every_engine(a_call_is_ended_before_a_minute_the_budget_cannot_pay_on).await;
}

async fn a_call_is_ended_before_a_minute_the_budget_cannot_pay_on(server: TestServer) {
    let (key, flow) = agent(&server).await;
    // One minute (0.05 EUR) fits, two do not.
    server
        .set_limits(&key, &flow.mid, json!({"monthly_budget_eur": 0.06}))
        .await;
    let call = place(&server, &flow, LONG).await;
    let id = call["id"].as_str().unwrap().to_owned();
    let (answered, _) = wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    // The check at the answer (one minute fits) runs before the clock moves on.
    server.dispatcher_caught_up().await;
    // Well inside the first minute: still running.
    advance_ms(&server, 30_000);
    server.dispatcher_caught_up().await;
    assert_eq!(get_call(&server, &flow, &id).await["status"], "in_progress");
    // Close to the second minute: ended before it starts, charged one minute.
    advance_ms(&server, 26_000);
    let (ended, _) = wait_for(&server, &flow, &id, "ended", status_is("completed")).await;
    assert_eq!(
        (
            ended["hangup_cause"].as_str(),
            ended["duration_sec"].as_i64()
        ),
        (Some("budget_exhausted"), Some(56)),
        "{ended}"
    );
    assert_eq!(ended["cost_eur"], json!(0.05), "{ended}");
    wait_for_hang_up(&server, answered["telco_ref"].as_str().unwrap()).await;
    let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(
        usage["usage"]["spend_this_month_eur"],
        json!(0.05),
        "{usage}"
    );
    server.stop().await;
}

/// The operator's longest call (`max_call_ms`, here its floor of one minute) ends a call
/// the budget could still pay for.
#[tokio::test]
async fn a_call_is_ended_at_the_longest_call_allowed() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_MAX_CALL_MS", "60000")]).await;
        let (_, flow) = agent(&server).await;
        let call = place(&server, &flow, LONG).await;
        let id = call["id"].as_str().unwrap().to_owned();
        let (answered, _) =
            wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
        server.dispatcher_caught_up().await;
        advance_ms(&server, 50_000);
        server.dispatcher_caught_up().await;
        assert_eq!(get_call(&server, &flow, &id).await["status"], "in_progress");
        advance_ms(&server, 10_000);
        let (ended, _) = wait_for(&server, &flow, &id, "ended", status_is("completed")).await;
        assert_eq!(
            (
                ended["hangup_cause"].as_str(),
                ended["duration_sec"].as_i64()
            ),
            (Some("max_duration"), Some(60)),
            "{engine:?} {ended}"
        );
        wait_for_hang_up(&server, answered["telco_ref"].as_str().unwrap()).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn a_call_the_budget_cannot_pay_one_minute_of_never_rings() {
    on_every_engine(a_call_the_budget_cannot_pay_one_minute_of_never_rings_on).await;
}

async fn a_call_the_budget_cannot_pay_one_minute_of_never_rings_on(server: TestServer) {
    let (key, flow) = agent(&server).await;
    // 0.04 EUR is less than one minute at 0.05.
    let path = format!("/v1/mobile-identities/{}/limits", flow.mid);
    let (s, v) = server
        .post(&path, &key, json!({"monthly_budget_eur": 0.04}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = server
        .post(
            "/v1/agent/calls/place",
            &flow.agent_token,
            json!({"to": LONG, "callback_sip_uri": CALLBACK}),
        )
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("monthly_budget")),
        "{v}"
    );
    server.dispatcher_caught_up().await;
    assert!(
        server.running.carrier.submissions().is_empty(),
        "{:?}",
        server.running.carrier.submissions()
    );
    server.stop().await;
}

#[tokio::test]
async fn numbers_the_plan_refuses_are_invalid_to_and_change_nothing() {
    on_every_engine(numbers_the_plan_refuses_are_invalid_to_and_change_nothing_on).await;
}

/// A number with the right country code that the numbering plan does not accept is refused
/// like a malformed one, before any slot is reserved, anything audited or placed.
async fn numbers_the_plan_refuses_are_invalid_to_and_change_nothing_on(server: TestServer) {
    let (_, flow) = agent(&server).await;
    let events_before = server.event_count().await;
    for to in [
        "+346000000001234",
        "+3461100000",
        "+34500000001",
        "+5730012345",
    ] {
        let (s, v) = server
            .post(
                "/v1/agent/calls/place",
                &flow.agent_token,
                json!({"to": to, "callback_sip_uri": CALLBACK}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_to")),
            "{to} {v}"
        );
    }
    assert_eq!(server.event_count().await, events_before);
    let (_, list) = server.get("/v1/agent/calls", &flow.agent_token).await;
    assert_eq!(list["count"], 0, "{list}");
    let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(usage["usage"]["calls_count_this_hour"], 0, "{usage}");
    // A valid number is placed; once it reached the carrier, nothing else had.
    let call = place(&server, &flow, NORMAL).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.running.carrier.submissions().is_empty() {
        assert!(Instant::now() < deadline, "never placed: {call}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let placed: Vec<String> = server
        .running
        .carrier
        .submissions()
        .into_iter()
        .filter_map(|s| match s {
            Submission::Call { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(placed, vec![NORMAL.to_owned()]);
    server.stop().await;
}
