//! The SIM request state machine (PROTOCOL §3.3) refuses every step that is not allowed in
//! the state a request is in: 409 with the §2/§3.3 code, and NOTHING changes (the request,
//! its offer, contract and MID read byte-for-byte the same, and no audit event is written).
//! Also: expiry of offers and contracts, an empty number pool, the audit trail of every
//! transition, and that cancelling a request awaiting its signature cancels the contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, customer_data, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every state a customer can drive a request into through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    OfferCreated,
    OfferAccepted,
    CustomerDataSubmitted,
    SignaturePending,
    Signed,
    Active,
    /// Cancelled right after the offer was created (no customer, no contract).
    CancelledEarly,
    /// Cancelled while the contract awaited its signature.
    CancelledLate,
    Rejected,
}

use Target::*;

const ALL: [Target; 9] = [
    OfferCreated,
    OfferAccepted,
    CustomerDataSubmitted,
    SignaturePending,
    Signed,
    Active,
    CancelledEarly,
    CancelledLate,
    Rejected,
];

impl Target {
    fn status(self) -> &'static str {
        match self {
            OfferCreated => "offer_created",
            OfferAccepted => "offer_accepted",
            CustomerDataSubmitted => "customer_data_submitted",
            SignaturePending => "signature_pending",
            Signed => "signed",
            Active => "active",
            CancelledEarly | CancelledLate => "cancelled",
            Rejected => "rejected",
        }
    }
}

/// The resources of one request, as far as it got.
#[derive(Debug, Clone, Default)]
struct Ids {
    sim_request: String,
    offer: String,
    customer: Option<String>,
    contract: Option<String>,
    mid: Option<String>,
}

async fn ok(
    server: &TestServer,
    key: &str,
    path: &str,
    body: Value,
    expected: StatusCode,
) -> Value {
    let (s, v) = server.post(path, key, body).await;
    assert_eq!(s, expected, "{path}: {v}");
    v
}

/// Creates a request and walks it to `target` through the public API.
async fn drive(server: &TestServer, key: &str, target: Target) -> Ids {
    let body = if target == Rejected {
        json!({"country": "ES", "commercial_constraints": {"max_monthly_price": 1, "currency": "EUR"}})
    } else {
        json!({"country": "ES"})
    };
    let r = ok(server, key, "/v1/sim-requests", body, StatusCode::CREATED).await;
    let mut ids = Ids {
        sim_request: r["sim_request"]["id"].as_str().unwrap().to_owned(),
        offer: r["offer"]["id"].as_str().unwrap().to_owned(),
        ..Ids::default()
    };
    let cancel = format!("/v1/sim-requests/{}/cancel", ids.sim_request);
    match target {
        Rejected => {
            assert_eq!(r["sim_request"]["status"], "rejected", "{r}");
            assert_eq!(r["offer"]["status"], "rejected", "{r}");
            return ids;
        }
        OfferCreated => return ids,
        CancelledEarly => {
            ok(
                server,
                key,
                &cancel,
                json!({"reason": "changed_mind"}),
                StatusCode::OK,
            )
            .await;
            return ids;
        }
        _ => {}
    }
    ok(
        server,
        key,
        &format!("/v1/offers/{}/accept", ids.offer),
        json!({}),
        StatusCode::OK,
    )
    .await;
    if target == OfferAccepted {
        return ids;
    }
    let v = ok(
        server,
        key,
        &format!("/v1/sim-requests/{}/customer-data", ids.sim_request),
        customer_data(),
        StatusCode::CREATED,
    )
    .await;
    ids.customer = Some(v["customer"]["id"].as_str().unwrap().to_owned());
    if target == CustomerDataSubmitted {
        return ids;
    }
    let v = ok(
        server,
        key,
        "/v1/contracts",
        json!({"offer_id": ids.offer, "customer_id": ids.customer}),
        StatusCode::CREATED,
    )
    .await;
    let contract = v["id"].as_str().unwrap().to_owned();
    ids.contract = Some(contract.clone());
    match target {
        SignaturePending => return ids,
        CancelledLate => {
            ok(
                server,
                key,
                &cancel,
                json!({"reason": "changed_mind"}),
                StatusCode::OK,
            )
            .await;
            return ids;
        }
        _ => {}
    }
    ok(
        server,
        key,
        &format!("/v1/contracts/{contract}/mock-sign"),
        json!({}),
        StatusCode::OK,
    )
    .await;
    if target == Signed {
        return ids;
    }
    let v = ok(
        server,
        key,
        "/v1/mobile-identities/activate",
        json!({"contract_id": contract}),
        StatusCode::CREATED,
    )
    .await;
    ids.mid = Some(v["id"].as_str().unwrap().to_owned());
    ids
}

