//! PROTOCOL §3.2 and §11 ("admin master key separate, mandatory audit"): every admin route,
//! taken from the router's own route list, writes at least one audit row naming the admin
//! actor when it succeeds, reads included; and no audit row carries a customer API key or
//! an agent token handed out by those calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, TestServer, engines};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every `adminKey` operation of the router's own OpenAPI document, as `"METHOD /path"`.
fn admin_operations() -> Vec<String> {
    let (_, api) = ami_server::app::api();
    let doc = serde_json::to_value(&api).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            // `/metrics`, where the admin key is optional, reads no tenant data and writes
            // nothing: a scrape every few seconds is not an audited operator action.
            let admin = op["security"].as_array().is_some_and(|reqs| {
                reqs.iter().any(|r| r.get("adminKey").is_some())
                    && !reqs
                        .iter()
                        .any(|r| r.as_object().is_some_and(serde_json::Map::is_empty))
            });
            if admin {
                ops.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// What earlier calls produced that later calls need.
#[derive(Default)]
struct Ctx {
    account: String,
    number: String,
    kill_switch: String,
    parked: String,
    /// Two submitted KYC checks: one to verify, one to reject.
    kyc_to_verify: String,
    kyc_to_reject: String,
}

/// A valid request (path, body) for a route, given what earlier calls produced.
type Build = fn(&Ctx) -> (String, Option<Value>);

fn get(path: &str) -> (String, Option<Value>) {
    (path.to_owned(), None)
}

fn post(path: String, body: Value) -> (String, Option<Value>) {
    (path, Some(body))
}

/// Every admin route with a valid request, in an order where each one can succeed
/// (activate after suspend, enable after disable). A route of the router missing here
/// fails the test by name.
const ROUTES: &[(&str, Build)] = &[
    ("POST /v1/admin/customers", |_| {
        post("/v1/admin/customers".into(), json!({"name": "Audited Co"}))
    }),
    ("GET /v1/admin/customers", |_| get("/v1/admin/customers")),
    ("POST /v1/admin/customers/{id}/rotate-key", |c| {
        post(
            format!("/v1/admin/customers/{}/rotate-key", c.account),
            json!({}),
        )
    }),
    ("POST /v1/admin/customers/{id}/suspend", |c| {
        post(
            format!("/v1/admin/customers/{}/suspend", c.account),
            json!({"reason": "audit test"}),
        )
    }),
    ("POST /v1/admin/customers/{id}/activate", |c| {
        post(
            format!("/v1/admin/customers/{}/activate", c.account),
            json!({}),
        )
    }),
    ("POST /v1/admin/numbers", |_| {
        post(
            "/v1/admin/numbers".into(),
            json!({"country": "ES", "numbers": ["+34600999001"]}),
        )
    }),
    ("GET /v1/admin/numbers", |_| {
        get("/v1/admin/numbers?country=ES&limit=200")
    }),
    ("POST /v1/admin/numbers/{id}/disable", |c| {
        post(format!("/v1/admin/numbers/{}/disable", c.number), json!({}))
    }),
    ("POST /v1/admin/numbers/{id}/enable", |c| {
        post(format!("/v1/admin/numbers/{}/enable", c.number), json!({}))
    }),
    ("POST /v1/admin/mobile-identities/manual", |c| {
        let body = json!({"phone_number": "+34600999002", "account_id": c.account});
        post("/v1/admin/mobile-identities/manual".into(), body)
    }),
    ("GET /v1/admin/events", |_| {
        get("/v1/admin/events?limit=1000")
    }),
    ("POST /v1/admin/kill-switch", |c| {
        let body = json!({"scope": "account", "target_id": c.account, "reason": "audit test"});
        post("/v1/admin/kill-switch".into(), body)
    }),
    ("GET /v1/admin/kill-switch", |_| {
        get("/v1/admin/kill-switch")
    }),
    ("GET /v1/admin/carrier-events/parked", |_| {
        get("/v1/admin/carrier-events/parked")
    }),
    ("POST /v1/admin/carrier-events/parked/{id}/retry", |c| {
        post(
            format!("/v1/admin/carrier-events/parked/{}/retry", c.parked),
            json!({}),
        )
    }),
    ("GET /v1/admin/kyc", |_| {
        get("/v1/admin/kyc?status=submitted")
    }),
    ("POST /v1/admin/kyc/{id}/verify", |c| {
        post(
            format!("/v1/admin/kyc/{}/verify", c.kyc_to_verify),
            json!({}),
        )
    }),
    ("POST /v1/admin/kyc/{id}/reject", |c| {
        post(
            format!("/v1/admin/kyc/{}/reject", c.kyc_to_reject),
            json!({"reason": "audit test"}),
        )
    }),
    ("POST /v1/admin/kyc/purge", |_| {
        post("/v1/admin/kyc/purge".into(), json!({}))
    }),
    ("POST /v1/admin/kill-switch/{id}/release", |c| {
        post(
            format!("/v1/admin/kill-switch/{}/release", c.kill_switch),
            json!({"reason": "audit test"}),
        )
    }),
];

async fn admin_event_count(server: &TestServer) -> i64 {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE actor_type = 'admin'")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn all_event_data(server: &TestServer) -> Vec<String> {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_scalar("SELECT data FROM audit_events")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_admin_route_writes_an_admin_audit_row_and_no_secret() {
    let served = admin_operations();
    let missing: Vec<&String> = served
        .iter()
        .filter(|op| !ROUTES.iter().any(|(r, _)| r == op))
        .collect();
    assert!(
        missing.is_empty(),
        "admin routes with no request in ROUTES (add one): {missing:?}"
    );
    let stale: Vec<&str> = ROUTES
        .iter()
        .map(|(r, _)| *r)
        .filter(|r| !served.iter().any(|op| op == r))
        .collect();
    assert!(
        stale.is_empty(),
        "ROUTES names routes the router does not serve: {stale:?}"
    );

    for engine in engines() {
        let server = TestServer::start(engine).await;
        let mut ctx = Ctx::default();
        // One carrier event the operator can see and retry.
        let event = ami_carrier::CarrierEvent::InboundSms {
            from: "+34611000001".into(),
            to: "+34699999999".into(),
            body: "parked".into(),
            telco_ref: "parked-1".into(),
        };
        server
            .running
            .services
            .park_carrier_event(&event, &ami_services::Error::refused(500, "x", "test"))
            .await
            .unwrap();
        // Two KYC checks the representative submitted, for the operator to decide.
        let (_, kyc_key) = server.customer("KYC Co").await;
        for slot in [&mut ctx.kyc_to_verify, &mut ctx.kyc_to_reject] {
            let (req, _, _) = common::kyc::request_with_customer_data(&server, &kyc_key).await;
            *slot = common::kyc::submitted_kyc(&server, &kyc_key, &req).await;
        }
        let mut secrets: Vec<String> = Vec::new();
        for (route, build) in ROUTES {
            let method: Method = route.split_once(' ').unwrap().0.parse().unwrap();
            let (path, body) = build(&ctx);
            let before = admin_event_count(&server).await;
            let (s, v) = server.call(method, &path, Some(ADMIN_KEY), body).await;
            assert!(s.is_success(), "{engine:?} {route}: {s} {v}");
            let after = admin_event_count(&server).await;
            assert!(
                after > before,
                "{engine:?} {route} succeeded without an audit row naming the admin ({before} -> {after})"
            );

            for field in ["api_key", "agent_token"] {
                if let Some(secret) = v[field].as_str() {
                    secrets.push(secret.to_owned());
                }
            }
            match *route {
                "POST /v1/admin/customers" => ctx.account = v["id"].as_str().unwrap().to_owned(),
                "POST /v1/admin/kill-switch" => {
                    ctx.kill_switch = v["id"].as_str().unwrap().to_owned()
                }
                "GET /v1/admin/carrier-events/parked" => {
                    ctx.parked = v["events"][0]["id"].as_str().unwrap().to_owned()
                }
                "GET /v1/admin/numbers" => {
                    let loaded = v["numbers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|n| n["phone_number"] == "+34600999001");
                    ctx.number = loaded.expect("the loaded number is listed")["id"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                }
                _ => {}
            }
        }
        // The calls did hand out secrets: two customer keys and one agent token.
        assert_eq!(secrets.len(), 3, "{engine:?} {secrets:?}");

        let data = all_event_data(&server).await;
        let (s, events) = server.get("/v1/admin/events?limit=1000", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {events}");
        let admin_events: Vec<&Value> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"]["type"] == "admin")
            .collect();
        assert!(
            admin_events.len() >= ROUTES.len(),
            "{engine:?} {admin_events:?}"
        );
        assert!(
            admin_events.iter().all(|e| e["actor"]["id"] == "admin"),
            "{engine:?} {admin_events:?}"
        );
        let listed = events.to_string();
        for secret in &secrets {
            assert!(
                !data.iter().any(|d| d.contains(secret.as_str())),
                "{engine:?}: an audit row holds a secret"
            );
            assert!(
                !listed.contains(secret.as_str()),
                "{engine:?}: the audit listing shows a secret"
            );
        }
        server.stop().await;
    }
}
