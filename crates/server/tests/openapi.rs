//! `/openapi.json` (PROTOCOL §3.1) is the OpenAPI 3.1 document of the very router that serves
//! requests: it declares the four security schemes, gives every operation a described
//! response and every JSON POST a request body, and it only changes on purpose (a committed
//! snapshot at `docs/openapi.json`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{TestServer, engines};
use reqwest::StatusCode;
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    ami_server::app::openapi_document()
}

/// `(method, path, operation)` for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn served_document_is_the_router_document() {
    let expected = document();
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let res = server
            .http
            .get(format!("{}/openapi.json", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/json"), "{ct}");
        let served: Value = res.json().await.unwrap();
        assert_eq!(
            served, expected,
            "{engine:?}: /openapi.json differs from app::openapi_document()"
        );
        server.stop().await;
    }
}

#[test]
fn is_openapi_31_with_the_four_security_schemes() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1"), "openapi = {version}");
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for name in ["bearerAuth", "agentBearer", "adminKey", "telcoKey"] {
        assert!(schemes.contains_key(name), "missing security scheme {name}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["telcoKey"]["in"],
        "header"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["telcoKey"]["name"],
        "X-Telco-Key"
    );
    // Every security requirement names a declared scheme.
    for (method, path, op) in operations(&doc) {
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains_key(name),
                    "{method} {path} names unknown scheme {name}"
                );
            }
        }
    }
}