/// Everything a refusal must leave untouched.
#[derive(Debug, PartialEq)]
struct Snapshot {
    sim_request: Value,
    offer: Value,
    contract: Option<Value>,
    mid: Option<Value>,
    events: usize,
}

async fn read(server: &TestServer, key: &str, path: &str) -> Value {
    let (s, v) = server.get(path, key).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

async fn snapshot(server: &TestServer, key: &str, ids: &Ids) -> Snapshot {
    Snapshot {
        sim_request: read(
            server,
            key,
            &format!("/v1/sim-requests/{}", ids.sim_request),
        )
        .await,
        offer: read(server, key, &format!("/v1/offers/{}", ids.offer)).await,
        contract: match &ids.contract {
            Some(c) => Some(read(server, key, &format!("/v1/contracts/{c}")).await),
            None => None,
        },
        mid: match &ids.mid {
            Some(m) => Some(read(server, key, &format!("/v1/mobile-identities/{m}")).await),
            None => None,
        },
        events: server.event_count().await,
    }
}

/// Posts a step that must be refused with `status`/`code`, and proves nothing changed.
async fn refused(
    server: &TestServer,
    key: &str,
    ids: &Ids,
    path: &str,
    body: Value,
    status: StatusCode,
    code: &str,
) -> Value {
    let before = snapshot(server, key, ids).await;
    let (s, v) = server.post(path, key, body).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (status, Some(code)),
        "{:?} {path}: {v}",
        server.engine
    );
    let after = snapshot(server, key, ids).await;
    assert_eq!(
        before, after,
        "{:?} {path} changed something",
        server.engine
    );
    v
}

/// A well-formed contract id that exists nowhere.
fn unknown_contract() -> String {
    ami_core::id::new_id("contract")
}

