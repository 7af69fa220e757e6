//! Contracting and MID administration behave as PROTOCOL §3.2–§3.4 and §5 say: request
//! defaults and validation, the exact offer and contract shapes, customer data rules, the
//! legacy customer record, the public signing page (token, headers, double signature), the
//! mock-sign switch, the catalogue; then MID reads, paging, token rotation,
//! inbound SIP config, limits (every field validated, nothing changed on refusal), release
//! and quarantine, manual MIDs, and the operator's account and number inventory rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, TestServer, customer_data, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    assert!(s.ends_with('Z'), "timestamps are UTC with Z: {s}");
    ami_core::time::parse_rfc3339(s).unwrap_or_else(|| panic!("not RFC 3339: {s}"))
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    k.sort();
    k
}

async fn expect(
    server: &TestServer,
    path: &str,
    key: &str,
    body: Value,
    status: StatusCode,
) -> Value {
    let (s, v) = server.post(path, key, body).await;
    assert_eq!(s, status, "{:?} {path}: {v}", server.engine);
    v
}

async fn expect_error(
    server: &TestServer,
    path: &str,
    key: &str,
    body: Value,
    status: StatusCode,
    code: &str,
) -> Value {
    let (s, v) = server.post(path, key, body).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (status, Some(code)),
        "{:?} {path}: {v}",
        server.engine
    );
    v
}

async fn read(server: &TestServer, path: &str, key: &str) -> Value {
    let (s, v) = server.get(path, key).await;
    assert_eq!(s, StatusCode::OK, "{:?} {path}: {v}", server.engine);
    v
}

/// A request with its offer accepted: (sim request id, offer id).
async fn accepted_offer(server: &TestServer, key: &str) -> (String, String) {
    let r = expect(
        server,
        "/v1/sim-requests",
        key,
        json!({}),
        StatusCode::CREATED,
    )
    .await;
    let (req, offer) = (
        r["sim_request"]["id"].as_str().unwrap().to_owned(),
        r["offer"]["id"].as_str().unwrap().to_owned(),
    );
    expect(
        server,
        &format!("/v1/offers/{offer}/accept"),
        key,
        json!({}),
        StatusCode::OK,
    )
    .await;
    (req, offer)
}

/// A contract awaiting its signature: (contract id, signature_url).
async fn pending_contract(server: &TestServer, key: &str) -> (String, String) {
    let (req, offer) = accepted_offer(server, key).await;
    let v = expect(
        server,
        &format!("/v1/sim-requests/{req}/customer-data"),
        key,
        customer_data(),
        StatusCode::CREATED,
    )
    .await;
    let body = json!({"offer_id": offer, "customer_id": v["customer"]["id"]});
    let c = expect(server, "/v1/contracts", key, body, StatusCode::CREATED).await;
    (
        c["id"].as_str().unwrap().to_owned(),
        c["signature_url"].as_str().unwrap().to_owned(),
    )
}

// ---------------------------------------------------------------------------------------
// §3.3 contracting
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sim_request_defaults_and_the_exact_offer() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Acme").await;
        let r = expect(
            &server,
            "/v1/sim-requests",
            &key,
            json!({}),
            StatusCode::CREATED,
        )
        .await;
        let (req, offer) = (&r["sim_request"], &r["offer"]);
        assert!(req["id"].as_str().unwrap().starts_with("simreq_"), "{req}");
        assert_eq!(req["status"], "offer_created");
        assert_eq!(req["country"], "ES");
        assert_eq!(req["sim_type"], "eSIM");
        assert_eq!(req["capabilities"], json!(["sms", "voice"]));
        assert_eq!(req["offer_id"], offer["id"]);

        let fields = [
            "id",
            "sim_request_id",
            "status",
            "country",
            "sim_type",
            "capabilities",
            "monthly_price",
            "setup_fee",
            "currency",
            "requires_contract",
            "requires_customer_data",
            "expires_at",
            "created_at",
            "accepted_at",
            "account_id",
        ];
        assert_eq!(keys(offer), sorted(&fields), "{engine:?} {offer}");
        assert!(offer["id"].as_str().unwrap().starts_with("offer_"));
        assert_eq!(offer["sim_request_id"], req["id"]);
        assert_eq!(offer["status"], "offer_created");
        assert_eq!(offer["country"], "ES");
        assert_eq!(offer["sim_type"], "eSIM");
        assert_eq!(offer["capabilities"], json!(["sms", "voice"]));
        assert_eq!(offer["monthly_price"], json!(8.9));
        assert_eq!(offer["setup_fee"], json!(5.0));
        assert_eq!(offer["currency"], "EUR");
        assert_eq!(offer["requires_contract"], true);
        assert_eq!(offer["requires_customer_data"], true);
        assert!(offer["accepted_at"].is_null());
        assert_eq!(offer["account_id"], account.as_str());
        assert_eq!(
            ms(&offer["expires_at"]) - ms(&offer["created_at"]),
            7 * DAY_MS,
            "{offer}"
        );

        // GET reads the same offer; accepting stamps it.
        let id = offer["id"].as_str().unwrap();
        assert_eq!(
            read(&server, &format!("/v1/offers/{id}"), &key).await,
            *offer
        );
        let accepted = expect(
            &server,
            &format!("/v1/offers/{id}/accept"),
            &key,
            json!({}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(accepted["status"], "offer_accepted");
        assert!(ms(&accepted["accepted_at"]) > 0);
        let missing = ami_core::id::new_id("offer");
        expect_error(
            &server,
            &format!("/v1/offers/{missing}/accept"),
            &key,
            json!({}),
            StatusCode::NOT_FOUND,
            "offer_not_found",
        )
        .await;

        // Everything optional given explicitly.
        let body = json!({"country": "ES", "sim_type": "physical", "capabilities": ["sms"],
                          "agent": {"name": "bot", "purpose": "otp"},
                          "commercial_constraints": {"max_monthly_price": 20, "currency": "EUR"}});
        let r = expect(&server, "/v1/sim-requests", &key, body, StatusCode::CREATED).await;
        assert_eq!(r["offer"]["sim_type"], "physical");
        assert_eq!(r["offer"]["capabilities"], json!(["sms"]));
        assert_eq!(r["sim_request"]["status"], "offer_created");

        // The CO offer is priced in COP.
        let r = expect(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "CO"}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(r["offer"]["country"], "CO");
        assert_eq!(r["offer"]["monthly_price"], json!(32000.0));
        assert_eq!(r["offer"]["setup_fee"], json!(18000.0));
        assert_eq!(r["offer"]["currency"], "COP");
        server.stop().await;
    }
}

