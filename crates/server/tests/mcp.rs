//! The MCP endpoint inside `ami serve` (issue: agent-native access): `/mcp` answers with the
//! same credentials and the same store as REST, on both engines; what a tool does is visible
//! over REST and the other way round; `/llms.txt` and `/docs` list the live tools (and `/docs`
//! the webhook test vectors); and every
//! tool calls use cases that a REST route calls too, so the two can never drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn rpc(server: &TestServer, bearer: Option<&str>, method: &str, params: Value) -> Value {
    let mut req = server
        .http
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn tool(server: &TestServer, bearer: &str, name: &str, arguments: Value) -> Value {
    let v = rpc(
        server,
        Some(bearer),
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await;
    v["result"].clone()
}

#[tokio::test]
async fn mcp_and_rest_share_one_service() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Agents").await;

        let listed = rpc(&server, Some(&key), "tools/list", json!({})).await;
        let names: Vec<&str> = listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let catalogue: Vec<&str> = ami_mcp::catalogue().iter().map(|t| t.name).collect();
        assert_eq!(names.len(), catalogue.len(), "{names:?}");
        assert!(catalogue.iter().all(|n| names.contains(n)), "{names:?}");

        // A number contracted over MCP is the customer's over REST.
        let provisioned = tool(&server, &key, "ami.provision_number", json!({})).await;
        assert_eq!(provisioned["isError"], false, "{engine:?} {provisioned}");
        let mid = &provisioned["structuredContent"]["mobile_identity"];
        let (mid_id, token) = (
            mid["mobile_identity_id"].as_str().unwrap(),
            mid["agent_token"].as_str().unwrap(),
        );
        let (s, rest_mid) = server
            .get(&format!("/v1/mobile-identities/{mid_id}"), &key)
            .await;
        assert_eq!(s, StatusCode::OK, "{rest_mid}");

        // An SMS sent over MCP is in the agent's REST list, and the other way round.
        let sent = tool(
            &server,
            token,
            "ami.send_sms",
            json!({"to": "+34600123456", "body": "over mcp"}),
        )
        .await;
        assert_eq!(sent["isError"], false, "{engine:?} {sent}");
        let (s, _) = server
            .post(
                "/v1/agent/sms/send",
                token,
                json!({"to": "+34600123457", "body": "over rest"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let listed = tool(&server, token, "ami.list_sms", json!({})).await;
        let mut bodies: Vec<&str> = listed["structuredContent"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        bodies.sort_unstable();
        assert_eq!(bodies, ["over mcp", "over rest"], "{engine:?}");

        // A refusal carries the REST body: the agent can act on the reason.
        let refused = tool(
            &server,
            token,
            "ami.send_sms",
            json!({"to": "+4915112345678", "body": "abroad"}),
        )
        .await;
        assert_eq!(refused["isError"], true, "{refused}");
        assert_eq!(
            refused["structuredContent"]["error"], "country_not_allowed",
            "{refused}"
        );

        // No credential, no data.
        let anonymous = rpc(
            &server,
            None,
            "tools/call",
            json!({"name": "ami.list_sms", "arguments": {}}),
        )
        .await;
        let text = anonymous.to_string();
        assert!(
            !text.contains("over mcp") && !text.contains(mid_id),
            "{text}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn llms_txt_and_docs_list_the_live_tools() {
    let server = TestServer::start(common::Engine::Sqlite).await;
    for path in ["/llms.txt", "/docs"] {
        let text = server
            .http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for t in ami_mcp::catalogue() {
            assert!(text.contains(t.name), "{path} lacks {}", t.name);
        }
        assert!(text.contains("/mcp"), "{path}");
    }
    let docs = server
        .http
        .get(format!("{}/docs", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for v in ami_webhooks::TEST_VECTORS {
        assert!(docs.contains(v.ami_signature) && docs.contains(v.webhook_signature));
    }
    server.stop().await;
}

/// Every use case a tool calls is called by a REST handler too: the tools hold no logic of
/// their own. Read from the route sources, so a tool calling something REST does not use
/// fails here.
#[test]
fn every_tool_calls_use_cases_that_rest_calls() {
    let routes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut rest = String::new();
    for entry in std::fs::read_dir(routes).unwrap() {
        rest.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for t in ami_mcp::catalogue() {
        assert!(!t.calls.is_empty(), "{} calls nothing", t.name);
        for call in t.calls {
            let function = call.strip_prefix("Services::").unwrap();
            assert!(
                rest.contains(&format!(".{function}(")),
                "{} calls {call}, which no REST route calls",
                t.name
            );
        }
    }
}

/// `ami mcp --stdio` over a local store: a desktop agent's whole session on stdin/stdout,
/// and nothing but protocol on stdout.
#[test]
fn ami_mcp_stdio_serves_the_tools_over_the_local_store() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let key = format!("amik_live_{}", "ab".repeat(24));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(["mcp", "--stdio"])
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("ami.db").display()),
        )
        .env("AMI_API_KEY", &key)
        .env("AMI_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |id: u64, method: &str, params: Value| -> Value {
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(stdin, "{msg}").unwrap();
        if method == "initialize" {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            writeln!(stdin, "{note}").unwrap();
        }
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {line}"))
    };
    let init = ask(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test", "version": "1"}}),
    );
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    let tools = ask(2, "tools/list", json!({}));
    assert_eq!(
        tools["result"]["tools"].as_array().unwrap().len(),
        ami_mcp::catalogue().len(),
        "{tools}"
    );
    let provisioned = ask(
        3,
        "tools/call",
        json!({"name": "ami.provision_number", "arguments": {}}),
    );
    assert_eq!(provisioned["result"]["isError"], false, "{provisioned}");
    let number = provisioned["result"]["structuredContent"]["mobile_identity"]["phone_number"]
        .as_str()
        .unwrap();
    assert!(number.starts_with('+'), "{provisioned}");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// POSTs `body` to the real `/mcp` route with `content_type`; status and JSON body.
async fn raw_post(
    server: &TestServer,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = server
        .http
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let is_json = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    assert!(is_json, "{status}: not JSON");
    (status, res.json().await.unwrap())
}

/// A JSON-RPC 2.0 error object without an id, with `code`.
fn assert_rpc_error(what: &str, body: &Value, code: i64) {
    assert_eq!(body["jsonrpc"], "2.0", "{what}: {body}");
    assert_eq!(body["id"], Value::Null, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
    assert!(body.get("result").is_none(), "{what}: {body}");
}

/// What `/mcp` cannot take gets a JSON-RPC error object, as the streamable HTTP transport
/// allows: not JSON, a key twice or too deep → 400 / -32700; JSON that is no JSON-RPC
/// message → 400 / -32600; the wrong Content-Type → 415 / -32000. None of them acts.
#[tokio::test]
async fn mcp_refusals_are_json_rpc_errors() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Parser").await;
        let before = server.event_count().await;
        let json = Some("application/json");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let duplicate_method = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"ami.request_sim_offer","arguments":{}}}"#;
        let duplicate_argument = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ami.request_sim_offer","arguments":{"country":"ES","country":"CO"}}}"#;
        for (what, body) in [
            ("truncated", r#"{"jsonrpc":"2.0","id":1,"#),
            ("not JSON", "hello"),
            ("empty", ""),
            (
                "trailing garbage",
                r#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#,
            ),
            ("duplicate method", duplicate_method),
            ("duplicate argument", duplicate_argument),
            ("200 deep", deep.as_str()),
        ] {
            let (s, v) = raw_post(&server, Some(&key), json, body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{engine:?} {what}: {v}");
            assert_rpc_error(what, &v, -32700);
        }
        for (what, body) in [
            ("an object", r#"{"hello":"world"}"#),
            ("a batch", r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            ("a number", "42"),
        ] {
            let (s, v) = raw_post(&server, Some(&key), json, body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{engine:?} {what}: {v}");
            assert_rpc_error(what, &v, -32600);
        }
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let (s, v) = raw_post(&server, Some(&key), ct, ping).await;
            assert_eq!(
                s,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{engine:?} {ct:?}: {v}"
            );
            assert_rpc_error("content type", &v, -32000);
        }
        assert_eq!(server.event_count().await, before, "{engine:?}");
        let (_, list) = server.get("/v1/events?entity_type=sim_request", &key).await;
        assert_eq!(list["count"], 0, "{list}");

        // The same messages without the defect are answered.
        let (s, v) = raw_post(&server, Some(&key), json, ping).await;
        assert_eq!((s, &v["result"]), (StatusCode::OK, &json!({})), "{v}");
        let single = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ami.request_sim_offer","arguments":{"country":"CO"}}}"#;
        let (s, v) = raw_post(
            &server,
            Some(&key),
            Some("application/json; charset=utf-8"),
            single,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["result"]["structuredContent"]["offer"]["currency"], "COP",
            "{v}"
        );
        server.stop().await;
    }
}

/// A send over MCP to a number the numbering plan refuses is the REST refusal, and nothing
/// is sent.
#[tokio::test]
async fn mcp_sends_to_invalid_numbers_are_refused() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Planned").await;
        let flow = server.provision(&key).await;
        let before = server.event_count().await;
        for (name, arguments) in [
            (
                "ami.send_sms",
                json!({"to": "+346000000001234", "body": "x"}),
            ),
            (
                "ami.place_call",
                json!({"to": "+346000000001234", "callback_sip_uri": "sip:a@voice.example.org"}),
            ),
        ] {
            let refused = tool(&server, &flow.agent_token, name, arguments).await;
            assert_eq!(refused["isError"], true, "{refused}");
            assert_eq!(
                refused["structuredContent"]["error"], "invalid_to",
                "{refused}"
            );
        }
        assert_eq!(server.event_count().await, before, "{engine:?}");
        assert!(server.running.carrier.submissions().is_empty());
        server.stop().await;
    }
}
