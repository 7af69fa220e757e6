//! `ami mcp --stdio`: the same tools over stdin/stdout (newline-delimited JSON-RPC), for
//! desktop agents that start the server as a child process.
//!
//! Two backends:
//! - **Local**: the tools run in this process over a store opened from `DATABASE_URL`; the
//!   caller is the process's own credentials (`AMI_API_KEY` for customer tools,
//!   `AMI_AGENT_TOKEN` for agent tools).
//! - **Remote**: a transparent relay. Each JSON-RPC message read from stdin is POSTed to the
//!   remote server's `/mcp` with `Authorization: Bearer`, and whatever it answers (JSON or an
//!   SSE stream) is written back to stdout line by line. The remote server does all the work;
//!   the relay only picks the credential: the agent token for `tools/call` of an agent tool,
//!   the customer key otherwise.

use std::fmt;
use std::sync::Arc;

use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use crate::catalogue::{Level, find};
use crate::tools::{AmiMcp, Credentials};

/// What answers the tool calls.
pub enum StdioBackend {
    /// The tools run in this process over these use cases.
    Local(ami_services::Services),
    /// Relay to a remote AMI server. `url` is its base (`https://ami.example.org`) or its MCP
    /// endpoint itself (ending in `/mcp`).
    Remote { url: String },
}

/// The caller's credentials, fixed for the process.
#[derive(Clone, Default)]
pub struct StdioCredentials {
    /// A customer key (`AMI_API_KEY`), used by customer tools.
    pub customer_key: Option<String>,
    /// An agent token (`AMI_AGENT_TOKEN`), used by agent tools.
    pub agent_token: Option<String>,
}

impl fmt::Debug for StdioCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("StdioCredentials")
            .field("customer_key", &shown(&self.customer_key))
            .field("agent_token", &shown(&self.agent_token))
            .finish()
    }
}

impl StdioCredentials {
    /// `AMI_API_KEY` and `AMI_AGENT_TOKEN` from the environment (empty counts as unset).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Self {
            customer_key: var("AMI_API_KEY"),
            agent_token: var("AMI_AGENT_TOKEN"),
        }
    }

    fn for_level(&self, level: Level) -> Option<&str> {
        match level {
            Level::Customer => self.customer_key.as_deref(),
            Level::Agent => self.agent_token.as_deref(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("stdio: {0}")]
    Io(#[from] std::io::Error),
    #[error("MCP session: {0}")]
    Session(String),
    #[error("remote MCP endpoint: {0}")]
    Remote(String),
}

/// Serves the tools on this process's stdin and stdout until stdin closes. Nothing else may
/// write to stdout meanwhile (logs go to stderr).
pub async fn serve_stdio(
    backend: StdioBackend,
    credentials: StdioCredentials,
) -> Result<(), StdioError> {
    serve_stdio_on(
        backend,
        credentials,
        tokio::io::stdin(),
        tokio::io::stdout(),
    )
    .await
}

/// [`serve_stdio`] on any pair of streams (tests use pipes).
pub async fn serve_stdio_on<R, W>(
    backend: StdioBackend,
    credentials: StdioCredentials,
    reader: R,
    writer: W,
) -> Result<(), StdioError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    match backend {
        StdioBackend::Local(services) => {
            let server = AmiMcp::new(
                services,
                Credentials::Fixed {
                    customer_key: credentials.customer_key,
                    agent_token: credentials.agent_token,
                },
            );
            let running = server
                .serve((reader, writer))
                .await
                .map_err(|e| StdioError::Session(e.to_string()))?;
            running
                .waiting()
                .await
                .map_err(|e| StdioError::Session(e.to_string()))?;
            Ok(())
        }
        StdioBackend::Remote { url } => relay(&url, credentials, reader, writer).await,
    }
}

/// What the relay learns from the remote server and sends back on every request.
#[derive(Default)]
struct RelayState {
    session_id: Option<String>,
    protocol_version: Option<String>,
}

struct Relay {
    http: reqwest::Client,
    endpoint: String,
    credentials: StdioCredentials,
    state: Mutex<RelayState>,
    out: mpsc::UnboundedSender<String>,
}

fn endpoint_of(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with(crate::MCP_PATH) {
        base.to_owned()
    } else {
        format!("{base}{}", crate::MCP_PATH)
    }
}

async fn relay<R, W>(
    url: &str,
    credentials: StdioCredentials,
    reader: R,
    mut writer: W,
) -> Result<(), StdioError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| StdioError::Remote(e.to_string()))?;
    let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
    let relay = Arc::new(Relay {
        http,
        endpoint: endpoint_of(url),
        credentials,
        state: Mutex::new(RelayState::default()),
        out,
    });
    let write_task = tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            writer.write_all(line.as_bytes()).await?;
            writer.write_all(b"\n").await?;
            writer.flush().await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut lines = BufReader::new(reader).lines();
    let mut in_flight = JoinSet::new();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let relay = relay.clone();
        in_flight.spawn(async move { relay.forward(line).await });
        // Reap the finished ones as we go.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
    drop(relay);
    write_task
        .await
        .map_err(|e| StdioError::Remote(e.to_string()))??;
    Ok(())
}