#[test]
fn every_operation_describes_its_response_and_request() {
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() >= 20, "only {} operations", ops.len());
    let mut problems = Vec::new();
    for (method, path, op) in &ops {
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        let described = responses.values().any(|r| {
            r["content"].as_object().is_some_and(|c| !c.is_empty()) || r.get("$ref").is_some()
        });
        if !described {
            problems.push(format!("{method} {path}: no response with content"));
        }
        // JSON responses carry a schema.
        for (status, r) in &responses {
            if let Some(json) = r["content"].get("application/json")
                && json.get("schema").is_none()
            {
                problems.push(format!(
                    "{method} {path}: {status} application/json without a schema"
                ));
            }
        }
        let html_form = path == "/v1/sign/{id}/confirm";
        if method == "post" && !html_form {
            match op["requestBody"]["content"].as_object() {
                Some(c) if c.values().all(|m| m.get("schema").is_some()) && !c.is_empty() => {}
                _ => problems.push(format!("{method} {path}: no request body schema")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn snapshot_matches_docs_openapi_json() {
    let pretty = format!(
        "{}\n",
        serde_json::to_string_pretty(&ami_server::app::openapi_document()).unwrap()
    );
    let path = snapshot_path();
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != pretty {
        let first_difference = committed
            .lines()
            .zip(pretty.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map_or_else(
                || {
                    format!(
                        "lengths differ: {} committed lines, {} now",
                        committed.lines().count(),
                        pretty.lines().count()
                    )
                },
                |(i, (a, b))| format!("line {}: committed `{a}`, now `{b}`", i + 1),
            );
        panic!(
            "the OpenAPI document changed ({first_difference}).\nIf the change is intended, update the snapshot:\n  \
             UPDATE_SNAPSHOTS=1 cargo test -p ami-server --test openapi\nand commit docs/openapi.json."
        );
    }
}

/// The refusals of the layers around the handlers are documented where they can happen:
/// the credential's on every authenticated route, the body's wherever a JSON body is read,
/// the query's wherever parameters are taken, 404 wherever an id is.
#[test]
fn every_operation_documents_the_refusals_of_its_layers() {
    use ami_server::http::auth::{Level, METRICS_ROUTE, route_level};
    let doc = document();
    let mut problems = Vec::new();
    for (method, path, op) in operations(&doc) {
        // (status, why) the operation must document.
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        let level = (path != METRICS_ROUTE && path != "/mcp").then(|| route_level(&path, true));
        if let Some(level @ (Level::Customer | Level::Agent | Level::Admin | Level::Telco)) = level
        {
            wanted.push(("401", "credential"));
            let scheme = match level {
                Level::Customer => "bearerAuth",
                Level::Agent => "agentBearer",
                Level::Admin => "adminKey",
                _ => "telcoKey",
            };
            if op["security"] != serde_json::json!([{ scheme: [] }]) {
                problems.push(format!("{method} {path}: security is not {scheme} alone"));
            }
            if matches!(level, Level::Customer | Level::Agent) {
                wanted.push(("403", "suspended account"));
            }
            if method == "post" {
                wanted.push(("409", "Idempotency-Key reused"));
                let has_header = op["parameters"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["name"] == "Idempotency-Key"));
                if !has_header {
                    problems.push(format!("{method} {path}: no Idempotency-Key header"));
                }
            }
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415"] {
                wanted.push((status, "JSON body"));
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["in"] == "query") {
            wanted.push(("400", "query parameters"));
        }
        if params.iter().any(|p| p["in"] == "path") {
            wanted.push(("404", "an id"));
        }
        for (status, why) in wanted {
            if op["responses"].get(status).is_none() {
                problems.push(format!("{method} {path}: no {status} ({why})"));
            }
        }
        for p in params.iter().filter(|p| p["name"] == "limit") {
            if p["schema"]["type"] != "integer" {
                problems.push(format!("{method} {path}: limit is not an integer"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A body whose schema needs no field may be left out (it is read as `{}`); one that needs
/// fields may not. The required fields and enums of the inputs are stated.
#[test]
fn bodies_are_required_exactly_when_they_need_fields() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for (method, path, op) in operations(&doc) {
        let Some(body) = op.get("requestBody") else {
            continue;
        };
        // JSON bodies, and the one multipart form (the KYC page).
        let media = &body["content"];
        let schema = if media.get("application/json").is_some() {
            &media["application/json"]["schema"]
        } else {
            &media["multipart/form-data"]["schema"]
        };
        let resolved = match schema["$ref"].as_str() {
            Some(r) => &schemas[r.rsplit('/').next().unwrap()],
            None => schema,
        };
        let needs_fields = resolved["required"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
            || resolved.get("anyOf").is_some();
        assert_eq!(
            body["required"],
            Value::Bool(needs_fields),
            "{method} {path}"
        );
    }
    for (schema, fields) in [
        ("SendSms", &["to", "body"][..]),
        ("PlaceCall", &["to", "callback_sip_uri"]),
        ("InboundSms", &["from", "to", "body"]),
        ("InboundCall", &["from", "to"]),
        ("NewCustomer", &["name"]),
        ("NewContract", &["offer_id", "customer_id"]),
        ("EngageKillSwitch", &["scope", "reason"]),
        ("ReleaseKillSwitch", &["reason"]),
        ("RegisterWebhook", &["url"]),
    ] {
        assert_eq!(
            schemas[schema]["required"],
            serde_json::json!(fields),
            "{schema}"
        );
    }
    let capabilities = &schemas["NewSimRequest"]["properties"]["capabilities"];
    assert_eq!(
        capabilities["items"]["$ref"], "#/components/schemas/Capability",
        "{capabilities}"
    );
    assert_eq!(
        schemas["Capability"]["enum"],
        serde_json::json!(["sms", "voice"])
    );
    let sms_list = &doc["paths"]["/v1/agent/sms"]["get"]["parameters"];
    assert!(
        sms_list
            .to_string()
            .contains(r#""enum":["outbound","inbound"]"#),
        "{sms_list}"
    );
}

/// `/mcp` (JSON-RPC over POST) and `/metrics` (text) are in the document.
#[test]
fn mcp_and_metrics_are_documented() {
    let doc = document();
    let mcp = &doc["paths"]["/mcp"]["post"];
    assert_eq!(
        mcp["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/JsonRpcRequest"
    );
    assert!(doc["components"]["schemas"].get("JsonRpcError").is_some());
    let metrics = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(metrics.get("text/plain").is_some(), "{metrics}");
}