#[tokio::test]
async fn sim_request_validation() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let before = server.event_count().await;
        let bad = StatusCode::BAD_REQUEST;
        expect_error(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "FR"}),
            bad,
            "unsupported_country",
        )
        .await;
        expect_error(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"sim_type": "nano"}),
            bad,
            "invalid_sim_type",
        )
        .await;
        for caps in [json!(["fax"]), json!([]), json!(["sms", "mms"])] {
            expect_error(
                &server,
                "/v1/sim-requests",
                &key,
                json!({"capabilities": caps}),
                bad,
                "invalid_capabilities",
            )
            .await;
        }
        assert_eq!(
            server.event_count().await,
            before,
            "{engine:?}: a refused request wrote something"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn customer_data_rules() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let (req, _) = accepted_offer(&server, &key).await;
        let path = format!("/v1/sim-requests/{req}/customer-data");
        let bad = StatusCode::BAD_REQUEST;

        let v = expect_error(&server, &path, &key, json!({}), bad, "missing_fields").await;
        let all = json!([
            "legal_name",
            "tax_id",
            "billing_email",
            "address",
            "representative_name"
        ]);
        assert_eq!(v["fields"], all, "{engine:?}");
        let partial =
            json!({"customer": {"legal_name": "Acme SL", "address": "Calle 1", "tax_id": "  "}});
        let v = expect_error(&server, &path, &key, partial, bad, "missing_fields").await;
        assert_eq!(
            v["fields"],
            json!(["tax_id", "billing_email", "representative_name"]),
            "{engine:?}"
        );

        let mut wrong_email = customer_data();
        wrong_email["customer"]["billing_email"] = json!("not-an-email");
        expect_error(
            &server,
            &path,
            &key,
            wrong_email,
            bad,
            "invalid_billing_email",
        )
        .await;
        let r = read(&server, &format!("/v1/sim-requests/{req}"), &key).await;
        assert_eq!(
            r["status"], "offer_accepted",
            "{engine:?}: a refusal moved the request"
        );

        // The flat form is accepted.
        let flat = customer_data()["customer"].clone();
        let v = expect(&server, &path, &key, flat, StatusCode::CREATED).await;
        assert_eq!(v["sim_request"]["status"], "customer_data_submitted");
        assert_eq!(v["customer"]["legal_name"], "Acme Robotics SL");
        assert_eq!(v["customer"]["representative_phone"], "+34600111222");
        assert!(
            v["customer"]["id"]
                .as_str()
                .unwrap()
                .starts_with("customer_")
        );
        assert_eq!(v["sim_request"]["customer_id"], v["customer"]["id"]);
        server.stop().await;
    }
}

#[tokio::test]
async fn legacy_customer_record_feeds_a_contract() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Acme").await;
        let created = expect(
            &server,
            "/v1/customers",
            &key,
            customer_data(),
            StatusCode::CREATED,
        )
        .await;
        let customer = created["id"].as_str().unwrap();
        assert!(customer.starts_with("customer_"), "{created}");
        assert_eq!(created["account_id"], account.as_str());
        assert_eq!(
            read(&server, &format!("/v1/customers/{customer}"), &key).await,
            created
        );
        expect_error(
            &server,
            "/v1/customers",
            &key,
            json!({"legal_name": "X"}),
            StatusCode::BAD_REQUEST,
            "missing_fields",
        )
        .await;

        let (req, offer) = accepted_offer(&server, &key).await;
        let c = expect(
            &server,
            "/v1/contracts",
            &key,
            json!({"offer_id": offer, "customer_id": customer}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(c["customer_id"], customer);
        let r = read(&server, &format!("/v1/sim-requests/{req}"), &key).await;
        assert_eq!(r["status"], "signature_pending", "{engine:?}");
        assert_eq!(r["customer_id"], customer);
        assert_eq!(r["contract_id"], c["id"]);
        server.stop().await;
    }
}

