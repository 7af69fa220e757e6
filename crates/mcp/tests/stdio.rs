//! `ami mcp --stdio`: newline-delimited JSON-RPC over a pipe, with the tools in process over a
//! local store, and as a relay to a remote server's `/mcp`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};

use ami_mcp::{StdioBackend, StdioCredentials, serve_stdio_on};
use common::{TestServer, provision};

struct Pipe {
    write: tokio::io::WriteHalf<DuplexStream>,
    read: Lines<BufReader<tokio::io::ReadHalf<DuplexStream>>>,
    task: tokio::task::JoinHandle<Result<(), ami_mcp::StdioError>>,
}

fn start(backend: StdioBackend, credentials: StdioCredentials) -> Pipe {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server);
    let task = tokio::spawn(serve_stdio_on(
        backend,
        credentials,
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client);
    Pipe {
        write: client_write,
        read: BufReader::new(client_read).lines(),
        task,
    }
}

impl Pipe {
    async fn send(&mut self, message: Value) {
        self.write
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.read.next_line())
            .await
            .expect("an answer within 10 s")
            .unwrap()
            .expect("the stream is open");
        serde_json::from_str(&line).unwrap()
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let answer = self.next().await;
        assert_eq!(answer["id"], json!(id), "{answer}");
        answer
    }

    async fn handshake(&mut self) {
        let init = self
            .request(
                0,
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "desktop", "version": "1"}}),
            )
            .await;
        assert_eq!(init["result"]["serverInfo"]["name"], "ami", "{init}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }

    async fn tool(&mut self, id: u64, name: &str, arguments: Value) -> Value {
        let answer = self
            .request(
                id,
                "tools/call",
                json!({"name": name, "arguments": arguments}),
            )
            .await;
        answer["result"].clone()
    }

    async fn close(mut self) {
        self.write.shutdown().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops when its input closes")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn local_store_with_the_process_credentials() {
    let server = TestServer::start().await;
    let key = server.account("desktop").await;
    let (mid, token, _) = provision(&server.client(Some(&key))).await;

    let mut pipe = start(
        StdioBackend::Local(server.services.clone()),
        StdioCredentials {
            customer_key: Some(key.clone()),
            agent_token: Some(token.clone()),
        },
    );
    pipe.handshake().await;
    let tools = pipe.request(1, "tools/list", json!({})).await;
    assert_eq!(
        tools["result"]["tools"].as_array().unwrap().len(),
        ami_mcp::catalogue().len()
    );
    let sent = pipe
        .tool(
            2,
            "ami.send_sms",
            json!({"to": "+34600999010", "body": "from stdio"}),
        )
        .await;
    assert_eq!(sent["isError"], json!(false), "{sent}");
    assert_eq!(sent["structuredContent"]["mid"], json!(mid));
    let limits = pipe
        .tool(3, "ami.get_limits", json!({"mobile_identity_id": mid}))
        .await;
    assert_eq!(limits["isError"], json!(false), "{limits}");
    pipe.close().await;

    // Without an agent token, agent tools are refused and customer tools still work.
    let mut pipe = start(
        StdioBackend::Local(server.services.clone()),
        StdioCredentials {
            customer_key: Some(key),
            agent_token: None,
        },
    );
    pipe.handshake().await;
    let refused = pipe.tool(1, "ami.get_my_usage", json!({})).await;
    assert_eq!(refused["isError"], json!(true));
    assert_eq!(refused["structuredContent"]["error"], "invalid_agent_token");
    let ok = pipe.tool(2, "ami.search_sim_options", json!({})).await;
    assert_eq!(ok["isError"], json!(false), "{ok}");
    pipe.close().await;
}

#[tokio::test]
async fn remote_relay_to_the_http_endpoint() {
    let server = TestServer::start().await;
    let key = server.account("remote").await;
    let (mid, token, _) = provision(&server.client(Some(&key))).await;
    let base = format!("http://{}", server.addr);

    let mut pipe = start(
        StdioBackend::Remote { url: base.clone() },
        StdioCredentials {
            customer_key: Some(key.clone()),
            agent_token: Some(token.clone()),
        },
    );
    pipe.handshake().await;
    let tools = pipe.request(1, "tools/list", json!({})).await;
    assert_eq!(
        tools["result"]["tools"].as_array().unwrap().len(),
        ami_mcp::catalogue().len()
    );
    // The relay picks the credential by the tool's level.
    let usage = pipe.tool(2, "ami.get_my_usage", json!({})).await;
    assert_eq!(usage["structuredContent"]["mid"], json!(mid), "{usage}");
    let limits = pipe
        .tool(3, "ami.get_limits", json!({"mobile_identity_id": mid}))
        .await;
    assert_eq!(limits["structuredContent"]["mid"], json!(mid), "{limits}");
    let blocked = pipe
        .tool(
            4,
            "ami.send_sms",
            json!({"to": "+4915112345678", "body": "x"}),
        )
        .await;
    assert_eq!(blocked["isError"], json!(true));
    assert_eq!(blocked["structuredContent"]["error"], "country_not_allowed");
    // A line that is not JSON gets a JSON-RPC parse error, and the relay goes on.
    pipe.write.write_all(b"{not json\n").await.unwrap();
    let parse = pipe.next().await;
    assert_eq!(parse["error"]["code"], json!(-32700));
    let again = pipe.tool(5, "ami.search_sim_options", json!({})).await;
    assert_eq!(again["isError"], json!(false));
    pipe.close().await;

    // A server that cannot be reached: every request still gets an answer.
    let mut pipe = start(
        StdioBackend::Remote {
            url: "http://127.0.0.1:9/mcp".into(),
        },
        StdioCredentials::default(),
    );
    let answer = pipe.request(1, "tools/list", json!({})).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached")
    );
    pipe.close().await;
}
