//! PROTOCOL §1: the four credential levels are disjoint. On every route of the router, each
//! level's credential is refused on every other level's routes with that route level's 401
//! body, byte-identical to the body for no credential at all. Rotation and account
//! suspension take effect on the very next request, and the compatible single-tenant
//! `AMI_API_KEY` bootstrap gives exactly that key to the account `cust_default`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, TestServer, engines};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TELCO_KEY: &str = "test-telco-key-0123456789";

/// How a credential travels: `Authorization: Bearer` for three levels, `X-Telco-Key` for
/// the carrier.
#[derive(Debug, Clone)]
enum Credential {
    Bearer(String),
    TelcoHeader(String),
}

fn bearer(value: impl Into<String>) -> Option<Credential> {
    Some(Credential::Bearer(value.into()))
}

fn telco_header(value: impl Into<String>) -> Option<Credential> {
    Some(Credential::TelcoHeader(value.into()))
}

/// One operation of the OpenAPI document: method, path template, security schemes.
#[derive(Debug)]
struct Op {
    method: Method,
    path: String,
    security: Vec<String>,
}

/// Every operation of the router's own OpenAPI document.
fn operations() -> Vec<Op> {
    let (_, api) = ami_server::app::api();
    let doc = serde_json::to_value(&api).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            // An optional credential (`/metrics`) depends on the configuration: `metrics.rs`
            // checks that route both ways.
            if op["security"].as_array().is_some_and(|reqs| {
                reqs.iter()
                    .any(|r| r.as_object().is_some_and(serde_json::Map::is_empty))
            }) {
                continue;
            }
            let security = op["security"]
                .as_array()
                .map(|reqs| {
                    reqs.iter()
                        .filter_map(Value::as_object)
                        .flat_map(|r| r.keys().cloned())
                        .collect()
                })
                .unwrap_or_default();
            ops.push(Op {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                security,
            });
        }
    }
    ops
}

/// The path with every `{param}` replaced by a well-formed random id of a plausible kind.
fn with_random_ids(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        if !(seg.starts_with('{') && seg.ends_with('}')) {
            out.push((*seg).to_owned());
            continue;
        }
        let prefix = match segments.get(i.wrapping_sub(1)).copied().unwrap_or_default() {
            "sim-requests" => "simreq",
            "offers" => "offer",
            "customers" if path.starts_with("/v1/admin/") => "acct",
            "customers" => "customer",
            "contracts" | "sign" => "contract",
            "mobile-identities" => "mid",
            "numbers" => "num",
            "webhooks" => "wh",
            "deliveries" => "dlv",
            "kill-switch" => "ks",
            "sms" => "msg",
            "calls" => "call",
            _ => "x",
        };
        out.push(ami_core::id::new_id(prefix));
    }
    out.join("/")
}

/// Sends a request and returns the status and the exact body bytes.
async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    credential: Option<&Credential>,
) -> (StatusCode, Vec<u8>) {
    let mut req = server
        .http
        .request(method.clone(), format!("{}{path}", server.base));
    match credential {
        Some(Credential::Bearer(c)) => req = req.bearer_auth(c),
        Some(Credential::TelcoHeader(c)) => req = req.header("x-telco-key", c),
        None => {}
    }
    if method != Method::GET {
        req = req.json(&json!({}));
    }
    let res = req.send().await.expect("request");
    (res.status(), res.bytes().await.unwrap().to_vec())
}