#[tokio::test]
async fn every_forbidden_step_is_refused_and_changes_nothing() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        for target in ALL {
            let ids = drive(&server, &key, target).await;
            let state = target.status();
            let snap = snapshot(&server, &key, &ids).await;
            assert_eq!(snap.sim_request["status"], state, "{engine:?} {target:?}");
            // A customer record of its own, for contract attempts before the data step.
            let legacy = ok(
                &server,
                &key,
                "/v1/customers",
                customer_data(),
                StatusCode::CREATED,
            )
            .await;
            let customer = ids
                .customer
                .clone()
                .unwrap_or_else(|| legacy["id"].as_str().unwrap().to_owned());
            let ctx = format!("{engine:?} {target:?}");

            // Accept the offer: only from offer_created.
            if target != OfferCreated {
                let path = format!("/v1/offers/{}/accept", ids.offer);
                refused(
                    &server,
                    &key,
                    &ids,
                    &path,
                    json!({}),
                    StatusCode::CONFLICT,
                    "offer_not_acceptable",
                )
                .await;
            }

            // Customer data: only in offer_accepted.
            if target != OfferAccepted {
                let path = format!("/v1/sim-requests/{}/customer-data", ids.sim_request);
                let v = refused(
                    &server,
                    &key,
                    &ids,
                    &path,
                    customer_data(),
                    StatusCode::CONFLICT,
                    "invalid_state",
                )
                .await;
                assert_eq!(
                    (v["expected"].as_str(), v["actual"].as_str()),
                    (Some("offer_accepted"), Some(state)),
                    "{ctx} {v}"
                );
            }

            // A contract: only once the offer is accepted and before one exists.
            let contract_refusal = match target {
                OfferAccepted | CustomerDataSubmitted => None,
                OfferCreated | CancelledEarly | Rejected => Some("offer_not_accepted"),
                SignaturePending | Signed | Active | CancelledLate => Some("invalid_state"),
            };
            if let Some(code) = contract_refusal {
                let body = json!({"offer_id": ids.offer, "customer_id": customer});
                let v = refused(
                    &server,
                    &key,
                    &ids,
                    "/v1/contracts",
                    body,
                    StatusCode::CONFLICT,
                    code,
                )
                .await;
                if code == "invalid_state" {
                    assert_eq!(v["expected"], "customer_data_submitted", "{ctx} {v}");
                    assert_eq!(v["actual"], state, "{ctx} {v}");
                }
            }

            // Mock-sign: only a contract awaiting its signature.
            let contract = ids.contract.clone().unwrap_or_else(unknown_contract);
            let sign = format!("/v1/contracts/{contract}/mock-sign");
            match target {
                SignaturePending => {}
                Signed | Active => {
                    refused(
                        &server,
                        &key,
                        &ids,
                        &sign,
                        json!({}),
                        StatusCode::CONFLICT,
                        "already_signed",
                    )
                    .await;
                }
                CancelledLate => {
                    refused(
                        &server,
                        &key,
                        &ids,
                        &sign,
                        json!({}),
                        StatusCode::CONFLICT,
                        "contract_not_pending",
                    )
                    .await;
                }
                OfferCreated
                | OfferAccepted
                | CustomerDataSubmitted
                | CancelledEarly
                | Rejected => {
                    refused(
                        &server,
                        &key,
                        &ids,
                        &sign,
                        json!({}),
                        StatusCode::NOT_FOUND,
                        "contract_not_found",
                    )
                    .await;
                }
            }

            // Activation: only with a signed contract of a signed request.
            let activate = json!({"contract_id": contract});
            let path = "/v1/mobile-identities/activate";
            match target {
                Signed => {}
                SignaturePending | CancelledLate => {
                    refused(
                        &server,
                        &key,
                        &ids,
                        path,
                        activate,
                        StatusCode::CONFLICT,
                        "contract_not_signed",
                    )
                    .await;
                }
                Active => {
                    // The contract is signed; the request already went past `signed`.
                    let v = refused(
                        &server,
                        &key,
                        &ids,
                        path,
                        activate,
                        StatusCode::CONFLICT,
                        "invalid_state",
                    )
                    .await;
                    assert_eq!(
                        (v["expected"].as_str(), v["actual"].as_str()),
                        (Some("signed"), Some("active")),
                        "{ctx}"
                    );
                }
                OfferCreated
                | OfferAccepted
                | CustomerDataSubmitted
                | CancelledEarly
                | Rejected => {
                    refused(
                        &server,
                        &key,
                        &ids,
                        path,
                        activate,
                        StatusCode::NOT_FOUND,
                        "contract_not_found",
                    )
                    .await;
                }
            }

            // Cancel: every non-terminal state before the signature.
            let cancel = format!("/v1/sim-requests/{}/cancel", ids.sim_request);
            let cancel_refusal = match target {
                OfferCreated | OfferAccepted | CustomerDataSubmitted | SignaturePending => None,
                Signed => Some("invalid_transition"),
                Active | CancelledEarly | CancelledLate | Rejected => Some("already_terminal"),
            };
            if let Some(code) = cancel_refusal {
                refused(
                    &server,
                    &key,
                    &ids,
                    &cancel,
                    json!({}),
                    StatusCode::CONFLICT,
                    code,
                )
                .await;
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn an_expired_offer_cannot_be_accepted() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let ids = drive(&server, &key, OfferCreated).await;
        server.clock.advance_days(8);
        let offer = read(&server, &key, &format!("/v1/offers/{}", ids.offer)).await;
        assert_eq!(offer["status"], "expired", "{engine:?} {offer}");
        let path = format!("/v1/offers/{}/accept", ids.offer);
        refused(
            &server,
            &key,
            &ids,
            &path,
            json!({}),
            StatusCode::CONFLICT,
            "offer_not_acceptable",
        )
        .await;
        let req = read(
            &server,
            &key,
            &format!("/v1/sim-requests/{}", ids.sim_request),
        )
        .await;
        assert_eq!(req["status"], "offer_created", "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn an_expired_contract_cannot_be_signed() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let ids = drive(&server, &key, SignaturePending).await;
        let contract = ids.contract.clone().unwrap();
        server.clock.advance_days(8);
        let path = format!("/v1/contracts/{contract}/mock-sign");
        refused(
            &server,
            &key,
            &ids,
            &path,
            json!({}),
            StatusCode::CONFLICT,
            "contract_expired",
        )
        .await;
        let c = read(&server, &key, &format!("/v1/contracts/{contract}")).await;
        assert_eq!(c["status"], "expired", "{engine:?} {c}");
        let body = json!({"contract_id": contract});
        refused(
            &server,
            &key,
            &ids,
            "/v1/mobile-identities/activate",
            body,
            StatusCode::CONFLICT,
            "contract_not_signed",
        )
        .await;
        server.stop().await;
    }
}

#[tokio::test]
async fn activation_without_a_free_number_is_refused_and_the_request_stays_signed() {
    for engine in engines() {
        let pool = r#"[{country = "ES", from = "+34600000000", count = 1}]"#;
        let server = TestServer::start_with(engine, &[("AMI_SANDBOX_POOL", pool)]).await;
        let (_, key) = server.customer("Acme").await;
        server.provision(&key).await;
        let ids = drive(&server, &key, Signed).await;
        let body = json!({"contract_id": ids.contract});
        refused(
            &server,
            &key,
            &ids,
            "/v1/mobile-identities/activate",
            body,
            StatusCode::CONFLICT,
            "no_number_available",
        )
        .await;
        let req = read(
            &server,
            &key,
            &format!("/v1/sim-requests/{}", ids.sim_request),
        )
        .await;
        assert_eq!(req["status"], "signed", "{engine:?} {req}");
        assert!(req["mobile_identity_id"].is_null(), "{engine:?} {req}");
        server.stop().await;
    }
}

/// The request's own `sim_request_*` audit events, keyed by the status they record.
async fn transitions(server: &TestServer, key: &str, sim_request: &str) -> Vec<Value> {
    let v = read(
        server,
        key,
        &format!("/v1/events?entity_id={sim_request}&limit=1000"),
    )
    .await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("sim_request_"))
        .cloned()
        .collect()
}

