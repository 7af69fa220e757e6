//! SMPP peers this project did not write, as child processes that speak JSON lines
//! (`tests/peers/`): an SMSC on the npm `smpp` package (`smsc.js`), and Jasmin, a gateway
//! between an ESME and an upstream SMSC (`jasmin_gateway.py`). Each prints `{"port": N}`
//! first, then one JSON line per event; the SMSC takes commands on stdin. `.ci/run` installs
//! the npm package with `npm ci`, Jasmin with pip in `tests/peers/.venv`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const NPM_CI: &str = "npm ci --prefix crates/server/tests/peers";
pub const JASMIN_PIP: &str = "python3 -m venv crates/server/tests/peers/.venv && \
     crates/server/tests/peers/.venv/bin/pip install -r crates/server/tests/peers/jasmin-requirements.txt";

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// Under `CI=true` a missing peer fails the test; elsewhere the test is skipped, loudly.
fn missing(what: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "this SMPP peer test needs {what}; CI must have it"
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         SKIPPED: this SMPP peer test needs {what}.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
    );
    false
}

/// Whether node and the installed npm `smpp` package are there.
pub fn node_smsc_ready() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return missing("node (Debian's nodejs and npm)");
    }
    if !peers_dir().join("node_modules/smpp/package.json").is_file() {
        return missing(&format!("the npm smpp package (run: {NPM_CI})"));
    }
    true
}

fn jasmin_python() -> PathBuf {
    peers_dir().join(".venv/bin/python")
}

/// Whether Jasmin is installed in `tests/peers/.venv` (it also needs RabbitMQ on
/// 127.0.0.1:5672 and Redis on 127.0.0.1:6379, which the test finds out by starting it).
pub fn jasmin_ready() -> bool {
    let installed = Command::new(jasmin_python())
        .args(["-c", "import jasmin"])
        .output()
        .is_ok_and(|o| o.status.success());
    installed || missing(&format!("Jasmin (run: {JASMIN_PIP})"))
}

pub struct Peer {
    pub port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<Value>>>,
    taken: Mutex<Vec<bool>>,
}

impl Peer {
    /// The npm SMSC on a free port of 127.0.0.1, with extra options of `smsc.js`.
    pub async fn node_smsc(options: &[&str]) -> Peer {
        let mut cmd = Command::new("node");
        cmd.arg(peers_dir().join("smsc.js")).args(options);
        Peer::start(cmd, 15).await
    }

    /// Jasmin between the SMPP server it opens and the SMSC on `upstream`.
    pub async fn jasmin(upstream: u16) -> Peer {
        let mut cmd = Command::new(jasmin_python());
        cmd.arg(peers_dir().join("jasmin_gateway.py"))
            .arg(upstream.to_string());
        Peer::start(cmd, 90).await
    }

    /// Spawns `cmd` and waits up to `secs` for its port line.
    async fn start(mut cmd: Command, secs: u64) -> Peer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"event": "unparsed", "line": line}));
                sink.lock().unwrap().push(value);
            }
        });
        let mut peer = Peer {
            port: 0,
            child,
            stdin,
            lines,
            taken: Mutex::new(Vec::new()),
        };
        let first = peer
            .next(
                |l| l.get("port").is_some() || l.get("error").is_some(),
                "its port",
                secs,
            )
            .await;
        let port = first["port"].as_u64();
        peer.port =
            u16::try_from(port.unwrap_or_else(|| panic!("{cmd:?} failed: {first}"))).unwrap();
        peer
    }

    /// Everything printed so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Takes the first line not taken yet for which `matches` holds, or `None`.
    fn take(&self, matches: &impl Fn(&Value) -> bool) -> Option<Value> {
        let lines = self.lines.lock().unwrap();
        let mut taken = self.taken.lock().unwrap();
        taken.resize(lines.len(), false);
        let at = (0..lines.len()).find(|&i| !taken[i] && matches(&lines[i]))?;
        taken[at] = true;
        Some(lines[at].clone())
    }

    /// Waits for the first line not taken yet for which `matches` holds, and takes it.
    pub async fn next(&self, matches: impl Fn(&Value) -> bool, what: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(line) = self.take(&matches) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "the peer did not print {what} in {secs} s; it printed {:?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The next line with this `event`.
    pub async fn event(&self, event: &str, secs: u64) -> Value {
        self.next(|l| l["event"] == event, event, secs).await
    }

    /// The SMSC sends a mobile-originated message; `long` splits even a short text.
    pub fn mo(&mut self, id: &str, from: &str, to: &str, text: &str, long: bool) {
        let command =
            json!({"cmd": "mo", "id": id, "from": from, "to": to, "text": text, "long": long});
        let stdin = self.stdin.as_mut().expect("the peer's stdin");
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
    }
}

/// Closing stdin ends the peer; a kill makes sure of it.
impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