#[tokio::test]
async fn contract_fields_and_the_signing_token_for_its_owner_only() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Acme").await;
        let (req, offer) = accepted_offer(&server, &key).await;
        let v = expect(
            &server,
            &format!("/v1/sim-requests/{req}/customer-data"),
            &key,
            customer_data(),
            StatusCode::CREATED,
        )
        .await;
        let customer = v["customer"]["id"].as_str().unwrap().to_owned();
        let body = json!({"offer_id": offer, "customer_id": customer});
        let c = expect(&server, "/v1/contracts", &key, body, StatusCode::CREATED).await;
        let id = c["id"].as_str().unwrap();
        assert!(id.starts_with("contract_"), "{c}");
        assert_eq!(c["status"], "signature_pending");
        assert_eq!(c["offer_id"], offer.as_str());
        assert_eq!(c["customer_id"], customer.as_str());
        assert_eq!(c["sim_request_id"], req.as_str());
        assert_eq!(c["account_id"], account.as_str());
        assert_eq!(
            ms(&c["expires_at"]) - ms(&c["created_at"]),
            7 * DAY_MS,
            "{c}"
        );
        let url = c["signature_url"].as_str().unwrap();
        let (_, token) = url
            .split_once(&format!("/v1/sign/{id}?t="))
            .unwrap_or_else(|| panic!("{url}"));
        assert!(
            token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
            "{url}"
        );

        // The owner reads it again on the contract (docs/compatibility.md); never on the
        // request nor in the audit log.
        for path in [
            format!("/v1/sim-requests/{req}"),
            "/v1/events?limit=1000".to_owned(),
        ] {
            let (s, v) = server.get(&path, &key).await;
            assert_eq!(s, StatusCode::OK);
            assert!(
                !v.to_string().contains(token),
                "{engine:?} {path} shows the signing token"
            );
        }
        let again = read(&server, &format!("/v1/contracts/{id}"), &key).await;
        assert_eq!(again["signing_token"], token, "{again}");
        assert_eq!(again["signature_url"], url, "{again}");
        assert_eq!(again["status"], "signature_pending");
        server.stop().await;
    }
}