/// Each status along `path` was entered exactly once, from the one before, as recorded.
fn assert_path(events: &[Value], path: &[&str], ctx: &str) {
    assert_eq!(events.len(), path.len(), "{ctx}: {events:?}");
    for (i, to) in path.iter().enumerate() {
        // The request's first status is audited under the protocol's name.
        let action = match *to {
            "requested" => "sim_request_created".to_owned(),
            to => format!("sim_request_{to}"),
        };
        let e = events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{ctx}: no {action} in {events:?}"));
        let data = e["data"].as_object().unwrap();
        for field in ["from", "to", "reason"] {
            assert!(data.contains_key(field), "{ctx}: {field} missing in {e}");
        }
        assert_eq!(data["to"], *to, "{ctx}: {e}");
        let from = if i == 0 {
            Value::Null
        } else {
            json!(path[i - 1])
        };
        assert_eq!(data["from"], from, "{ctx}: {e}");
        if ["cancelled", "rejected", "failed"].contains(to) {
            assert!(
                data["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{ctx}: a {to} needs a reason: {e}"
            );
        }
    }
}

#[tokio::test]
async fn every_transition_is_audited_with_from_to_and_reason() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let ctx = format!("{engine:?}");

        let flow = server.provision(&key).await;
        let happy = [
            "requested",
            "offer_created",
            "offer_accepted",
            "customer_data_submitted",
            "signature_pending",
            "signed",
            "provisioning",
            "active",
        ];
        assert_path(
            &transitions(&server, &key, &flow.sim_request).await,
            &happy,
            &ctx,
        );

        let rejected = drive(&server, &key, Rejected).await;
        let events = transitions(&server, &key, &rejected.sim_request).await;
        assert_path(&events, &["requested", "offer_created", "rejected"], &ctx);
        let req = read(
            &server,
            &key,
            &format!("/v1/sim-requests/{}", rejected.sim_request),
        )
        .await;
        assert_eq!(
            req["reason"], "price_above_max_monthly_price",
            "{ctx} {req}"
        );

        let cancelled = drive(&server, &key, CancelledLate).await;
        let events = transitions(&server, &key, &cancelled.sim_request).await;
        let path = [
            "requested",
            "offer_created",
            "offer_accepted",
            "customer_data_submitted",
            "signature_pending",
            "cancelled",
        ];
        assert_path(&events, &path, &ctx);
        let e = events
            .iter()
            .find(|e| e["action"] == "sim_request_cancelled")
            .unwrap();
        assert_eq!(e["data"]["reason"], "changed_mind", "{ctx} {e}");

        // Without a reason, a cancellation still carries the default one.
        let early = drive(&server, &key, OfferCreated).await;
        ok(
            &server,
            &key,
            &format!("/v1/sim-requests/{}/cancel", early.sim_request),
            json!({}),
            StatusCode::OK,
        )
        .await;
        let events = transitions(&server, &key, &early.sim_request).await;
        assert_path(&events, &["requested", "offer_created", "cancelled"], &ctx);
        let req = read(
            &server,
            &key,
            &format!("/v1/sim-requests/{}", early.sim_request),
        )
        .await;
        assert_eq!(req["reason"], "cancelled_by_client", "{ctx} {req}");
        server.stop().await;
    }
}

