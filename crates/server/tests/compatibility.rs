//! Existing AMI clients work unchanged: each point where this server once differed from the
//! public protocol without a decision of ours, driven over HTTP exactly as a protocol client
//! (an SDK, an MCP client, a carrier) would, on both engines. The deliberate differences are
//! listed in `docs/compatibility.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, TestServer, customer_data, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// 1. `GET /v1/sim-options`: `countries` keyed by country code, as the SDK indexes it.
#[tokio::test]
async fn sim_options_are_keyed_by_country_code() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let (s, v) = server.get("/v1/sim-options", &key).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let countries = v["countries"].as_object().expect("countries is an object");
        for (code, prefix, monthly, setup, currency) in [
            ("ES", "+34", 8.9, 5.0, "EUR"),
            ("CO", "+57", 32000.0, 18000.0, "COP"),
        ] {
            let c = &countries[code];
            assert_eq!(c["msisdn_prefix"], prefix, "{engine:?} {c}");
            assert_eq!(c["price"]["monthly"].as_f64(), Some(monthly), "{c}");
            assert_eq!(c["price"]["setup"].as_f64(), Some(setup), "{c}");
            assert_eq!(c["price"]["currency"], currency, "{c}");
            assert!(c["sim_types"].as_array().unwrap().contains(&json!("eSIM")));
            let caps = c["capabilities"].as_array().unwrap();
            assert!(caps.contains(&json!("sms")) && caps.contains(&json!("voice")));
        }
        server.stop().await;
    }
}

/// 2. Contracts carry the `signing_token` for their owner, on creation and on every read; it
/// is the token of the signing link, another account gets the 404 of a missing contract, and
/// the token is in no audit event.
#[tokio::test]
async fn contracts_return_the_signing_token_to_their_owner() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let (_, other) = server.customer("Other").await;
        let (_, offer, customer) = server.up_to_customer_data(&key).await;
        let (s, created) = server
            .post(
                "/v1/contracts",
                &key,
                json!({"offer_id": offer, "customer_id": customer}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {created}");
        let id = created["id"].as_str().unwrap();
        let token = created["signing_token"].as_str().expect("signing_token");
        assert!(token.len() >= 32, "{token}");
        let url = created["signature_url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/v1/sign/{id}?t={token}")), "{url}");

        let (s, read) = server.get(&format!("/v1/contracts/{id}"), &key).await;
        assert_eq!(s, StatusCode::OK, "{read}");
        assert_eq!(read["signing_token"], token, "{engine:?} {read}");
        assert_eq!(read["signature_url"], url, "{read}");

        // The token opens the signing page; another account sees no contract at all.
        let res = server
            .http
            .get(format!("{}/v1/sign/{id}?t={token}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (s, foreign) = server.get(&format!("/v1/contracts/{id}"), &other).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{foreign}");
        assert!(!foreign.to_string().contains(token));

        let (s, events) = server.get("/v1/events?limit=200", &key).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !events.to_string().contains(token),
            "{engine:?}: token audited"
        );
        let (s, events) = server.get("/v1/admin/events?limit=200", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            !events.to_string().contains(token),
            "{engine:?}: token audited"
        );
        server.stop().await;
    }
}

const TELCO_KEY: &str = "test-telco-key-0123456789";

async fn start_with_telco(engine: common::Engine) -> TestServer {
    TestServer::start_with(engine, &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY)]).await
}