async fn page(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = server
        .http
        .request(method, format!("{}{path}", server.base))
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_signing_page() {
    use reqwest::Method;
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let (id, url) = pending_contract(&server, &key).await;
        let path = &url[url.find("/v1/sign/").unwrap()..];
        let token = path.split_once("?t=").unwrap().1;

        let (s, h, html) = page(&server, Method::GET, path).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {html}");
        assert!(header(&h, "content-type").starts_with("text/html"), "{h:?}");
        assert!(html.contains(&id), "the page names the contract");
        assert!(
            html.contains(&format!("action=\"/v1/sign/{id}/confirm?t={token}\"")),
            "{html}"
        );
        assert!(html.contains("method=\"post\""));
        assert!(!header(&h, "content-security-policy").is_empty(), "{h:?}");
        assert_eq!(header(&h, "referrer-policy"), "no-referrer");
        assert_eq!(header(&h, "cache-control"), "no-store");

        // Any other token, or none, is a 404 page, and signs nothing.
        let other = "0".repeat(64);
        for bad in [
            format!("/v1/sign/{id}?t={other}"),
            format!("/v1/sign/{id}"),
            format!("/v1/sign/{id}?t="),
        ] {
            let (s, _, _) = page(&server, Method::GET, &bad).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{engine:?} GET {bad}");
            let confirm = bad.replacen(&id, &format!("{id}/confirm"), 1);
            let (s, _, _) = page(&server, Method::POST, &confirm).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{engine:?} POST {confirm}");
        }
        let unknown = ami_core::id::new_id("contract");
        let (s, _, _) = page(
            &server,
            Method::GET,
            &format!("/v1/sign/{unknown}?t={token}"),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            read(&server, &format!("/v1/contracts/{id}"), &key).await["status"],
            "signature_pending"
        );

        // The representative signs; activation then works.
        let confirm = format!("/v1/sign/{id}/confirm?t={token}");
        let (s, h, html) = page(&server, Method::POST, &confirm).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {html}");
        assert!(header(&h, "content-type").starts_with("text/html"));
        assert_eq!(header(&h, "cache-control"), "no-store");
        assert!(html.contains("signed"), "{html}");
        let c = read(&server, &format!("/v1/contracts/{id}"), &key).await;
        assert_eq!(c["status"], "signed", "{engine:?} {c}");
        assert!(ms(&c["signed_at"]) > 0);

        let (s, _, html) = page(&server, Method::POST, &confirm).await;
        assert_eq!(s, StatusCode::CONFLICT, "{engine:?}: signed twice");
        assert!(html.contains("already signed"), "{html}");

        let mid = expect(
            &server,
            "/v1/mobile-identities/activate",
            &key,
            json!({"contract_id": id}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(mid["status"], "active");
        server.stop().await;
    }
}

#[tokio::test]
async fn mock_sign_can_be_switched_off_while_the_page_still_signs() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_MOCK_SIGN_ENABLED", "false")]).await;
        let (_, key) = server.customer("Acme").await;
        let (id, url) = pending_contract(&server, &key).await;
        let before = server.event_count().await;
        let path = format!("/v1/contracts/{id}/mock-sign");
        expect_error(
            &server,
            &path,
            &key,
            json!({}),
            StatusCode::FORBIDDEN,
            "mock_sign_disabled",
        )
        .await;
        assert_eq!(server.event_count().await, before);
        assert_eq!(
            read(&server, &format!("/v1/contracts/{id}"), &key).await["status"],
            "signature_pending"
        );

        let confirm = url[url.find("/v1/sign/").unwrap()..].replacen("?t=", "/confirm?t=", 1);
        let (s, _, html) = page(&server, reqwest::Method::POST, &confirm).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {html}");
        let mid = expect(
            &server,
            "/v1/mobile-identities/activate",
            &key,
            json!({"contract_id": id}),
            StatusCode::CREATED,
        )
        .await;
        assert!(
            mid["agent_token"]
                .as_str()
                .unwrap()
                .starts_with("amiagt_live_")
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn sim_options_lists_the_catalogue() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let v = read(&server, "/v1/sim-options", &key).await;
        // An object keyed by country code (PROTOCOL §3.1), not a list.
        let countries = v["countries"].as_object().unwrap();
        for (code, prefix, currency, price, setup) in [
            ("ES", "+34", "EUR", 8.9, 5.0),
            ("CO", "+57", "COP", 32000.0, 18000.0),
        ] {
            let c = &countries[code];
            assert_eq!(c["code"], code, "{c}");
            assert_eq!(c["msisdn_prefix"], prefix, "{c}");
            assert_eq!(
                c["price"],
                json!({"monthly": price, "setup": setup, "currency": currency}),
                "{c}"
            );
            assert_eq!(c["sim_types"], json!(["eSIM", "physical"]), "{c}");
            assert_eq!(c["capabilities"], json!(["sms", "voice"]), "{c}");
        }
        let (s, _) = server
            .call(reqwest::Method::GET, "/v1/sim-options", None, None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// §3.4 MID administration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn mids_are_read_and_listed_without_tokens() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Acme").await;
        let a = server.provision(&key).await;
        let b = server.provision(&key).await;

        let m = read(&server, &format!("/v1/mobile-identities/{}", a.mid), &key).await;
        assert_eq!(m["id"], a.mid.as_str());
        assert_eq!(m["account_id"], account.as_str());
        assert_eq!(m["phone_number"], a.phone_number.as_str());
        assert_eq!(m["status"], "active");
        assert!(m.get("agent_token").is_none(), "{m}");
        assert!(!m.to_string().contains(&a.agent_token), "{engine:?}");

        let all = read(&server, "/v1/mobile-identities", &key).await;
        assert_eq!(all["count"], 2, "{all}");
        assert!(all["next_cursor"].is_null());
        assert!(
            !all.to_string().contains("amiagt_live_"),
            "{engine:?}: a token in the list"
        );

        let first = read(&server, "/v1/mobile-identities?limit=1", &key).await;
        assert_eq!(first["count"], 1, "{first}");
        let cursor = first["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{engine:?} no next_cursor: {first}"));
        let second = read(
            &server,
            &format!("/v1/mobile-identities?limit=1&cursor={cursor}"),
            &key,
        )
        .await;
        assert_eq!(second["count"], 1, "{second}");
        assert!(second["next_cursor"].is_null(), "{second}");
        let mut seen = vec![
            first["mobile_identities"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            second["mobile_identities"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ];
        seen.sort();
        let mut expected = vec![a.mid.clone(), b.mid.clone()];
        expected.sort();
        assert_eq!(seen, expected, "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn rotate_token_returns_the_new_token_once_and_kills_the_old() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let v = expect(
            &server,
            &format!("/v1/mobile-identities/{}/rotate-token", flow.mid),
            &key,
            json!({}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            keys(&v),
            sorted(&[
                "mid",
                "agent_token",
                "revoked_previous",
                "rotated_at",
                "agent_token_hint"
            ]),
            "{v}"
        );
        assert_eq!(v["mid"], flow.mid.as_str());
        assert_eq!(v["revoked_previous"], 1);
        assert!(ms(&v["rotated_at"]) > 0);
        let token = v["agent_token"].as_str().unwrap();
        assert!(
            token.starts_with("amiagt_live_") && token.len() == "amiagt_live_".len() + 64,
            "{token}"
        );
        assert!(
            v["agent_token_hint"]
                .as_str()
                .unwrap()
                .ends_with(&token[token.len() - 4..]),
            "{v}"
        );

        let (s, _) = server.get("/v1/agent/self", &flow.agent_token).await;
        assert_eq!(
            s,
            StatusCode::UNAUTHORIZED,
            "{engine:?}: old token still works"
        );
        read(&server, "/v1/agent/self", token).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn inbound_config_accepts_sip_uris_and_clears() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let path = format!("/v1/mobile-identities/{}/inbound-config", flow.mid);
        let mid_path = format!("/v1/mobile-identities/{}", flow.mid);

        for uri in [
            "sip:agent@example.org",
            "sips:bot@voice.example.org:5061;transport=tls",
        ] {
            let v = expect(
                &server,
                &path,
                &key,
                json!({"inbound_sip_uri": uri}),
                StatusCode::OK,
            )
            .await;
            assert_eq!(
                v,
                json!({"mid": flow.mid, "inbound_sip_uri": uri}),
                "{engine:?}"
            );
            assert_eq!(read(&server, &mid_path, &key).await["inbound_sip_uri"], uri);
        }
        for clear in [json!(null), json!("")] {
            expect(
                &server,
                &path,
                &key,
                json!({"inbound_sip_uri": "sip:agent@example.org"}),
                StatusCode::OK,
            )
            .await;
            let v = expect(
                &server,
                &path,
                &key,
                json!({"inbound_sip_uri": clear}),
                StatusCode::OK,
            )
            .await;
            assert!(v["inbound_sip_uri"].is_null(), "{engine:?} {v}");
            assert!(read(&server, &mid_path, &key).await["inbound_sip_uri"].is_null());
        }

        let kept = "sip:kept@example.org";
        expect(
            &server,
            &path,
            &key,
            json!({"inbound_sip_uri": kept}),
            StatusCode::OK,
        )
        .await;
        for bad in [
            "http://x",
            "sip:nohost",
            "sip:agent@example.org\r\nX-Injected: 1",
            "sip:agent@example.org\n",
        ] {
            let body = json!({"inbound_sip_uri": bad});
            expect_error(
                &server,
                &path,
                &key,
                body,
                StatusCode::BAD_REQUEST,
                "invalid_inbound_sip_uri",
            )
            .await;
        }
        assert_eq!(
            read(&server, &mid_path, &key).await["inbound_sip_uri"],
            kept,
            "{engine:?}"
        );
        server.stop().await;
    }
}

fn default_limits() -> Value {
    json!({
        "rate_per_second": 1.0,
        "rate_burst": 30,
        "sms_per_hour": 60,
        "sms_per_day": 500,
        "calls_per_hour": 20,
        "calls_per_day": 200,
        "sms_per_destination_per_hour": 5,
        "sms_per_destination_per_day": 20,
        "calls_per_destination_per_hour": 3,
        "calls_per_destination_per_day": 10,
        "monthly_budget_eur": 100.0,
        "allowed_country_prefixes": ["+34"],
    })
}

#[tokio::test]
async fn limits_read_patch_and_validate_every_field() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let path = format!("/v1/mobile-identities/{}/limits", flow.mid);

        let v = read(&server, &path, &key).await;
        assert_eq!(
            v,
            json!({"mid": flow.mid, "limits": default_limits()}),
            "{engine:?}"
        );

        // A partial patch changes what it names and nothing else.
        let v = expect(
            &server,
            &path,
            &key,
            json!({"sms_per_hour": 10, "monthly_budget_eur": 2.5}),
            StatusCode::OK,
        )
        .await;
        let mut expected = default_limits();
        expected["sms_per_hour"] = json!(10);
        expected["monthly_budget_eur"] = json!(2.5);
        assert_eq!(
            v,
            json!({"mid": flow.mid, "limits": expected}),
            "{engine:?}"
        );
        let v = expect(
            &server,
            &path,
            &key,
            json!({"allowed_country_prefixes": ["+34", "+57"]}),
            StatusCode::OK,
        )
        .await;
        expected["allowed_country_prefixes"] = json!(["+34", "+57"]);
        assert_eq!(v["limits"], expected);
        assert_eq!(read(&server, &path, &key).await["limits"], expected);
        // An empty allowlist is valid: it blocks every destination.
        let body = json!({"allowed_country_prefixes": []});
        let v = expect(&server, &path, &key, body, StatusCode::OK).await;
        assert_eq!(v["limits"]["allowed_country_prefixes"], json!([]));
        let body = json!({"allowed_country_prefixes": ["+34", "+57"]});
        expect(&server, &path, &key, body, StatusCode::OK).await;

        let counts = [
            "sms_per_hour",
            "sms_per_day",
            "calls_per_hour",
            "calls_per_day",
            "sms_per_destination_per_hour",
            "sms_per_destination_per_day",
            "calls_per_destination_per_hour",
            "calls_per_destination_per_day",
        ];
        let mut cases: Vec<(&str, Value)> = Vec::new();
        for field in counts {
            for bad in [
                json!(-1),
                json!(1.5),
                json!("5"),
                json!(null),
                json!(true),
                json!(1_000_000_000_000_i64),
            ] {
                cases.push((field, bad));
            }
        }
        for bad in [json!(0), json!(-1), json!("1"), json!(null), json!(1e9)] {
            cases.push(("rate_per_second", bad));
        }
        for bad in [
            json!(0),
            json!(1.5),
            json!("30"),
            json!(null),
            json!(10_001),
        ] {
            cases.push(("rate_burst", bad));
        }
        for bad in [json!(-0.01), json!("100"), json!(null), json!(1e300)] {
            cases.push(("monthly_budget_eur", bad));
        }
        for bad in [
            json!("+34"),
            json!(["34"]),
            json!(["+0"]),
            json!(["+1234"]),
            json!([1]),
            json!(null),
        ] {
            cases.push(("allowed_country_prefixes", bad));
        }
        let events = server.event_count().await;
        for (field, bad) in cases {
            // A valid field alongside the bad one changes nothing either.
            let body = json!({field: bad, "calls_per_day": 7});
            let body = if field == "calls_per_day" {
                json!({field: bad, "sms_per_day": 7})
            } else {
                body
            };
            let v = expect_error(
                &server,
                &path,
                &key,
                body,
                StatusCode::BAD_REQUEST,
                &format!("invalid_{field}"),
            )
            .await;
            assert!(v["message"].is_string(), "{v}");
            assert_eq!(
                read(&server, &path, &key).await["limits"],
                expected,
                "{engine:?} {field}={bad}"
            );
        }
        let v = expect_error(
            &server,
            &path,
            &key,
            json!({"sms_per_hour": 1, "sms_per_week": 1}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        )
        .await;
        assert_eq!(v["field"], "sms_per_week", "{v}");
        assert_eq!(
            read(&server, &path, &key).await["limits"],
            expected,
            "{engine:?}"
        );
        assert_eq!(
            server.event_count().await,
            events,
            "{engine:?}: a refused patch was audited as a change"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn release_quarantines_the_number_and_kills_the_token() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let v = expect(
            &server,
            &format!("/v1/mobile-identities/{}/release", flow.mid),
            &key,
            json!({}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(v["status"], "released", "{engine:?} {v}");
        assert!(ms(&v["released_at"]) > 0);
        assert_eq!(
            read(
                &server,
                &format!("/v1/mobile-identities/{}", flow.mid),
                &key
            )
            .await["status"],
            "released"
        );

        let q = read(
            &server,
            "/v1/admin/numbers?status=quarantined&limit=200",
            ADMIN_KEY,
        )
        .await;
        let numbers = q["numbers"].as_array().unwrap();
        let n = numbers
            .iter()
            .find(|n| n["phone_number"] == flow.phone_number.as_str());
        let n =
            n.unwrap_or_else(|| panic!("{engine:?}: {} not quarantined: {q}", flow.phone_number));
        assert_eq!(n["status"], "quarantined");
        assert!(ms(&n["quarantined_until"]) > ms(&v["released_at"]), "{n}");
        assert!(numbers.iter().all(|n| n["status"] == "quarantined"), "{q}");

        let (s, body) = server.get("/v1/agent/self", &flow.agent_token).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_agent_token")),
            "{engine:?}"
        );
        let rotate = format!("/v1/mobile-identities/{}/rotate-token", flow.mid);
        expect_error(
            &server,
            &rotate,
            &key,
            json!({}),
            StatusCode::CONFLICT,
            "mobile_identity_not_active",
        )
        .await;
        let release = format!("/v1/mobile-identities/{}/release", flow.mid);
        expect_error(
            &server,
            &release,
            &key,
            json!({}),
            StatusCode::CONFLICT,
            "mobile_identity_not_active",
        )
        .await;
        server.stop().await;
    }
}

#[tokio::test]
async fn admin_manual_mid_issues_a_working_token() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, _) = server.customer("Partner").await;
        let body = json!({"phone_number": "+34 611 223 344", "account_id": account, "inbound_sip_uri": "sip:agent@example.org"});
        let v = expect(
            &server,
            "/v1/admin/mobile-identities/manual",
            ADMIN_KEY,
            body,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(v["phone_number"], "+34611223344", "{v}");
        assert_eq!(v["account_id"], account.as_str());
        assert_eq!(v["inbound_sip_uri"], "sip:agent@example.org");
        let token = v["agent_token"].as_str().unwrap();
        let me = read(&server, "/v1/agent/self", token).await;
        assert_eq!(me["mobile_identity_id"], v["id"], "{engine:?} {me}");
        assert_eq!(me["customer_id"], account.as_str());

        // The same number cannot be handed out twice.
        let again = json!({"phone_number": "+34611223344", "account_id": account});
        expect_error(
            &server,
            "/v1/admin/mobile-identities/manual",
            ADMIN_KEY,
            again,
            StatusCode::CONFLICT,
            "number_not_available",
        )
        .await;
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// §3.2 operator rules
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_accounts_and_number_inventory() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let bad = StatusCode::BAD_REQUEST;
        expect_error(
            &server,
            "/v1/admin/customers",
            ADMIN_KEY,
            json!({}),
            bad,
            "missing_name",
        )
        .await;
        expect_error(
            &server,
            "/v1/admin/customers",
            ADMIN_KEY,
            json!({"name": "  "}),
            bad,
            "missing_name",
        )
        .await;

        let (account, key) = server.customer("Acme").await;
        let suspend = format!("/v1/admin/customers/{account}/suspend");
        let v = expect(
            &server,
            &suspend,
            ADMIN_KEY,
            json!({"reason": "unpaid"}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(v, json!({"id": account, "status": "suspended"}));
        let events = server.event_count().await;
        let (s, v) = server
            .post(&suspend, ADMIN_KEY, json!({"reason": "again"}))
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{engine:?} {v}");
        assert_eq!(server.event_count().await, events);
        let (s, _) = server.get("/v1/sim-options", &key).await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&s),
            "{engine:?}: a suspended key works: {s}"
        );
        expect(
            &server,
            &format!("/v1/admin/customers/{account}/activate"),
            ADMIN_KEY,
            json!({}),
            StatusCode::OK,
        )
        .await;
        read(&server, "/v1/sim-options", &key).await;

        // A range load, then the status filter.
        let range = json!({"country": "ES", "from": "+34600100000", "to": "+34600100009"});
        let v = expect(
            &server,
            "/v1/admin/numbers",
            ADMIN_KEY,
            range.clone(),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(v["added"], 10, "{engine:?} {v}");
        // Loading the same range again adds nothing.
        let v = expect(
            &server,
            "/v1/admin/numbers",
            ADMIN_KEY,
            range,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            (v["requested"].as_u64(), v["added"].as_u64()),
            (Some(10), Some(0)),
            "{engine:?} {v}"
        );
        let list = read(
            &server,
            "/v1/admin/numbers?status=available&country=ES&limit=200",
            ADMIN_KEY,
        )
        .await;
        let available = list["numbers"].as_array().unwrap();
        assert!(
            available
                .iter()
                .all(|n| n["status"] == "available" && n["country"] == "ES"),
            "{list}"
        );
        for i in 0..10 {
            let phone = format!("+3460010000{i}");
            assert!(
                available
                    .iter()
                    .any(|n| n["phone_number"] == phone.as_str()),
                "{engine:?}: {phone} not listed"
            );
        }
        let (s, v) = server.get("/v1/admin/numbers?status=lost", ADMIN_KEY).await;
        assert_eq!((s, v["error"].as_str()), (bad, Some("invalid_status")));

        // A number of another country is listed as invalid; nothing is stored for it.
        let co = json!({"country": "ES", "numbers": ["+573001234567"]});
        let v = expect(
            &server,
            "/v1/admin/numbers",
            ADMIN_KEY,
            co,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            (&v["added"], &v["invalid"]),
            (&json!(0), &json!(["+573001234567"])),
            "{engine:?} {v}"
        );

        // An assigned number cannot be disabled.
        server.provision(&key).await;
        let assigned = read(&server, "/v1/admin/numbers?status=assigned", ADMIN_KEY).await;
        let number = assigned["numbers"][0]["id"].as_str().unwrap().to_owned();
        let events = server.event_count().await;
        expect_error(
            &server,
            &format!("/v1/admin/numbers/{number}/disable"),
            ADMIN_KEY,
            json!({}),
            StatusCode::CONFLICT,
            "invalid_state",
        )
        .await;
        assert_eq!(server.event_count().await, events);
        let free = available[0]["id"].as_str().unwrap();
        let v = expect(
            &server,
            &format!("/v1/admin/numbers/{free}/disable"),
            ADMIN_KEY,
            json!({}),
            StatusCode::OK,
        )
        .await;
        assert_eq!(v["status"], "disabled");
        server.stop().await;
    }
}

/// `commercial_constraints.currency` is an ISO 4217 code of a currency in circulation, and a
/// ceiling is compared only in the offer's own currency: the catalogue has no exchange
/// rates, so a ceiling in another currency is refused (with the offer's currency), not
/// ignored. Refusals write nothing.
#[tokio::test]
async fn price_ceilings_are_in_a_real_currency_and_the_offers_own() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Thrifty").await;
        let bad = StatusCode::BAD_REQUEST;
        let before = server.event_count().await;
        for currency in ["XYZ", "EURO", "EU", "XXX", "HRK", "€", " EUR"] {
            expect_error(
                &server,
                "/v1/sim-requests",
                &key,
                json!({"country": "ES", "commercial_constraints": {"max_monthly_price": 100, "currency": currency}}),
                bad,
                "invalid_currency",
            )
            .await;
        }
        // Without a price, a bad code is still refused.
        expect_error(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"commercial_constraints": {"currency": "XYZ"}}),
            bad,
            "invalid_currency",
        )
        .await;
        let v = expect_error(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "CO", "commercial_constraints": {"max_monthly_price": 1, "currency": "EUR"}}),
            bad,
            "currency_mismatch",
        )
        .await;
        assert_eq!(v["offer_currency"], "COP", "{v}");
        let v = expect_error(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "ES", "commercial_constraints": {"max_monthly_price": 1000000, "currency": "COP"}}),
            bad,
            "currency_mismatch",
        )
        .await;
        assert_eq!(v["offer_currency"], "EUR", "{v}");
        assert_eq!(
            server.event_count().await,
            before,
            "{engine:?}: a refused request wrote something"
        );
        let (_, list) = server.get("/v1/events?entity_type=sim_request", &key).await;
        assert_eq!(list["count"], 0, "{list}");

        // In the offer's currency (any letter case) the ceiling is applied.
        let r = expect(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "CO", "commercial_constraints": {"max_monthly_price": 1, "currency": "cop"}}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            (
                r["offer"]["status"].as_str(),
                r["sim_request"]["status"].as_str()
            ),
            (Some("rejected"), Some("rejected")),
            "{r}"
        );
        assert_eq!(r["sim_request"]["reason"], "price_above_max_monthly_price");
        // No currency means the offer's.
        let r = expect(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "CO", "commercial_constraints": {"max_monthly_price": 1}}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(r["offer"]["status"], "rejected", "{r}");
        let r = expect(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "CO", "commercial_constraints": {"max_monthly_price": 32000, "currency": "COP"}}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(r["offer"]["status"], "offer_created", "{r}");
        // A currency with no ceiling compares nothing.
        let r = expect(
            &server,
            "/v1/sim-requests",
            &key,
            json!({"country": "CO", "commercial_constraints": {"currency": "EUR"}}),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(r["offer"]["status"], "offer_created", "{r}");
        server.stop().await;
    }
}