#[tokio::test]
async fn cancelling_during_signature_cancels_the_contract() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let ids = drive(&server, &key, SignaturePending).await;
        let contract = ids.contract.clone().unwrap();
        let (s, created) = server.get(&format!("/v1/contracts/{contract}"), &key).await;
        assert_eq!(
            (s, created["status"].as_str()),
            (StatusCode::OK, Some("signature_pending"))
        );

        let path = format!("/v1/sim-requests/{}/cancel", ids.sim_request);
        let v = ok(
            &server,
            &key,
            &path,
            json!({"reason": "no_longer_needed"}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            (v["status"].as_str(), v["reason"].as_str()),
            (Some("cancelled"), Some("no_longer_needed")),
            "{v}"
        );
        let c = read(&server, &key, &format!("/v1/contracts/{contract}")).await;
        assert_eq!(c["status"], "cancelled", "{engine:?} {c}");

        let sign = format!("/v1/contracts/{contract}/mock-sign");
        refused(
            &server,
            &key,
            &ids,
            &sign,
            json!({}),
            StatusCode::CONFLICT,
            "contract_not_pending",
        )
        .await;
        let body = json!({"contract_id": contract});
        refused(
            &server,
            &key,
            &ids,
            "/v1/mobile-identities/activate",
            body,
            StatusCode::CONFLICT,
            "contract_not_signed",
        )
        .await;
        server.stop().await;
    }
}
