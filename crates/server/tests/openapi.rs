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
    serde_json::to_value(ami_server::app::api().1).unwrap()
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
            "{engine:?}: /openapi.json differs from app::api().1"
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
        serde_json::to_string_pretty(&ami_server::app::api().1).unwrap()
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