/// Names that would read back differently from what was stored are refused at every free
/// text name: controls, bidi overrides, isolates and marks anywhere, and text with nothing
/// visible. An empty account name is still `missing_name`. Refusals write nothing.
#[tokio::test]
async fn names_that_hide_or_reorder_text_are_refused() {
    let hostile = [
        "\u{202e}gpj.exe",
        "Acme\u{202d}",
        "a\u{2066}b\u{2069}",
        "Ana\u{200f}",
        "x\u{061c}",
        "\u{200b}",
        "\u{2060}\u{feff}",
        "\u{200b} \u{200c}",
        "\u{180e}",
        "\u{3164}",
        "a\u{2028}b",
        "a\u{7}b",
    ];
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Names").await;
        let (req, _) = accepted_offer(&server, &key).await;
        let bad = StatusCode::BAD_REQUEST;
        // Admin reads are audited too: counted before the refusals start.
        let (_, accounts) = server.get("/v1/admin/customers?limit=200", ADMIN_KEY).await;
        let before = server.event_count().await;
        for name in hostile {
            expect_error(
                &server,
                "/v1/admin/customers",
                ADMIN_KEY,
                json!({ "name": name }),
                bad,
                "invalid_name",
            )
            .await;
            expect_error(
                &server,
                "/v1/sim-requests",
                &key,
                json!({"agent": {"name": name, "purpose": "otp"}}),
                bad,
                "invalid_agent_name",
            )
            .await;
            for (field, code) in [
                ("legal_name", "invalid_legal_name"),
                ("representative_name", "invalid_representative_name"),
            ] {
                let mut data = customer_data();
                data["customer"][field] = json!(name);
                let path = format!("/v1/sim-requests/{req}/customer-data");
                expect_error(&server, &path, &key, data.clone(), bad, code).await;
                expect_error(&server, "/v1/customers", &key, data, bad, code).await;
            }
        }
        for empty in ["", "   ", "\u{3000}"] {
            expect_error(
                &server,
                "/v1/admin/customers",
                ADMIN_KEY,
                json!({ "name": empty }),
                bad,
                "missing_name",
            )
            .await;
        }
        assert_eq!(
            server.event_count().await,
            before,
            "{engine:?}: a refused name wrote something"
        );
        let (_, after) = server.get("/v1/admin/customers?limit=200", ADMIN_KEY).await;
        assert_eq!(after["count"], accounts["count"], "{after}");
        let r = read(&server, &format!("/v1/sim-requests/{req}"), &key).await;
        assert_eq!(r["status"], "offer_accepted", "{engine:?}");

        // Scripts, accents and joiners inside visible text are names like any other.
        for name in [
            "Zoë Ñúñez",
            "株式会社テスト",
            "شركة الاختبار",
            "👩\u{200d}💻 Labs",
        ] {
            let v = expect(
                &server,
                "/v1/admin/customers",
                ADMIN_KEY,
                json!({ "name": name }),
                StatusCode::CREATED,
            )
            .await;
            assert_eq!(v["name"], name);
        }
        let mut data = customer_data();
        data["customer"]["legal_name"] = json!("شركة الاختبار");
        data["customer"]["representative_name"] = json!("José Ñúñez");
        let v = expect(
            &server,
            &format!("/v1/sim-requests/{req}/customer-data"),
            &key,
            data,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(v["customer"]["legal_name"], "شركة الاختبار");
        server.stop().await;
    }
}

/// The CLI creates accounts through the same rule as the admin API.
#[tokio::test]
async fn the_cli_refuses_the_same_account_names() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ami"))
            .args(["admin", "create-customer", "--name", name])
            .env_clear()
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/ami.db", dir.path().display()),
            )
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    for name in ["\u{202e}gpj.exe", "\u{200b}\u{feff}", "a\u{2067}b"] {
        let out = run(name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name:?} accepted");
        assert!(stderr.contains("invalid_name"), "{name:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{name:?}");
    }
    let out = run("Acme Robotics");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["name"], "Acme Robotics");
}