impl Relay {
    fn emit(&self, message: &Value) {
        // The receiver lives until every sender is gone.
        let _ = self.out.send(message.to_string());
    }

    fn fail(&self, id: &Value, message: String) {
        if !id.is_null() {
            self.emit(&json!({"jsonrpc": "2.0", "id": id,
                              "error": {"code": -32603, "message": message}}));
        }
    }

    /// A tool call carries the credential of its tool's level; any other message (the
    /// handshake, the tool list) whichever credential there is.
    fn bearer_for(&self, message: &Value) -> Option<&str> {
        let tool = (message["method"] == "tools/call")
            .then(|| message["params"]["name"].as_str())
            .flatten()
            .and_then(find);
        match tool {
            Some(t) => self.credentials.for_level(t.level),
            None => self
                .credentials
                .customer_key
                .as_deref()
                .or(self.credentials.agent_token.as_deref()),
        }
    }

    async fn forward(&self, line: String) {
        let message: Value = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(_) => {
                self.emit(&json!({"jsonrpc": "2.0", "id": null,
                                  "error": {"code": -32700, "message": "parse error"}}));
                return;
            }
        };
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let mut request = self
            .http
            .post(&self.endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .body(line);
        if let Some(bearer) = self.bearer_for(&message) {
            request = request.bearer_auth(bearer);
        }
        {
            let state = self.state.lock().await;
            if let Some(v) = &state.protocol_version {
                request = request.header("mcp-protocol-version", v);
            }
            if let Some(s) = &state.session_id {
                request = request.header("mcp-session-id", s);
            }
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail(&id, format!("the AMI server could not be reached: {e}"));
                return;
            }
        };
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.state.lock().await.session_id = Some(session.to_owned());
        }
        let status = response.status();
        let is_sse = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            self.relay_events(response, &id).await;
            return;
        }
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.fail(&id, format!("the AMI server's answer broke off: {e}"));
                return;
            }
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(answer) if answer.get("jsonrpc").is_some() || answer.is_array() => {
                self.note(&answer).await;
                self.emit(&answer);
            }
            _ if body.is_empty() && status.is_success() => {} // a notification, accepted
            _ => {
                let text: String = String::from_utf8_lossy(&body)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect();
                self.fail(&id, format!("the AMI server answered {status}: {text}"));
            }
        }
    }

    /// Remembers the protocol version the server chose, to send it on later requests.
    async fn note(&self, answer: &Value) {
        if let Some(v) = answer["result"]["protocolVersion"].as_str() {
            self.state.lock().await.protocol_version = Some(v.to_owned());
        }
    }

    /// Writes each JSON-RPC message of an SSE stream as one line.
    async fn relay_events(&self, mut response: reqwest::Response, id: &Value) {
        let mut buffer = String::new();
        let mut data = String::new();
        let mut answered = false;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    if !answered {
                        self.fail(id, format!("the AMI server's stream broke off: {e}"));
                    }
                    return;
                }
            };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    if let Ok(message) = serde_json::from_str::<Value>(&data) {
                        answered |= message.get("id") == Some(id);
                        self.note(&message).await;
                        self.emit(&message);
                    }
                    data.clear();
                } else if let Some(value) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
        }
        if !answered {
            self.fail(id, "the AMI server's stream ended without an answer".into());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn endpoint_is_the_base_plus_mcp() {
        assert_eq!(endpoint_of("https://a.example/"), "https://a.example/mcp");
        assert_eq!(
            endpoint_of("https://a.example/mcp"),
            "https://a.example/mcp"
        );
    }

    #[test]
    fn credentials_by_level_and_redacted() {
        let c = StdioCredentials::from_env(|k| match k {
            "AMI_API_KEY" => Some("amik_live_x".into()),
            "AMI_AGENT_TOKEN" => Some(" ".into()),
            _ => None,
        });
        assert_eq!(c.agent_token, None);
        assert_eq!(c.for_level(Level::Customer), Some("amik_live_x"));
        assert_eq!(c.for_level(Level::Agent), None);
        assert!(!format!("{c:?}").contains("amik_live_x"));
    }
}