/// The route level a security scheme stands for, its 401 code, and the credentials that
/// must all be refused there.
struct Level {
    scheme: &'static str,
    code: &'static str,
    refused: Vec<(&'static str, Option<Credential>)>,
}

#[tokio::test]
async fn every_level_is_refused_on_every_other_levels_routes() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_TELCO_INBOUND_KEY", TELCO_KEY)]).await;
        let (_, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let levels = [
            Level {
                scheme: "bearerAuth",
                code: "unauthorized",
                refused: vec![
                    ("no header", None),
                    (
                        "unknown customer key",
                        bearer(ami_core::secret::new_customer_key()),
                    ),
                    ("valid agent token", bearer(&flow.agent_token)),
                    ("admin key", bearer(ADMIN_KEY)),
                    ("telco key as bearer", bearer(TELCO_KEY)),
                    ("telco key header", telco_header(TELCO_KEY)),
                    ("customer key in the telco header", telco_header(&key)),
                ],
            },
            Level {
                scheme: "agentBearer",
                code: "invalid_agent_token",
                refused: vec![
                    ("no header", None),
                    (
                        "unknown agent token",
                        bearer(ami_core::secret::new_agent_token()),
                    ),
                    ("valid customer key", bearer(&key)),
                    ("admin key", bearer(ADMIN_KEY)),
                    ("telco key as bearer", bearer(TELCO_KEY)),
                    ("telco key header", telco_header(TELCO_KEY)),
                    (
                        "agent token in the telco header",
                        telco_header(&flow.agent_token),
                    ),
                ],
            },
            Level {
                scheme: "adminKey",
                code: "unauthorized_admin",
                refused: vec![
                    ("no header", None),
                    ("wrong admin key", bearer(format!("{ADMIN_KEY}-not"))),
                    ("valid customer key", bearer(&key)),
                    ("valid agent token", bearer(&flow.agent_token)),
                    ("telco key as bearer", bearer(TELCO_KEY)),
                    ("telco key header", telco_header(TELCO_KEY)),
                    ("admin key in the telco header", telco_header(ADMIN_KEY)),
                ],
            },
            Level {
                scheme: "telcoKey",
                code: "invalid_telco_key",
                refused: vec![
                    ("no header", None),
                    ("wrong telco key", telco_header(format!("{TELCO_KEY}-not"))),
                    ("empty telco key", telco_header("")),
                    ("telco key as bearer", bearer(TELCO_KEY)),
                    ("valid customer key", bearer(&key)),
                    ("valid agent token", bearer(&flow.agent_token)),
                    ("admin key", bearer(ADMIN_KEY)),
                    ("customer key in the telco header", telco_header(&key)),
                    (
                        "agent token in the telco header",
                        telco_header(&flow.agent_token),
                    ),
                    ("admin key in the telco header", telco_header(ADMIN_KEY)),
                ],
            },
        ];
        let ops = operations();
        for level in &levels {
            let mine: Vec<&Op> = ops
                .iter()
                .filter(|op| op.security.iter().any(|s| s == level.scheme))
                .collect();
            assert!(
                !mine.is_empty(),
                "{engine:?}: no route is secured by {}",
                level.scheme
            );
            for op in mine {
                let path = with_random_ids(&op.path);
                let mut first: Option<Vec<u8>> = None;
                for (what, credential) in &level.refused {
                    let (s, body) =
                        raw(&server, op.method.clone(), &path, credential.as_ref()).await;
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    assert_eq!(
                        (s, v["error"].as_str()),
                        (StatusCode::UNAUTHORIZED, Some(level.code)),
                        "{engine:?} {} {} with {what}: {text}",
                        op.method,
                        op.path
                    );
                    match &first {
                        None => first = Some(body),
                        Some(expected) => assert_eq!(
                            String::from_utf8_lossy(expected),
                            text,
                            "{engine:?} {} {} with {what}: body differs from the one without a header",
                            op.method,
                            op.path
                        ),
                    }
                }
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn rotation_is_effective_on_the_very_next_request() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, old_key) = server.customer("Acme").await;
        let flow = server.provision(&old_key).await;

        let (s, v) = server
            .post(
                &format!("/v1/admin/customers/{account}/rotate-key"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let new_key = v["api_key"].as_str().unwrap().to_owned();
        assert_ne!(new_key, old_key);
        let (s, v) = server.get("/v1/mobile-identities", &old_key).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{engine:?} {v}"
        );
        let (s, v) = server.get("/v1/mobile-identities", &new_key).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        assert_eq!(
            v["mobile_identities"][0]["id"],
            flow.mid.as_str(),
            "{engine:?} {v}"
        );

        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/rotate-token", flow.mid),
                &new_key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        assert_eq!(v["revoked_previous"], 1, "{engine:?} {v}");
        let new_token = v["agent_token"].as_str().unwrap().to_owned();
        let (s, v) = server.get("/v1/agent/self", &flow.agent_token).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_agent_token")),
            "{engine:?} {v}"
        );
        let (s, v) = server.get("/v1/agent/self", &new_token).await;
        assert_eq!(
            (s, v["mobile_identity_id"].as_str()),
            (StatusCode::OK, Some(flow.mid.as_str())),
            "{engine:?} {v}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn suspension_blocks_the_customer_key_and_every_agent_token_of_the_account() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Acme").await;
        let first = server.provision(&key).await;
        let second = server.provision(&key).await;
        let (_, other_key) = server.customer("Bystander").await;
        let other = server.provision(&other_key).await;
        let tokens = [first.agent_token.as_str(), second.agent_token.as_str()];

        let (s, v) = server
            .post(
                &format!("/v1/admin/customers/{account}/suspend"),
                ADMIN_KEY,
                json!({"reason": "test"}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("suspended")),
            "{engine:?} {v}"
        );
        let (s, v) = server.get("/v1/mobile-identities", &key).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("account_suspended")),
            "{engine:?} {v}"
        );
        for token in tokens {
            let (s, v) = server.get("/v1/agent/self", token).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (StatusCode::FORBIDDEN, Some("account_suspended")),
                "{engine:?} {v}"
            );
        }
        // Another account is not touched.
        assert_eq!(
            server.get("/v1/mobile-identities", &other_key).await.0,
            StatusCode::OK,
            "{engine:?}"
        );
        assert_eq!(
            server.get("/v1/agent/self", &other.agent_token).await.0,
            StatusCode::OK,
            "{engine:?}"
        );

        let (s, v) = server
            .post(
                &format!("/v1/admin/customers/{account}/activate"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("active")),
            "{engine:?} {v}"
        );
        let (s, v) = server.get("/v1/mobile-identities", &key).await;
        assert_eq!(
            (s, v["count"].as_u64()),
            (StatusCode::OK, Some(2)),
            "{engine:?} {v}"
        );
        for (token, mid) in tokens.into_iter().zip([&first.mid, &second.mid]) {
            let (s, v) = server.get("/v1/agent/self", token).await;
            assert_eq!(
                (s, v["mobile_identity_id"].as_str()),
                (StatusCode::OK, Some(mid.as_str())),
                "{engine:?} {v}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn single_tenant_api_key_bootstrap_is_cust_default() {
    for engine in engines() {
        let key = format!("amik_live_{}", "0123456789abcdef".repeat(3));
        assert!(ami_core::secret::is_customer_key(&key));
        let server = TestServer::start_with(engine, &[("AMI_API_KEY", &key)]).await;
        let (s, v) = server.get("/v1/mobile-identities", &key).await;
        assert_eq!(
            (s, v["count"].as_u64()),
            (StatusCode::OK, Some(0)),
            "{engine:?} {v}"
        );
        let (s, v) = server
            .post("/v1/sim-requests", &key, json!({"country": "ES"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_eq!(
            v["sim_request"]["account_id"], "cust_default",
            "{engine:?} {v}"
        );
        let flow = server.provision(&key).await;
        let (s, me) = server.get("/v1/agent/self", &flow.agent_token).await;
        assert_eq!(
            (s, me["customer_id"].as_str()),
            (StatusCode::OK, Some("cust_default")),
            "{engine:?} {me}"
        );
        let (s, v) = server.get("/v1/admin/customers", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let ids: Vec<&str> = v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["id"].as_str())
            .collect();
        assert_eq!(ids, ["cust_default"], "{engine:?} {v}");
        // A near miss of the configured key is just an unknown key.
        let near = format!("{}0", &key[..key.len() - 1]);
        let (s, v) = server.get("/v1/mobile-identities", &near).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{engine:?} {v}"
        );
        server.stop().await;
    }
}