/// A carrier's callback: `X-Telco-Key`, JSON body.
async fn telco(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let res = server
        .http
        .post(format!("{}{path}", server.base))
        .header("x-telco-key", TELCO_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// 3. Telco callbacks: the inbound call answers `201 {call_id, forward_sip_uri, mid}`; an
/// unknown destination is `404 destination_not_found` on both inbound routes; a resent
/// status is an idempotent `200`.
#[tokio::test]
async fn telco_callbacks_answer_as_the_protocol_says() {
    for engine in engines() {
        let server = start_with_telco(engine).await;
        let (_, key) = server.customer("Carrier").await;
        let flow = server.provision(&key).await;
        let sip = "sip:agent@voice.example.com";
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/inbound-config", flow.mid),
                &key,
                json!({"inbound_sip_uri": sip}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");

        let (s, routed) = telco(
            &server,
            "/v1/_telco/calls/inbound",
            json!({"from": "+34611000001", "to": flow.phone_number, "telco_ref": "c-1"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {routed}");
        let call_id = routed["call_id"].as_str().expect("call_id");
        assert!(call_id.starts_with("call_"), "{routed}");
        assert_eq!(routed["forward_sip_uri"], sip, "{routed}");
        assert_eq!(routed["mid"], flow.mid.as_str(), "{routed}");

        for unknown in ["+34699999999", "+573009999999", "+34 699 99 99 98"] {
            for (path, mut body) in [
                ("/v1/_telco/calls/inbound", json!({"from": "+34611000001"})),
                (
                    "/v1/_telco/sms/inbound",
                    json!({"from": "+34611000001", "body": "hi"}),
                ),
            ] {
                body["to"] = json!(unknown);
                let (s, v) = telco(&server, path, body).await;
                assert_eq!(
                    (s, v["error"].as_str()),
                    (StatusCode::NOT_FOUND, Some("destination_not_found")),
                    "{engine:?} {path} {unknown}: {v}"
                );
            }
        }

        // Carriers resend: a repeated state answers 200 with the call unchanged.
        let path = format!("/v1/_telco/calls/{call_id}/status");
        let (s, first) = telco(
            &server,
            &path,
            json!({"status": "ringing", "telco_ref": "c-1"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {first}");
        assert_eq!(first["status"], "ringing");
        for _ in 0..2 {
            let (s, again) = telco(
                &server,
                &path,
                json!({"status": "ringing", "telco_ref": "c-1"}),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{engine:?} {again}");
            assert_eq!(again, first, "{engine:?}: a resend changed the call");
        }
        let (s, v) = telco(&server, &path, json!({"status": "in_progress"})).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("in_progress")),
            "{v}"
        );
        let (s, v) = telco(&server, &path, json!({"status": "in_progress"})).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("in_progress")),
            "{v}"
        );
        // Backwards is still refused.
        let (s, v) = telco(&server, &path, json!({"status": "ringing"})).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("invalid_call_transition")),
            "{engine:?} {v}"
        );
        server.stop().await;
    }
}

/// 4. Cancel keeps the reason the client gave, as `status_reason`, in the answer and on
/// every later read; without one the protocol's default applies.
#[tokio::test]
async fn cancel_keeps_the_given_reason() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        for (body, expected) in [
            (json!({"reason": "no_longer_needed"}), "no_longer_needed"),
            (json!({}), "cancelled_by_client"),
        ] {
            let (s, r) = server
                .post("/v1/sim-requests", &key, json!({"country": "ES"}))
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
            let id = r["sim_request"]["id"].as_str().unwrap();
            let (s, v) = server
                .post(&format!("/v1/sim-requests/{id}/cancel"), &key, body)
                .await;
            assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
            assert_eq!(v["status"], "cancelled", "{v}");
            assert_eq!(v["status_reason"], expected, "{engine:?} {v}");
            let (s, v) = server.get(&format!("/v1/sim-requests/{id}"), &key).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(v["status_reason"], expected, "{engine:?} {v}");
        }
        server.stop().await;
    }
}

/// 5. A country outside the catalogue is `400 unsupported_country` with the country asked
/// and the supported list, on sim requests and on the admin number inventory alike, and
/// changes nothing.
#[tokio::test]
async fn unsupported_countries_are_named_the_same_everywhere() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let before = server.event_count().await;
        for country in ["FR", "US", "es", "ZZZ"] {
            let (s, v) = server
                .post("/v1/sim-requests", &key, json!({"country": country}))
                .await;
            assert_eq!(
                (s, v["error"].as_str(), v["country"].as_str()),
                (
                    StatusCode::BAD_REQUEST,
                    Some("unsupported_country"),
                    Some(country)
                ),
                "{engine:?} {v}"
            );
            assert_eq!(v["supported"], json!(["ES", "CO"]), "{v}");
        }
        let (s, v) = server
            .post(
                "/v1/admin/numbers",
                ADMIN_KEY,
                json!({"country": "FR", "numbers": ["+33612345678"]}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str(), v["country"].as_str()),
            (
                StatusCode::BAD_REQUEST,
                Some("unsupported_country"),
                Some("FR")
            ),
            "{engine:?} {v}"
        );
        assert_eq!(v["supported"], json!(["ES", "CO"]), "{v}");
        assert_eq!(
            server.event_count().await,
            before,
            "{engine:?}: a refusal wrote"
        );
        let (_, list) = server.get("/v1/admin/numbers?limit=200", ADMIN_KEY).await;
        assert!(!list.to_string().contains("+33612345678"), "{list}");
        server.stop().await;
    }
}

