//! A loopback webhook receiver for the end-to-end tests: it captures every request (headers
//! and exact body bytes), answers as the test says at the moment the request arrives, and
//! counts connections, so a test can prove that none was made.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the receiver answers a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, these extra headers, a short body.
    Status(u16, Vec<(String, String)>),
    /// Wait this long, then answer 200: a slow receiver.
    Slow(Duration),
    /// Never answer; the connection stays open until the client gives up.
    Hang,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status(200, vec![])
    }

    pub fn status(status: u16) -> Reply {
        Reply::Status(status, vec![])
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub started: Instant,
    /// When the answer was written; None if the receiver never answered.
    pub finished: Option<Instant>,
    /// The status answered.
    pub status: Option<u16>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The payload's `event`.
    pub fn event(&self) -> String {
        self.json()["event"].as_str().unwrap_or_default().to_owned()
    }

    /// Writes `headers.json` and `body.bin` into `dir`, the form both verifiers read.
    pub fn save(&self, dir: &Path) {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        std::fs::write(
            dir.join("headers.json"),
            serde_json::to_vec(&headers).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("body.bin"), &self.body).unwrap();
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Captured>>>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// A receiver on 127.0.0.1, answering `reply` until told otherwise.
    pub async fn start(reply: Reply) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = {
            let (reply, requests, accepted) = (reply.clone(), requests.clone(), accepted.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (reply, requests) = (reply.clone(), requests.clone());
                    tokio::spawn(serve(stream, reply, requests));
                }
            })
        };
        Receiver {
            addr,
            reply,
            requests,
            accepted,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the captured requests; panics after `secs`.
    pub async fn wait_until(&self, secs: u64, what: &str, done: impl Fn(&[Captured]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let seen = self.requests();
            if done(&seen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "receiver: {what} not seen in {secs} s; got {} request(s): {:?}",
                seen.len(),
                seen.iter().map(Captured::event).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Captured>>>,
) {
    let Some((path, headers, body)) = read_request(&mut stream).await else {
        return;
    };
    let index = {
        let mut all = requests.lock().unwrap();
        all.push(Captured {
            path,
            headers,
            body,
            started: Instant::now(),
            finished: None,
            status: None,
        });
        all.len() - 1
    };
    let reply = reply.lock().unwrap().clone();
    let (status, extra) = match reply {
        Reply::Status(status, extra) => (status, extra),
        Reply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            (200, vec![])
        }
        Reply::Hang => {
            // Hold the connection until the client closes it.
            let mut buf = [0u8; 64];
            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                if n == 0 {
                    break;
                }
            }
            return;
        }
    };
    let mut out = format!("HTTP/1.1 {status} Answer\r\nContent-Length: 7\r\nConnection: close\r\n");
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\nanswer\n");
    if stream.write_all(out.as_bytes()).await.is_ok() {
        let mut all = requests.lock().unwrap();
        all[index].finished = Some(Instant::now());
        all[index].status = Some(status);
    }
}

/// Path, lower-cased headers and the exact body of one HTTP/1.1 request.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some((path, headers, body))
}
