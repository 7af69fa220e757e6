//! Loopback receivers for the delivery tests: they count every accepted connection, so
//! a test can prove that no connection was made, and capture what they were sent.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_webhooks::{AllowSubnets, Guard, Sender, SenderConfig, StaticLookup};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub request_line: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A fixed response: status, extra header lines, body.
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200 with a chunked body that never ends (until the client goes away or a
    /// safety bound of 64 MiB / 30 s is hit).
    Endless,
    /// 200 announcing `Content-Length: 10000000000`, then bytes until the client goes.
    HugeContentLength,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply::Fixed {
            status,
            headers: vec![],
            body: b"ok".to_vec(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Reply::Fixed {
            status,
            headers: vec![("Location".into(), location.into())],
            body: b"moved".to_vec(),
        }
    }
}

/// A loopback HTTP/1.1 receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<Captured>>>,
    /// Body bytes the receiver managed to write (streaming replies).
    pub written: Arc<AtomicU64>,
    /// Set when a streaming reply stopped because the client closed the connection.
    pub client_closed: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

pub async fn spawn_receiver(bind: &str, reply: Reply) -> Receiver {
    let listener = TcpListener::bind(bind).await.unwrap();
    receiver_on(listener, reply)
}

pub fn receiver_on(listener: TcpListener, reply: Reply) -> Receiver {
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let written = Arc::new(AtomicU64::new(0));
    let client_closed = Arc::new(AtomicBool::new(false));
    let task = {
        let (accepted, requests, written, client_closed) = (
            accepted.clone(),
            requests.clone(),
            written.clone(),
            client_closed.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (reply, requests, written, client_closed) = (
                    reply.clone(),
                    requests.clone(),
                    written.clone(),
                    client_closed.clone(),
                );
                tokio::spawn(async move {
                    let mut stream = stream;
                    // Keep-alive: serve requests on one connection until the client
                    // closes it, so that a client that reuses connections shows it.
                    while let Some(captured) = read_request(&stream).await {
                        requests.lock().unwrap().push(captured);
                        match answer(stream, &reply, &written, &client_closed).await {
                            Some(open) => stream = open,
                            None => return,
                        }
                    }
                });
            }
        })
    };
    Receiver {
        addr,
        accepted,
        requests,
        written,
        client_closed,
        task,
    }
}

async fn read_request(stream: &TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < length {
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
    }
    body.truncate(length);
    Some(Captured {
        request_line,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        410 => "Gone",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Bytes 0..=255 repeated: printable and non-printable, to exercise escaping.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 256) as u8).collect()
}

/// Writes the reply; returns the stream when the connection stays open.
async fn answer(
    mut stream: TcpStream,
    reply: &Reply,
    written: &AtomicU64,
    closed: &AtomicBool,
) -> Option<TcpStream> {
    match reply {
        Reply::Fixed {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n",
                reason(*status),
                body.len()
            );
            for (n, v) in headers {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
            out.push_str("\r\n");
            stream.write_all(out.as_bytes()).await.ok()?;
            stream.write_all(body).await.ok()?;
            Some(stream)
        }
        Reply::Endless | Reply::HugeContentLength => {
            let chunked = matches!(reply, Reply::Endless);
            let head = if chunked {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned()
            } else {
                "HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n".to_owned()
            };
            if stream.write_all(head.as_bytes()).await.is_err() {
                return None;
            }
            let data = pattern(8192);
            let started = std::time::Instant::now();
            while written.load(Ordering::SeqCst) < 64 << 20
                && started.elapsed() < Duration::from_secs(30)
            {
                let result = if chunked {
                    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
                    frame.extend_from_slice(&data);
                    frame.extend_from_slice(b"\r\n");
                    stream.write_all(&frame).await
                } else {
                    stream.write_all(&data).await
                };
                if result.is_err() {
                    closed.store(true, Ordering::SeqCst);
                    return None;
                }
                written.fetch_add(data.len() as u64, Ordering::SeqCst);
            }
            None
        }
    }
}

pub fn test_config() -> SenderConfig {
    SenderConfig {
        connect_timeout: Duration::from_secs(1),
        total_timeout: Duration::from_secs(10),
        ..SenderConfig::default()
    }
}

pub fn guard(allow: &str, lookup: Arc<StaticLookup>) -> Guard {
    Guard::new(AllowSubnets::parse(allow).unwrap()).with_lookup(lookup)
}

pub fn sender(guard: Guard) -> Sender {
    Sender::new(guard, test_config()).unwrap()
}
