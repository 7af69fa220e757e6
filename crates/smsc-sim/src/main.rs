//! The simulator as a process, for benchmarks: prints its address as the first line of
//! stdout, serves until SIGTERM, SIGINT or the end of stdin, then prints its counters as
//! one JSON line.

use std::io::Read;
use std::time::Duration;

use ami_smsc_sim::{Credentials, MessageIdScheme, SimConfig, Smsc};
use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

const USAGE: &str = "usage: ami-smsc-sim [--listen ADDR] [--system-id ID --password PW] \
[--receipts on|off] [--receipt-delay-ms N] [--message-ids decimal|hex] \
[--deliver-timeout-ms N] [--response-delay-ms N]\n\
Without --system-id every bind is accepted. Stops on SIGTERM, SIGINT or end of stdin \
(stdin on /dev/null is not watched).";

const VALUE_FLAGS: [&str; 8] = [
    "--listen",
    "--system-id",
    "--password",
    "--receipts",
    "--receipt-delay-ms",
    "--deliver-timeout-ms",
    "--response-delay-ms",
    "--message-ids",
];

fn parse(args: impl Iterator<Item = String>) -> anyhow::Result<SimConfig> {
    let mut config = SimConfig {
        record_submits: false,
        ..SimConfig::default()
    };
    let (mut system_id, mut password) = (None, None);
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            bail!("{USAGE}");
        }
        if !VALUE_FLAGS.contains(&flag.as_str()) {
            bail!("unknown flag {flag}\n{USAGE}");
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let millis = |value: &str| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(value.parse().with_context(|| {
                format!("{flag} takes milliseconds, not {value:?}")
            })?))
        };
        match flag.as_str() {
            "--listen" => config.listen = value.parse().context("--listen takes HOST:PORT")?,
            "--system-id" => system_id = Some(value),
            "--password" => password = Some(value),
            "--receipts" => {
                config.receipts.enabled = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => bail!("--receipts takes on or off"),
                }
            }
            "--receipt-delay-ms" => config.receipts.delay = millis(&value)?,
            "--deliver-timeout-ms" => config.deliver_retry.response_timeout = millis(&value)?,
            // A network's round trip: what makes a submit window matter.
            "--response-delay-ms" => {
                let delay = millis(&value)?;
                config.faults.response_delay =
                    (!delay.is_zero()).then_some(ami_smsc_sim::ResponseDelay::Fixed(delay));
            }
            "--message-ids" => {
                config.message_ids = match value.as_str() {
                    "decimal" => MessageIdScheme::SequentialDecimal,
                    "hex" => MessageIdScheme::Hex,
                    _ => bail!("--message-ids takes decimal or hex"),
                }
            }
            _ => bail!("unknown flag {flag}\n{USAGE}"),
        }
    }
    match (system_id, password) {
        (Some(system_id), Some(password)) => {
            config.credentials = vec![Credentials::new(system_id, password)];
        }
        (None, None) => {}
        _ => bail!("--system-id and --password go together"),
    }
    Ok(config)
}

/// Whether stdin is /dev/null, whose immediate end must not stop the simulator.
fn stdin_is_null() -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata("/dev/stdin"),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(stdin), Ok(null)) => stdin.rdev() == null.rdev() && stdin.ino() == null.ino(),
        _ => false,
    }
}

/// Resolves when stdin reaches its end (never, when stdin is /dev/null).
fn stdin_closed() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    if stdin_is_null() {
        std::mem::forget(tx);
        return rx;
    }
    std::thread::spawn(move || {
        let mut buffer = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    rx
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = parse(std::env::args().skip(1))?;
    let smsc = Smsc::start(config).await?;
    println!("{}", smsc.addr());
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        _ = stdin_closed() => {}
    }
    println!("{}", smsc.counters().to_json());
    smsc.shutdown().await;
    Ok(())
}