/// The actions of the audit log (`GET /v1/events`) that a filter names.
async fn actions(server: &TestServer, key: &str, action: &str) -> Vec<Value> {
    let (s, v) = server
        .get(&format!("/v1/events?action={action}&limit=200"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

/// 6. The audit log uses the protocol's action names, so clients filtering `GET /v1/events`
/// find `sim_request_created`, `call_in_progress` and `sms_inbound`.
#[tokio::test]
async fn audit_actions_have_the_protocols_names() {
    for engine in engines() {
        let server = start_with_telco(engine).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let created = actions(&server, &key, "sim_request_created").await;
        assert_eq!(created.len(), 1, "{engine:?} {created:?}");
        assert_eq!(created[0]["entity_id"], flow.sim_request.as_str());

        let (s, v) = telco(
            &server,
            "/v1/_telco/sms/inbound",
            json!({"from": "+34611000001", "to": flow.phone_number, "body": "hello", "telco_ref": "in-1"}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let inbound = actions(&server, &key, "sms_inbound").await;
        assert_eq!(inbound.len(), 1, "{engine:?} {inbound:?}");
        assert_eq!(inbound[0]["entity_id"], v["id"]);
        assert!(
            !inbound[0].to_string().contains("hello"),
            "the body is never audited"
        );

        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/inbound-config", flow.mid),
                &key,
                json!({"inbound_sip_uri": "sip:agent@voice.example.com"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, routed) = telco(
            &server,
            "/v1/_telco/calls/inbound",
            json!({"from": "+34611000001", "to": flow.phone_number}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{routed}");
        let call = routed["call_id"].as_str().unwrap();
        let (s, v) = telco(
            &server,
            &format!("/v1/_telco/calls/{call}/status"),
            json!({"status": "in_progress"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let answered = actions(&server, &key, "call_in_progress").await;
        assert_eq!(answered.len(), 1, "{engine:?} {answered:?}");
        assert_eq!(answered[0]["entity_id"], call);
        for old in ["sim_request_requested", "call_answered", "sms_received"] {
            assert!(
                actions(&server, &key, old).await.is_empty(),
                "{engine:?} {old}"
            );
        }
        server.stop().await;
    }
}

/// The six contracting steps for a sim request `body`; returns the activation's answer.
async fn activate(server: &TestServer, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, r) = server.post("/v1/sim-requests", key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let sim_request = r["sim_request"]["id"].as_str().unwrap();
    let offer = r["offer"]["id"].as_str().unwrap();
    let (s, v) = server
        .post(&format!("/v1/offers/{offer}/accept"), key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = server
        .post(
            &format!("/v1/sim-requests/{sim_request}/customer-data"),
            key,
            customer_data(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let customer = v["customer"]["id"].as_str().unwrap();
    let (s, v) = server
        .post(
            "/v1/contracts",
            key,
            json!({"offer_id": offer, "customer_id": customer}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let contract = v["id"].as_str().unwrap();
    let (s, v) = server
        .post(
            &format!("/v1/contracts/{contract}/mock-sign"),
            key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    server
        .post(
            "/v1/mobile-identities/activate",
            key,
            json!({"contract_id": contract}),
        )
        .await
}

/// The whole inventory as the operator lists it.
async fn inventory(server: &TestServer, query: &str) -> Value {
    let (s, v) = server
        .get(&format!("/v1/admin/numbers?limit=200{query}"), ADMIN_KEY)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// 7. The admin number inventory: `number` or `numbers` with optional `capabilities`,
/// `201 {added, skipped, invalid, count}` and never all-or-nothing; `counts` and filters on
/// the list; disable and enable by E.164 number as well as by id; activation takes the
/// operator's numbers first and the sandbox's only for a country without any.
#[tokio::test]
async fn the_admin_number_inventory_works_as_the_protocol_says() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (s, v) = server
            .post(
                "/v1/admin/numbers",
                ADMIN_KEY,
                json!({"number": "+34 611 000 001", "country": "ES"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_eq!(
            (&v["added"], &v["skipped"], &v["invalid"], &v["count"]),
            (&json!(1), &json!(0), &json!([]), &json!(1)),
            "{engine:?} {v}"
        );
        let many = json!({
            "country": "ES",
            "capabilities": ["sms"],
            "numbers": ["+34611000001", "+34611000002", "+34611000003", "12", "not a number", "+573001234567"],
        });
        let (s, v) = server.post("/v1/admin/numbers", ADMIN_KEY, many).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_eq!(
            (&v["added"], &v["skipped"], &v["count"]),
            (&json!(2), &json!(1), &json!(6)),
            "{engine:?} {v}"
        );
        assert_eq!(
            v["invalid"],
            json!(["12", "not a number", "+573001234567"]),
            "{v}"
        );
        // All invalid is still an answer, not a failure.
        let (s, v) = server
            .post("/v1/admin/numbers", ADMIN_KEY, json!({"numbers": ["x"]}))
            .await;
        assert_eq!(
            (s, &v["added"], &v["invalid"]),
            (StatusCode::CREATED, &json!(0), &json!(["x"])),
            "{v}"
        );

        // The list: counts per status, filters by status and country.
        let all = inventory(&server, "").await;
        let counts = &all["counts"];
        assert_eq!(
            counts["total"].as_u64(),
            Some(all["numbers"].as_array().unwrap().len() as u64),
            "{counts}"
        );
        for status in ["available", "assigned", "quarantined", "disabled"] {
            let listed = all["numbers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["status"] == status)
                .count();
            assert_eq!(
                counts[status].as_u64(),
                Some(listed as u64),
                "{engine:?} {status}: {counts}"
            );
        }
        let es = inventory(&server, "&country=ES&status=available").await;
        let listed = es["numbers"].as_array().unwrap();
        assert!(
            listed
                .iter()
                .all(|n| n["country"] == "ES" && n["status"] == "available"),
            "{es}"
        );
        let ours: Vec<&Value> = listed
            .iter()
            .filter(|n| n["source"] == "operator")
            .collect();
        assert_eq!(ours.len(), 3, "{engine:?} {es}");
        let co = inventory(&server, "&country=CO").await;
        assert!(
            co["numbers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["country"] == "CO" && n["source"] == "sandbox"),
            "{co}"
        );
        assert_eq!(
            co["counts"]["total"].as_u64(),
            Some(co["numbers"].as_array().unwrap().len() as u64)
        );

        // Disable and enable by the E.164 number (URL-encoded +) and by id.
        let (s, v) = server
            .post(
                "/v1/admin/numbers/%2B34611000002/disable",
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("disabled")),
            "{engine:?} {v}"
        );
        assert_eq!(v["phone_number"], "+34611000002");
        assert_eq!(
            inventory(&server, "&country=ES").await["counts"]["disabled"],
            1
        );
        let (s, v) = server
            .post(
                "/v1/admin/numbers/%2B34611000002/enable",
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("available")),
            "{v}"
        );
        let id = v["id"].as_str().unwrap();
        let (s, v) = server
            .post(
                &format!("/v1/admin/numbers/{id}/disable"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("disabled")),
            "{v}"
        );
        let (s, v) = server
            .post(
                &format!("/v1/admin/numbers/{id}/enable"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("available")),
            "{v}"
        );
        let (s, v) = server
            .post(
                "/v1/admin/numbers/%2B34699999999/disable",
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("number_not_found")),
            "{v}"
        );

        // Activation: the operator's number of the country that carries what was asked.
        let (_, key) = server.customer("Acme").await;
        let (s, v) = activate(&server, &key, json!({"country": "ES"})).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_eq!(
            v["phone_number"], "+34611000001",
            "{engine:?}: the only voice number"
        );
        let (s, v) = activate(
            &server,
            &key,
            json!({"country": "ES", "capabilities": ["sms"]}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let sms_only = v["phone_number"].as_str().unwrap();
        assert!(
            ["+34611000002", "+34611000003"].contains(&sms_only),
            "{engine:?} {v}"
        );
        // The operator stocks Spain: no fictional number stands in for a missing real one.
        let (s, v) = activate(&server, &key, json!({"country": "ES"})).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("no_number_available")),
            "{engine:?} {v}"
        );
        // Colombia has no operator number: the sandbox serves it.
        let (s, v) = activate(&server, &key, json!({"country": "CO"})).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        let phone = v["phone_number"].as_str().unwrap().to_owned();
        let co = inventory(&server, "&country=CO&status=assigned").await;
        let taken = &co["numbers"][0];
        assert_eq!(
            (taken["phone_number"].as_str(), taken["source"].as_str()),
            (Some(phone.as_str()), Some("sandbox")),
            "{co}"
        );
        server.stop().await;
    }
}

/// 8. With the default limits a burst of 30 concurrent sends from one MID is accepted (a
/// token bucket with a burst allowance), while a sustained runaway is held to the
/// per-second rate. The test clock does not move by itself, so nothing refills unasked.
#[tokio::test]
async fn default_limits_let_a_real_agent_burst_and_stop_a_runaway() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let start = ami_core::time::parse_rfc3339("2027-03-10T10:00:00Z").unwrap();
        server
            .clock
            .0
            .store(start, std::sync::atomic::Ordering::SeqCst);
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let (s, v) = server
            .get(&format!("/v1/mobile-identities/{}/limits", flow.mid), &key)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (&v["limits"]["rate_per_second"], &v["limits"]["rate_burst"]),
            (&json!(1.0), &json!(30)),
            "{v}"
        );

        let send = |to: String| {
            let (http, url, token) = (
                server.http.clone(),
                format!("{}/v1/agent/sms/send", server.base),
                flow.agent_token.clone(),
            );
            async move {
                let res = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"to": to, "body": "hello"}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap())
            }
        };
        let tasks: Vec<_> = (0..30)
            .map(|i| tokio::spawn(send(format!("+346112000{i:02}"))))
            .collect();
        for t in tasks {
            let (s, v) = t.await.unwrap();
            assert_eq!(s, StatusCode::CREATED, "{engine:?}: {v}");
        }
        // The bucket is empty: the runaway's next send is refused, and then it gets one
        // send per second however hard it tries.
        let (s, v) = send("+34611200030".into()).await;
        assert_eq!(
            (s, v["reason"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("rate_per_second")),
            "{engine:?} {v}"
        );
        let mut accepted = 0;
        for second in 1..=5 {
            server
                .clock
                .0
                .store(start + second * 1000, std::sync::atomic::Ordering::SeqCst);
            for attempt in 0..4 {
                let (s, v) = send(format!("+3461130{second}{attempt:03}")).await;
                match s {
                    StatusCode::CREATED => accepted += 1,
                    _ => assert_eq!(v["reason"], "rate_per_second", "{engine:?} {v}"),
                }
            }
        }
        assert_eq!(accepted, 5, "{engine:?}: one per second after the burst");
        server.stop().await;
    }
}

/// 9. `/v1/health` names the carrier adapter under `telco.adapter`.
#[tokio::test]
async fn health_names_the_telco_adapter() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let res = server
            .http
            .get(format!("{}/v1/health", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["service"], "ami", "{v}");
        assert_eq!(v["telco"]["adapter"], "sandbox", "{engine:?} {v}");
        server.stop().await;
    }
}

/// 10. Discovery pages: `/` and `/index.html` are a short landing page linking the docs, the
/// agents' index and the OpenAPI document; `/favicon.ico` answers; every HTML response
/// (landing, docs, signing page, its missing-contract page) has a CSP with `default-src`.
#[tokio::test]
async fn discovery_pages_are_served_with_a_content_security_policy() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let get = |path: String| {
            let http = server.http.clone();
            let url = format!("{}{path}", server.base);
            async move { http.get(url).send().await.unwrap() }
        };
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let signing = &flow.signature_url[flow.signature_url.find("/v1/sign/").unwrap()..];
        let missing = format!("/v1/sign/{}?t=nope", flow.contract);
        for path in ["/", "/index.html", "/docs", signing, missing.as_str()] {
            let res = get(path.to_owned()).await;
            let html = res.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(html.starts_with("text/html"), "{engine:?} {path}: {html}");
            let csp = res
                .headers()
                .get("content-security-policy")
                .unwrap_or_else(|| panic!("{path}: no CSP"))
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("default-src"), "{path}: {csp}");
            let body = res.text().await.unwrap();
            if path == "/" || path == "/index.html" {
                for link in [
                    "href=\"/docs\"",
                    "href=\"/llms.txt\"",
                    "href=\"/openapi.json\"",
                ] {
                    assert!(body.contains(link), "{path}: no {link}");
                }
            }
        }
        let res = get("/favicon.ico".into()).await;
        assert!(
            [StatusCode::OK, StatusCode::NO_CONTENT].contains(&res.status()),
            "{}",
            res.status()
        );
        if res.status() == StatusCode::OK {
            assert_eq!(res.headers()["content-type"], "image/svg+xml");
            assert!(res.text().await.unwrap().starts_with("<svg"));
        }
        server.stop().await;
    }
}

/// A JSON-RPC call to `/mcp`, with or without an `Authorization` header.
async fn mcp(server: &TestServer, bearer: Option<&str>, method: &str, params: Value) -> Value {
    let mut req = server
        .http
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn mcp_tool(
    server: &TestServer,
    bearer: Option<&str>,
    name: &str,
    arguments: Value,
) -> Value {
    let v = mcp(
        server,
        bearer,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await;
    v["result"].clone()
}

/// 11. Agent tools take the protocol's optional `agent_token` argument instead of the
/// `Authorization` header; given both, they must name the same token.
#[tokio::test]
async fn mcp_agent_tools_take_the_agent_token_argument() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let other = server.provision(&key).await;
        let token = flow.agent_token.as_str();

        let listed = mcp(&server, None, "tools/list", json!({})).await;
        let tools = listed["result"]["tools"].as_array().unwrap();
        for name in [
            "ami.send_sms",
            "ami.list_sms",
            "ami.place_call",
            "ami.list_calls",
            "ami.get_call",
            "ami.hangup_call",
            "ami.get_my_usage",
        ] {
            let t = tools.iter().find(|t| t["name"] == name).unwrap();
            let kind = &t["inputSchema"]["properties"]["agent_token"]["type"];
            assert!(
                kind == "string"
                    || kind
                        .as_array()
                        .is_some_and(|k| k.contains(&json!("string"))),
                "{name}: {t}"
            );
        }

        // The argument alone is the credential.
        let sent = mcp_tool(
            &server,
            None,
            "ami.send_sms",
            json!({"to": "+34600123456", "body": "hi", "agent_token": token}),
        )
        .await;
        assert_eq!(sent["isError"], false, "{engine:?} {sent}");
        let sms = sent["structuredContent"]["id"].as_str().unwrap();
        let (s, v) = server.get(&format!("/v1/agent/sms/{sms}"), token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let listed = mcp_tool(&server, None, "ami.list_sms", json!({"agent_token": token})).await;
        assert_eq!(listed["structuredContent"]["count"], 1, "{listed}");
        let usage = mcp_tool(
            &server,
            None,
            "ami.get_my_usage",
            json!({"agent_token": token}),
        )
        .await;
        assert_eq!(
            usage["structuredContent"]["mid"],
            flow.mid.as_str(),
            "{usage}"
        );
        let placed = mcp_tool(
            &server,
            None,
            "ami.place_call",
            json!({"to": "+34600123457", "callback_sip_uri": "sip:agent@voice.example.com", "agent_token": token}),
        )
        .await;
        assert_eq!(placed["isError"], false, "{engine:?} {placed}");
        let call = placed["structuredContent"]["id"].as_str().unwrap();
        let got = mcp_tool(
            &server,
            None,
            "ami.get_call",
            json!({"call_id": call, "agent_token": token}),
        )
        .await;
        assert_eq!(got["structuredContent"]["id"], call, "{got}");
        let calls = mcp_tool(
            &server,
            None,
            "ami.list_calls",
            json!({"agent_token": token}),
        )
        .await;
        assert_eq!(calls["structuredContent"]["count"], 1, "{calls}");
        let hung = mcp_tool(
            &server,
            None,
            "ami.hangup_call",
            json!({"call_id": call, "agent_token": token}),
        )
        .await;
        assert_eq!(hung["isError"], false, "{hung}");

        // The same token in both places is fine; two different ones are refused.
        let same = mcp_tool(
            &server,
            Some(token),
            "ami.list_sms",
            json!({"agent_token": token}),
        )
        .await;
        assert_eq!(same["isError"], false, "{same}");
        let both = mcp_tool(
            &server,
            Some(token),
            "ami.list_sms",
            json!({"agent_token": other.agent_token}),
        )
        .await;
        assert_eq!(both["isError"], true, "{both}");
        assert_eq!(
            both["structuredContent"]["error"], "conflicting_credentials",
            "{both}"
        );
        // A wrong token is an unknown agent, as over REST.
        let wrong = mcp_tool(
            &server,
            None,
            "ami.list_sms",
            json!({"agent_token": format!("amiagt_live_{}", "0".repeat(64))}),
        )
        .await;
        assert_eq!(
            wrong["structuredContent"]["error"], "invalid_agent_token",
            "{wrong}"
        );
        server.stop().await;
    }
}

/// 12. A path no route serves answers `404 unknown_route`, whoever asks and however.
#[tokio::test]
async fn unknown_routes_answer_unknown_route() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        for (method, path, credential) in [
            (reqwest::Method::GET, "/v1/nope", None),
            (reqwest::Method::GET, "/v1/nope", Some(key.as_str())),
            (
                reqwest::Method::POST,
                "/v1/sim-requests/x/y/z",
                Some(key.as_str()),
            ),
            (reqwest::Method::GET, "/v2/health", None),
            (reqwest::Method::DELETE, "/nothing/here", Some(ADMIN_KEY)),
        ] {
            let (s, v) = server
                .remote()
                .call(method.clone(), path, credential, None)
                .await;
            assert_eq!(
                (s, v["error"].as_str()),
                (StatusCode::NOT_FOUND, Some("unknown_route")),
                "{engine:?} {method} {path}: {v}"
            );
        }
        server.stop().await;
    }
}
