//! PROTOCOL §11, first two rows: every resource lives under an account, and another account's
//! resource answers exactly like a resource that does not exist (404, byte-identical body).
//!
//! The routes come from `ami_server::app::api()`, the list the router serves, so a new route
//! that takes an id fails this test until the table below says which id it takes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Flow, LOOPBACK, TestServer, customer_data, engines};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One operation of the OpenAPI document: method, path template, security schemes.
#[derive(Debug)]
struct Op {
    method: Method,
    path: String,
    security: Vec<String>,
}

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
    fn secured_by(&self, scheme: &str) -> bool {
        self.security.iter().any(|s| s == scheme)
    }
}

/// Every operation of the router's own OpenAPI document.
fn operations() -> Vec<Op> {
    let (_, api) = ami_server::app::api();
    let doc = serde_json::to_value(&api).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ![
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
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

/// The `{...}` parameters of a path template, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|seg| seg.starts_with('{') && seg.ends_with('}'))
        .collect()
}

/// The kinds of id a path parameter can take.
#[derive(Debug, Clone, Copy)]
enum Kind {
    SimRequest,
    Offer,
    Customer,
    Contract,
    Mid,
    Sms,
    Call,
    Webhook,
    Delivery,
    AccountWebhook,
    AccountDelivery,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::SimRequest => "simreq",
            Kind::Offer => "offer",
            Kind::Customer => "customer",
            Kind::Contract => "contract",
            Kind::Mid => "mid",
            Kind::Sms => "msg",
            Kind::Call => "call",
            Kind::Webhook | Kind::AccountWebhook => "wh",
            Kind::Delivery | Kind::AccountDelivery => "dlv",
        }
    }

    fn of(self, flow: &Flow) -> &str {
        match self {
            Kind::SimRequest => &flow.sim_request,
            Kind::Offer => &flow.offer,
            Kind::Customer => &flow.customer,
            Kind::Contract => &flow.contract,
            Kind::Mid => &flow.mid,
            Kind::Sms => flow.sms.as_deref().unwrap_or_default(),
            Kind::Call => flow.call.as_deref().unwrap_or_default(),
            Kind::Webhook => flow.webhook.as_deref().unwrap_or_default(),
            Kind::Delivery => flow.delivery.as_deref().unwrap_or_default(),
            Kind::AccountWebhook => flow.account_webhook.as_deref().unwrap_or_default(),
            Kind::AccountDelivery => flow.account_delivery.as_deref().unwrap_or_default(),
        }
    }
}

/// Which id each parameter takes, by path prefix up to the last parameter (longest match
/// wins). A tenant route with an id that no entry covers fails the test by name.
const ID_KINDS: &[(&str, &[Kind])] = &[
    ("/v1/sim-requests/{id}", &[Kind::SimRequest]),
    ("/v1/offers/{id}", &[Kind::Offer]),
    ("/v1/customers/{id}", &[Kind::Customer]),
    ("/v1/contracts/{id}", &[Kind::Contract]),
    ("/v1/mobile-identities/{id}", &[Kind::Mid]),
    ("/v1/agent/sms/{id}", &[Kind::Sms]),
    ("/v1/agent/calls/{id}", &[Kind::Call]),
    (
        "/v1/mobile-identities/{id}/webhooks/{wh}",
        &[Kind::Mid, Kind::Webhook],
    ),
    (
        "/v1/mobile-identities/{id}/webhooks/{wh}/deliveries/{dlv}",
        &[Kind::Mid, Kind::Webhook, Kind::Delivery],
    ),
    ("/v1/account/webhooks/{wh}", &[Kind::AccountWebhook]),
    (
        "/v1/account/webhooks/{wh}/deliveries/{dlv}",
        &[Kind::AccountWebhook, Kind::AccountDelivery],
    ),
];

/// Id-taking routes that are not tenant routes, and why.
const OUT_OF_SCOPE: &[(&str, &str)] = &[
    // Public capability links: the contract id AND the signing token together are the
    // credential, there is no caller account to compare with. Checked by
    // `signing_page_with_a_wrong_token_is_the_missing_contract_page` below.
    ("/v1/sign/{id}", "public signing page, a capability link"),
    (
        "/v1/sign/{id}/confirm",
        "public signing form, a capability link",
    ),
    // The representative's KYC page: the token alone is the capability (stored hashed).
    // Checked by `another_account_cannot_see_or_start_a_foreign_kyc` in `kyc.rs`.
    ("/kyc/{token}", "public KYC page, a capability link"),
    ("/kyc/{token}/submit", "public KYC form, a capability link"),
    // The carrier partner stands outside tenancy: it addresses numbers and calls of every
    // account, authenticated by the one telco key (PROTOCOL §3.6); `credential_levels.rs`
    // proves no tenant credential reaches these routes.
    (
        "/v1/_telco/calls/{id}/status",
        "telco callback, the carrier addresses every account's calls",
    ),
];
// Routes with `adminKey` security are out of scope as well: the operator stands above
// tenancy and addresses every account by design (PROTOCOL §3.2); `credential_levels.rs`
// proves no customer or agent credential reaches them, `admin_audit.rs` that each is audited.

