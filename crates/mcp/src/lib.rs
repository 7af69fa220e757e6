//! AMI over the Model Context Protocol: the `ami.*` tools, built with the official Rust SDK
//! (`rmcp`), over the same use cases as REST.
//!
//! - [`router`] serves them over streamable HTTP at `/mcp`, stateless: no session, every POST
//!   carries one JSON-RPC message and gets its answer as one JSON response, so any replica can
//!   answer any request. The credential is the request's `Authorization: Bearer`, exactly as on
//!   REST: a customer key for customer tools, an agent token for agent tools.
//! - [`serve_stdio`] serves them over stdin/stdout for desktop agents, either in process over a
//!   local store or as a transparent relay to a remote server's `/mcp`.
//! - [`catalogue`] lists every tool with the use cases it calls.

mod args;
mod catalogue;
pub mod refusals;
mod stdio;
mod tools;

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use catalogue::{Level, ToolInfo, catalogue};
pub use stdio::{StdioBackend, StdioCredentials, StdioError, serve_stdio, serve_stdio_on};
pub use tools::AmiMcp;

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// Settings of the HTTP transport.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// `Host` header values accepted (`host` or `host:port`; a bare host accepts any port).
    /// This guards a server bound to a local address against DNS rebinding from a browser.
    /// Empty accepts every host (for a server behind a proxy that checks the host itself).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin` values accepted, with scheme (`https://app.example.org`, `:*` for any
    /// port). Empty disables the check. Requests without an `Origin` header (every
    /// non-browser client) always pass.
    pub allowed_origins: Vec<String>,
    /// Largest JSON-RPC message accepted; larger ones get 413.
    pub max_request_body_bytes: usize,
}

impl Default for McpConfig {
    /// Loopback hosts only, no Origin check, 1 MiB messages (the REST body cap).
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
            max_request_body_bytes: 1 << 20,
        }
    }
}

/// The MCP endpoint at [`MCP_PATH`], over streamable HTTP, stateless with JSON responses.
/// It needs no state of its own, so it merges into a router of any state type.
pub fn router<S>(services: ami_services::Services, config: McpConfig) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let server = AmiMcp::new(services, tools::Credentials::Http);
    let http = StreamableHttpServerConfig::default()
        // No sessions: every request is served on its own, by whichever replica gets it.
        .with_legacy_session_mode(false)
        // A tool call's answer is one `application/json` response, not an SSE stream.
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(config.allowed_hosts)
        .with_allowed_origins(config.allowed_origins)
        .with_max_request_body_bytes(config.max_request_body_bytes);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        http,
    );
    axum::Router::new()
        .route_service(MCP_PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(
            refusals::BodyCap(config.max_request_body_bytes),
            refusals::json_rpc_refusals,
        ))
}
