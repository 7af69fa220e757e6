//! The MCP test harness: the `/mcp` router on 127.0.0.1:0 over the use cases on a temporary
//! SQLite store with a sandbox number pool, accounts made by the operator use case, and a small
//! JSON-RPC client that speaks streamable HTTP the way any MCP client does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use ami_mcp::McpConfig;
use ami_services::{Services, Settings, SystemClock};
use ami_store::{OpenOptions, Store};

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub services: Services,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn services(dir: &std::path::Path, settings: Settings) -> Services {
    let url = format!("sqlite://{}/ami.db", dir.display());
    let store = Store::open(&url, &OpenOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    // Webhook and voice secrets are sealed at rest (`ami_store::sealed`).
    let store = store.with_secrets(ami_store::sealed::SecretBox::generate().0);
    let (admin_hash, _) =
        ami_services::auth::bootstrap_admin_key(&store, Some("test-admin-key-0123456789"), |_| {})
            .await
            .unwrap();
    let services = Services::new(store, settings, Arc::new(SystemClock), admin_hash);
    services
        .seed_number_pool(ami_store::numbers::Pool::Main, "ES", "+34600000000", 400)
        .await
        .unwrap();
    services
        .seed_number_pool(ami_store::numbers::Pool::Main, "CO", "+573000000000", 20)
        .await
        .unwrap();
    services
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(McpConfig::default()).await
    }

    pub async fn start_with(config: McpConfig) -> TestServer {
        Self::start_with_settings(config, Settings::default()).await
    }

    pub async fn start_with_settings(config: McpConfig, settings: Settings) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let services = services(dir.path(), settings).await;
        let app = ami_mcp::router(services.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestServer {
            addr,
            url: format!("http://{addr}/mcp"),
            services,
            http: reqwest::Client::new(),
            _dir: dir,
            _task: task,
        }
    }

    /// A new account; returns its customer key.
    pub async fn account(&self, name: &str) -> String {
        self.services
            .create_customer(
                &self
                    .services
                    .authenticate_admin(Some("test-admin-key-0123456789"))
                    .unwrap(),
                ami_services::admin::NewCustomer {
                    name: Some(name.into()),
                    billing_email: None,
                },
            )
            .await
            .unwrap()
            .api_key
    }

    pub fn client(&self, bearer: Option<&str>) -> McpClient {
        McpClient {
            url: self.url.clone(),
            http: self.http.clone(),
            bearer: bearer.map(str::to_owned),
        }
    }
}

/// One JSON-RPC message per POST, as the streamable HTTP transport says.
#[derive(Clone)]
pub struct McpClient {
    pub url: String,
    pub http: reqwest::Client,
    pub bearer: Option<String>,
}

impl McpClient {
    /// POSTs one JSON-RPC request; returns the HTTP status and the JSON answer.
    pub async fn rpc(&self, method: &str, params: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = res.text().await.unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "stateless JSON responses expected, got {content_type}: {text}"
        );
        (status, serde_json::from_str(&text).unwrap())
    }

    pub async fn list_tools(&self) -> Vec<Value> {
        let (status, body) = self.rpc("tools/list", json!({})).await;
        assert_eq!(status, 200, "{body}");
        body["result"]["tools"].as_array().unwrap().clone()
    }

    /// `tools/call`; returns the CallToolResult.
    pub async fn call(&self, name: &str, arguments: Value) -> Value {
        let (status, body) = self
            .rpc("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("error").is_none(), "JSON-RPC error: {body}");
        body["result"].clone()
    }

    /// A call that must succeed; returns its structured content.
    pub async fn ok(&self, name: &str, arguments: Value) -> Value {
        let r = self.call(name, arguments).await;
        assert_eq!(r["isError"], json!(false), "{name} failed: {r}");
        let structured = r["structuredContent"].clone();
        let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text, structured, "text and structured content differ");
        structured
    }

    /// A call that must be refused; returns the error body.
    pub async fn refused(&self, name: &str, arguments: Value) -> Value {
        let r = self.call(name, arguments).await;
        assert_eq!(r["isError"], json!(true), "{name} was not refused: {r}");
        r["structuredContent"].clone()
    }

    pub fn with(&self, bearer: Option<&str>) -> McpClient {
        McpClient {
            bearer: bearer.map(str::to_owned),
            ..self.clone()
        }
    }
}

/// A provisioned number: `(mid, agent_token, phone_number)`.
pub async fn provision(customer: &McpClient) -> (String, String, String) {
    let r = customer.ok("ami.provision_number", json!({})).await;
    let m = &r["mobile_identity"];
    (
        m["mobile_identity_id"].as_str().unwrap().to_owned(),
        m["agent_token"].as_str().unwrap().to_owned(),
        m["phone_number"].as_str().unwrap().to_owned(),
    )
}
