//! Calls over SIP end to end (`call_carrier = "sip"`), with SIPp, an independent SIP
//! implementation, as the trunk and as the customer's SIP engine: an outbound call rings,
//! is answered, bridged to its callback URI and hung up by the callee; a busy callee; a
//! hang-up before the answer (CANCEL); the kill-switch ending an answered call (BYE); and
//! inbound calls bridged to the MID's `inbound_sip_uri`, refused from a foreign address
//! and to an unknown number; a live call ended with BYE when the budget cannot pay its next
//! minute or it reaches the longest call allowed. Each on both engines at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::receiver::{Receiver, Reply};
use common::sipp::{
    Sipp, call_actions, free_port, on_every_engine, place, sip_mid, sip_server, sipp_ready,
    status_is, wait_for,
};
use common::{ADMIN_KEY, Engine, LOOPBACK, mid_webhooks, register_webhook};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_outbound_call_rings_is_answered_bridged_and_hung_up_by_the_callee() {
    if sipp_ready() {
        on_every_engine(an_outbound_call_rings_is_answered_bridged_and_hung_up_by_the_callee_on)
            .await;
    }
}

async fn an_outbound_call_rings_is_answered_bridged_and_hung_up_by_the_callee_on(engine: Engine) {
    let (trunk_port, engine_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let trunk = Sipp::uas("uas_answer_then_bye", trunk_port).await;
    let sip_engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    let (server, _) = sip_server(engine, trunk_port, &[]).await;
    let (key, flow) = sip_mid(&server).await;
    let callback = format!("sip:agent@127.0.0.1:{engine_port}");
    let id = place(&server, &flow, "+34600123456", &callback).await;
    let (answered, _) = wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    let (_, health) = server.get("/v1/health", ADMIN_KEY).await;
    assert_eq!(
        (
            &health["telco"]["calls"]["carrier"],
            &health["telco"]["calls"]["live"]
        ),
        (&json!("sip"), &json!(1)),
        "{health}"
    );
    // The callee stays on the line for about a second.
    server.clock.0.fetch_add(1_000, Ordering::SeqCst);
    let (done, seen) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    assert!(trunk.passed().await, "the trunk's scenario");
    assert!(sip_engine.passed().await, "the SIP engine got its BYE");
    let seen: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "initiated")
        .collect();
    assert!(
        seen.iter()
            .all(|s| ["ringing", "in_progress", "completed"].contains(s)),
        "{seen:?}"
    );
    assert_eq!(done["hangup_cause"], "hangup_by_callee", "{done}");
    assert_eq!(done["cost_eur"], json!(0.05), "{done}");
    assert_eq!(done["telco_ref"], answered["telco_ref"], "{done}");
    assert!(done["answered_at"].is_string(), "{done}");
    assert_eq!(
        call_actions(&server, &key).await,
        [
            "call_placed",
            "call_ringing",
            "call_in_progress",
            "call_completed"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_busy_callee_makes_a_busy_call() {
    if sipp_ready() {
        on_every_engine(a_busy_callee_makes_a_busy_call_on).await;
    }
}

async fn a_busy_callee_makes_a_busy_call_on(engine: Engine) {
    let trunk_port = free_port("127.0.0.1");
    let trunk = Sipp::uas("uas_busy", trunk_port).await;
    let (server, _) = sip_server(engine, trunk_port, &[]).await;
    let (_, flow) = sip_mid(&server).await;
    let id = place(&server, &flow, "+34600123456", "sip:agent@127.0.0.1:9").await;
    let (done, _) = wait_for(&server, &flow, &id, "busy", |c| {
        c["status"] != "initiated" && c["status"] != "ringing"
    })
    .await;
    assert_eq!(done["status"], "busy", "{done}");
    assert_eq!(done["cost_eur"], json!(0.0), "{done}");
    assert!(trunk.passed().await);
    server.stop().await;
}

#[tokio::test]
async fn an_agent_hang_up_before_the_answer_cancels_the_invite() {
    if sipp_ready() {
        on_every_engine(an_agent_hang_up_before_the_answer_cancels_the_invite_on).await;
    }
}

async fn an_agent_hang_up_before_the_answer_cancels_the_invite_on(engine: Engine) {
    let trunk_port = free_port("127.0.0.1");
    let trunk = Sipp::uas("uas_ring_until_cancel", trunk_port).await;
    let (server, _) = sip_server(engine, trunk_port, &[]).await;
    let (_, flow) = sip_mid(&server).await;
    let id = place(&server, &flow, "+34600123456", "sip:agent@127.0.0.1:9").await;
    wait_for(&server, &flow, &id, "ringing", status_is("ringing")).await;
    let (s, hung) = server
        .post(
            &format!("/v1/agent/calls/{id}/hangup"),
            &flow.agent_token,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{hung}");
    assert_eq!(
        (hung["status"].as_str(), hung["hangup_cause"].as_str()),
        (Some("cancelled"), Some("hangup_by_agent")),
        "{hung}"
    );
    // The trunk's scenario requires our CANCEL (and the ACK of its 487).
    assert!(trunk.passed().await, "the trunk got CANCEL");
    let (after, _) = wait_for(&server, &flow, &id, "settled", status_is("cancelled")).await;
    assert_eq!(after["hangup_cause"], "hangup_by_agent", "{after}");
    server.stop().await;
}

#[tokio::test]
async fn the_kill_switch_ends_an_answered_call_with_a_bye() {
    if sipp_ready() {
        on_every_engine(the_kill_switch_ends_an_answered_call_with_a_bye_on).await;
    }
}

async fn the_kill_switch_ends_an_answered_call_with_a_bye_on(engine: Engine) {
    let (trunk_port, engine_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let trunk = Sipp::uas("uas_answer_wait_bye", trunk_port).await;
    let sip_engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    let (server, _) = sip_server(engine, trunk_port, &[]).await;
    let (_, flow) = sip_mid(&server).await;
    let callback = format!("sip:agent@127.0.0.1:{engine_port}");
    let id = place(&server, &flow, "+34600123456", &callback).await;
    wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    let engaged = Instant::now();
    let (s, ks) = server
        .post(
            "/v1/admin/kill-switch",
            ADMIN_KEY,
            json!({"scope": "mid", "target_id": flow.mid, "reason": "test"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ks}");
    // Both scenarios end only on our BYE.
    assert!(trunk.passed().await, "the trunk got BYE");
    assert!(
        engaged.elapsed() < Duration::from_secs(3),
        "BYE after {:?}",
        engaged.elapsed()
    );
    assert!(sip_engine.passed().await, "the SIP engine got BYE");
    let (done, _) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    assert_eq!(done["hangup_cause"], "kill_switch", "{done}");
    server.stop().await;
}

#[tokio::test]
async fn inbound_calls_are_bridged_to_the_mid_or_refused() {
    if sipp_ready() {
        on_every_engine(inbound_calls_are_bridged_to_the_mid_or_refused_on).await;
    }
}

async fn inbound_calls_are_bridged_to_the_mid_or_refused_on(engine: Engine) {
    let engine_port = free_port("127.0.0.1");
    let sip_engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    // No outbound call here: the trunk's proxy is never used.
    let (server, sip_addr) = sip_server(engine, free_port("127.0.0.1"), &[]).await;
    let (key, flow) = sip_mid(&server).await;
    let (s, v) = server
        .post(
            &format!("/v1/mobile-identities/{}/inbound-config", flow.mid),
            &key,
            json!({"inbound_sip_uri": format!("sip:agent@127.0.0.1:{engine_port}")}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let caller = Sipp::uac(
        "uac_call_then_bye",
        "127.0.0.1",
        sip_addr,
        &flow.phone_number,
    );
    assert!(caller.passed().await, "the caller was answered");
    assert!(
        sip_engine.passed().await,
        "the MID's engine answered and got BYE"
    );
    let (s, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let id = list["calls"][0]["id"].as_str().unwrap().to_owned();
    let (done, _) = wait_for(&server, &flow, &id, "completed", status_is("completed")).await;
    assert_eq!(done["hangup_cause"], "hangup_by_caller", "{done}");
    assert!(done["answered_at"].is_string(), "{done}");
    let actions = call_actions(&server, &key).await;
    assert!(
        actions.first().map(String::as_str) == Some("call_received")
            && actions.last().map(String::as_str) == Some("call_completed"),
        "{actions:?}"
    );

    // From an address no trunk lists: 403 before anything is decided.
    let foreign = Sipp::uac("uac_expect_403", "127.0.0.2", sip_addr, &flow.phone_number);
    assert!(foreign.passed().await, "403 to a foreign source");
    // To a number no MID has: 404.
    let unknown = Sipp::uac("uac_expect_404", "127.0.0.1", sip_addr, "+34699999999");
    assert!(unknown.passed().await, "404 to an unknown number");
    let (_, list) = server
        .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
        .await;
    assert_eq!(list["count"], 1, "{list}");
    server.stop().await;
}

#[tokio::test]
async fn a_live_call_the_budget_cannot_pay_on_is_ended_with_a_bye() {
    if sipp_ready() {
        on_every_engine(a_live_call_the_budget_cannot_pay_on_is_ended_with_a_bye_on).await;
    }
}

async fn a_live_call_the_budget_cannot_pay_on_is_ended_with_a_bye_on(engine: Engine) {
    let (trunk_port, engine_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    // Both stay on the line until our BYE.
    let trunk = Sipp::uas("uas_answer_wait_bye", trunk_port).await;
    let sip_engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    let hooks = Receiver::start(Reply::ok()).await;
    let (server, _) = sip_server(engine, trunk_port, &[LOOPBACK]).await;
    let (key, flow) = sip_mid(&server).await;
    // One minute (0.05 EUR) fits, two do not.
    server
        .set_limits(&key, &flow.mid, json!({"monthly_budget_eur": 0.06}))
        .await;
    register_webhook(
        &server.remote(),
        &key,
        &mid_webhooks(&flow.mid),
        &hooks.url("/calls"),
        json!(["call.completed"]),
    )
    .await;
    let callback = format!("sip:agent@127.0.0.1:{engine_port}");
    let id = place(&server, &flow, "+34600123456", &callback).await;
    wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    // The check at the answer (one minute fits) runs before the clock moves on.
    server.dispatcher_caught_up().await;
    server.clock.0.fetch_add(30_000, Ordering::SeqCst);
    server.dispatcher_caught_up().await;
    let (s, call) = server
        .get(&format!("/v1/agent/calls/{id}"), &flow.agent_token)
        .await;
    assert_eq!(
        (s, call["status"].as_str()),
        (StatusCode::OK, Some("in_progress")),
        "{engine:?}: {call}"
    );
    // Close to the second minute: ended before it starts, charged one minute.
    server.clock.0.fetch_add(26_000, Ordering::SeqCst);
    let (ended, _) = wait_for(&server, &flow, &id, "ended", status_is("completed")).await;
    assert_eq!(
        (
            ended["hangup_cause"].as_str(),
            ended["duration_sec"].as_i64()
        ),
        (Some("budget_exhausted"), Some(56)),
        "{engine:?}: {ended}"
    );
    assert_eq!(ended["cost_eur"], json!(0.05), "{engine:?}: {ended}");
    // Both scenarios end only on our BYE.
    assert!(trunk.passed().await, "{engine:?}: the trunk got BYE");
    assert!(
        sip_engine.passed().await,
        "{engine:?}: the SIP engine got BYE"
    );
    // The carrier's report of the BYE changes nothing that was recorded.
    let (after, _) = wait_for(&server, &flow, &id, "settled", |c| {
        server.running.sip.as_ref().unwrap().live_calls() == 0 && c["status"] == "completed"
    })
    .await;
    assert_eq!(
        (after["hangup_cause"].clone(), after["cost_eur"].clone()),
        (json!("budget_exhausted"), json!(0.05)),
        "{engine:?}: {after}"
    );
    let (_, usage) = server.get("/v1/agent/usage", &flow.agent_token).await;
    assert_eq!(
        usage["usage"]["spend_this_month_eur"],
        json!(0.05),
        "{engine:?}: {usage}"
    );
    hooks
        .wait_until(15, "call.completed", |r| {
            r.iter().any(|c| c.event() == "call.completed")
        })
        .await;
    let completed: Vec<_> = hooks
        .requests()
        .iter()
        .filter(|c| c.event() == "call.completed")
        .map(|c| c.json())
        .collect();
    assert_eq!(completed.len(), 1, "{engine:?}: {completed:?}");
    let data = &completed[0]["data"];
    assert_eq!(
        (data["hangup_cause"].as_str(), data["status"].as_str()),
        (Some("budget_exhausted"), Some("completed")),
        "{engine:?}: {data}"
    );
    assert!(completed[0].to_string().contains(&id), "{engine:?}: {data}");
    // The carrier's report after our BYE comes too late to change the record; it is
    // audited as ignored.
    let actions = call_actions(&server, &key).await;
    let ended: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .skip_while(|a| *a != "call_completed")
        .collect();
    assert!(
        ended.first() == Some(&"call_completed")
            && ended[1..].iter().all(|a| *a == "call_status_ignored"),
        "{engine:?}: {actions:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_live_call_is_ended_with_a_bye_at_the_longest_call_allowed() {
    if sipp_ready() {
        on_every_engine(a_live_call_is_ended_with_a_bye_at_the_longest_call_allowed_on).await;
    }
}

async fn a_live_call_is_ended_with_a_bye_at_the_longest_call_allowed_on(engine: Engine) {
    let (trunk_port, engine_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let trunk = Sipp::uas("uas_answer_wait_bye", trunk_port).await;
    let sip_engine = Sipp::uas("uas_answer_wait_bye", engine_port).await;
    // `max_call_ms` at its floor of one minute.
    let (server, _) = sip_server(engine, trunk_port, &[("AMI_MAX_CALL_MS", "60000")]).await;
    let (_, flow) = sip_mid(&server).await;
    let callback = format!("sip:agent@127.0.0.1:{engine_port}");
    let id = place(&server, &flow, "+34600123456", &callback).await;
    wait_for(&server, &flow, &id, "answered", status_is("in_progress")).await;
    server.dispatcher_caught_up().await;
    server.clock.0.fetch_add(60_000, Ordering::SeqCst);
    let (ended, _) = wait_for(&server, &flow, &id, "ended", status_is("completed")).await;
    assert_eq!(
        (
            ended["hangup_cause"].as_str(),
            ended["duration_sec"].as_i64()
        ),
        (Some("max_duration"), Some(60)),
        "{engine:?}: {ended}"
    );
    assert!(trunk.passed().await, "{engine:?}: the trunk got BYE");
    assert!(
        sip_engine.passed().await,
        "{engine:?}: the SIP engine got BYE"
    );
    server.stop().await;
}