fn kinds_for(path: &str) -> Option<&'static [Kind]> {
    let n = path_params(path).len();
    ID_KINDS
        .iter()
        .filter(|(prefix, kinds)| {
            path.starts_with(prefix) && kinds.len() == n && path_params(prefix).len() == n
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, kinds)| *kinds)
}

/// The path with each parameter replaced by the given ids.
fn fill(path: &str, ids: &[String]) -> String {
    let mut ids = ids.iter();
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                ids.next().unwrap().as_str()
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A request body that would be valid for the route, so only the id decides the answer.
fn body_for(op: &Op) -> Option<Value> {
    if op.method == Method::GET {
        return None;
    }
    let p = op.path.as_str();
    Some(if p.ends_with("/customer-data") {
        customer_data()
    } else if p.ends_with("/inbound-config") {
        json!({"inbound_sip_uri": "sip:agent@example.com"})
    } else if p.ends_with("/voice-config") {
        json!({"voice_url": "wss://127.0.0.1:9/voice"})
    } else if p.ends_with("/limits") {
        json!({"sms_per_hour": 10})
    } else if p.ends_with("/cancel") {
        json!({"reason": "tenancy test"})
    } else if p.ends_with("/webhooks") {
        json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    } else if p.ends_with("/sandbox/inbound-sms") {
        json!({"from": "+34611000001", "body": "tenancy test"})
    } else {
        json!({})
    })
}

/// Sends a request and returns the status and the exact body bytes.
async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    credential: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Vec<u8>) {
    let mut req = server
        .http
        .request(method, format!("{}{path}", server.base));
    if let Some(c) = credential {
        req = req.bearer_auth(c);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request");
    (res.status(), res.bytes().await.unwrap().to_vec())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Places one call to a Spanish number with the agent token; returns its id.
async fn place_call(server: &TestServer, agent_token: &str) -> String {
    let (s, v) = server
        .post(
            "/v1/agent/calls/place",
            agent_token,
            json!({"to": "+34600123456", "callback_sip_uri": "sip:agent@voice.example.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Two accounts, each with a fully provisioned MID.
async fn two_tenants(server: &TestServer) -> ((String, String, Flow), (String, String, Flow)) {
    let (acct_a, key_a) = server.customer("Tenant A").await;
    let (acct_b, key_b) = server.customer("Tenant B").await;
    let mut a = server.provision(&key_a).await;
    let b = server.provision(&key_b).await;
    a.sms = Some(common::send_sms(server, &a.agent_token).await);
    a.call = Some(place_call(server, &a.agent_token).await);
    let a = common::with_webhooks(&server.remote(), &key_a, a).await;
    let b = common::with_webhooks(&server.remote(), &key_b, b).await;
    ((acct_a, key_a, a), (acct_b, key_b, b))
}

#[tokio::test]
async fn another_accounts_id_answers_like_a_missing_id_on_every_route() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let ((_, key_a, a), (_, key_b, b)) = two_tenants(&server).await;
        let mut uncovered = Vec::new();
        let mut checked = Vec::new();
        for op in operations() {
            if path_params(&op.path).is_empty() || op.secured_by("adminKey") {
                continue;
            }
            let credential_b = if op.secured_by("bearerAuth") {
                key_b.as_str()
            } else if op.secured_by("agentBearer") {
                b.agent_token.as_str()
            } else {
                if !OUT_OF_SCOPE.iter().any(|(p, _)| *p == op.path) {
                    uncovered.push(format!(
                        "{} (security {:?}: not a tenant route and not listed out of scope)",
                        op.name(),
                        op.security
                    ));
                }
                continue;
            };
            let Some(kinds) = kinds_for(&op.path) else {
                uncovered.push(format!(
                    "{} (no entry in ID_KINDS says which id it takes)",
                    op.name()
                ));
                continue;
            };
            let foreign: Vec<String> = kinds.iter().map(|k| k.of(&a).to_owned()).collect();
            let missing: Vec<String> = kinds
                .iter()
                .map(|k| ami_core::id::new_id(k.prefix()))
                .collect();
            let body = body_for(&op);
            let (s_foreign, b_foreign) = raw(
                &server,
                op.method.clone(),
                &fill(&op.path, &foreign),
                Some(credential_b),
                body.as_ref(),
            )
            .await;
            let (s_missing, b_missing) = raw(
                &server,
                op.method.clone(),
                &fill(&op.path, &missing),
                Some(credential_b),
                body.as_ref(),
            )
            .await;
            assert_eq!(
                s_foreign,
                StatusCode::NOT_FOUND,
                "{engine:?} {}: A's id gave {}",
                op.name(),
                text(&b_foreign)
            );
            assert_eq!(
                s_missing,
                StatusCode::NOT_FOUND,
                "{engine:?} {}: a random id gave {}",
                op.name(),
                text(&b_missing)
            );
            assert_eq!(
                text(&b_foreign),
                text(&b_missing),
                "{engine:?} {}: A's id and a random id must give the same body",
                op.name()
            );
            assert_eq!(
                b_foreign,
                b_missing,
                "{engine:?} {}: bodies differ in bytes",
                op.name()
            );
            checked.push(op.name());
        }
        assert!(
            uncovered.is_empty(),
            "{engine:?}: id-taking routes this test does not cover:\n{}",
            uncovered.join("\n")
        );
        assert!(
            checked.len() >= 10,
            "{engine:?}: suspiciously few tenant routes with ids: {checked:?}"
        );

        // B's attempts changed nothing of A's: the MID is active, its token still works.
        let (s, mid) = server
            .get(&format!("/v1/mobile-identities/{}", a.mid), &key_a)
            .await;
        assert_eq!(
            (s, mid["status"].as_str()),
            (StatusCode::OK, Some("active")),
            "{engine:?} {mid}"
        );
        assert!(mid["inbound_sip_uri"].is_null(), "{engine:?} {mid}");
        let (s, voice) = server
            .get(
                &format!("/v1/mobile-identities/{}/voice-config", a.mid),
                &key_a,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {voice}");
        assert!(
            voice["voice_url"].is_null() && voice["signing_secret_hint"].is_null(),
            "{engine:?} {voice}"
        );
        let (s, me) = server.get("/v1/agent/self", &a.agent_token).await;
        assert_eq!(
            (s, me["mobile_identity_id"].as_str()),
            (StatusCode::OK, Some(a.mid.as_str())),
            "{engine:?} {me}"
        );
        let (s, req) = server
            .get(&format!("/v1/sim-requests/{}", a.sim_request), &key_a)
            .await;
        assert_eq!(
            (s, req["status"].as_str()),
            (StatusCode::OK, Some("active")),
            "{engine:?} {req}"
        );
        let (s, limits) = server
            .get(&format!("/v1/mobile-identities/{}/limits", a.mid), &key_a)
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {limits}");
        assert_ne!(limits["limits"]["sms_per_hour"], 10, "{engine:?} {limits}");
        server.stop().await;
    }
}

#[tokio::test]
async fn signing_page_with_a_wrong_token_is_the_missing_contract_page() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key_a) = server.customer("Tenant A").await;
        let a = server.provision(&key_a).await;
        // The real link works, so the contract id below is a live one.
        let link = &a.signature_url[a.signature_url.find("/v1/sign/").expect("signing link")..];
        let (s, page) = raw(&server, Method::GET, link, None, None).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {}", text(&page));

        let random = ami_core::id::new_id("contract");
        let wrong = ami_core::secret::new_signing_token_key();
        for (method, suffix) in [(Method::GET, ""), (Method::POST, "/confirm")] {
            for query in [format!("?t={wrong}"), String::new(), "?t=".to_owned()] {
                let (s_real, b_real) = raw(
                    &server,
                    method.clone(),
                    &format!("/v1/sign/{}{suffix}{query}", a.contract),
                    None,
                    None,
                )
                .await;
                let (s_random, b_random) = raw(
                    &server,
                    method.clone(),
                    &format!("/v1/sign/{random}{suffix}{query}"),
                    None,
                    None,
                )
                .await;
                assert_eq!(
                    s_real,
                    StatusCode::NOT_FOUND,
                    "{engine:?} {method} {suffix}{query}: {}",
                    text(&b_real)
                );
                assert_eq!(
                    s_random,
                    StatusCode::NOT_FOUND,
                    "{engine:?} {method} {suffix}{query}"
                );
                assert_eq!(
                    b_real, b_random,
                    "{engine:?} {method} {suffix}{query}: the pages differ"
                );
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn lists_never_show_another_accounts_ids() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let ((acct_a, _, a), (_, key_b, b)) = two_tenants(&server).await;
        let secrets_of_a = [
            &acct_a,
            &a.mid,
            &a.sim_request,
            &a.offer,
            &a.customer,
            &a.contract,
            &a.phone_number,
            &a.agent_token,
            a.call.as_ref().unwrap(),
            a.webhook.as_ref().unwrap(),
            a.account_webhook.as_ref().unwrap(),
            a.delivery.as_ref().unwrap(),
            a.account_delivery.as_ref().unwrap(),
        ];
        let mut lists = Vec::new();
        for op in operations() {
            if op.method != Method::GET || !path_params(&op.path).is_empty() {
                continue;
            }
            let credential = if op.secured_by("bearerAuth") {
                key_b.as_str()
            } else if op.secured_by("agentBearer") {
                b.agent_token.as_str()
            } else {
                continue;
            };
            // The largest page, so nothing hides on a later one.
            let path = if op.path.contains("events") {
                format!("{}?limit=1000", op.path)
            } else {
                format!("{}?limit=200", op.path)
            };
            let (mut s, mut body) = raw(&server, Method::GET, &path, Some(credential), None).await;
            if s == StatusCode::BAD_REQUEST {
                // A route without paging: ask it plainly.
                (s, body) = raw(&server, Method::GET, &op.path, Some(credential), None).await;
            }
            assert_eq!(
                s,
                StatusCode::OK,
                "{engine:?} {}: {}",
                op.name(),
                text(&body)
            );
            let body = text(&body);
            for secret in secrets_of_a {
                assert!(
                    !body.contains(secret.as_str()),
                    "{engine:?} {} shows A's {secret} to B: {body}",
                    op.name()
                );
            }
            lists.push((op.path.clone(), body));
        }
        let body_of = |p: &str| {
            lists
                .iter()
                .find(|(path, _)| path == p)
                .map(|(_, b)| b.clone())
                .expect(p)
        };
        // Not vacuous: B does see its own resources there.
        assert!(
            body_of("/v1/mobile-identities").contains(&b.mid),
            "{engine:?}"
        );
        assert!(body_of("/v1/events").contains(&b.sim_request), "{engine:?}");
        assert!(body_of("/v1/agent/self").contains(&b.mid), "{engine:?}");
        assert!(
            body_of("/v1/account/webhooks").contains(b.account_webhook.as_deref().unwrap()),
            "{engine:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn agent_tokens_act_only_on_their_own_mid_and_rotate_independently() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let ((acct_a, key_a, a), (acct_b, _, b)) = two_tenants(&server).await;
        for (flow, account) in [(&a, &acct_a), (&b, &acct_b)] {
            let (s, me) = server.get("/v1/agent/self", &flow.agent_token).await;
            assert_eq!(s, StatusCode::OK, "{engine:?} {me}");
            assert_eq!(me["mobile_identity_id"], flow.mid.as_str(), "{engine:?}");
            assert_eq!(me["customer_id"], account.as_str(), "{engine:?}");
            assert_eq!(me["phone_number"], flow.phone_number.as_str(), "{engine:?}");
        }
        // An agent token is not a way into any customer route, its own MID's or B's.
        for mid in [&b.mid, &a.mid] {
            let (s, v) = server
                .get(&format!("/v1/mobile-identities/{mid}"), &a.agent_token)
                .await;
            assert_eq!(
                (s, v["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{engine:?} {v}"
            );
        }
        // Rotating A's token kills A's old token at once and leaves B's untouched.
        let (s, rotated) = server
            .post(
                &format!("/v1/mobile-identities/{}/rotate-token", a.mid),
                &key_a,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {rotated}");
        let new_a = rotated["agent_token"].as_str().unwrap();
        let (s, v) = server.get("/v1/agent/self", &a.agent_token).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_agent_token")),
            "{engine:?} {v}"
        );
        let (s, me) = server.get("/v1/agent/self", new_a).await;
        assert_eq!(
            (s, me["mobile_identity_id"].as_str()),
            (StatusCode::OK, Some(a.mid.as_str())),
            "{engine:?} {me}"
        );
        let (s, me) = server.get("/v1/agent/self", &b.agent_token).await;
        assert_eq!(
            (s, me["mobile_identity_id"].as_str()),
            (StatusCode::OK, Some(b.mid.as_str())),
            "{engine:?} {me}"
        );
        server.stop().await;
    }
}
