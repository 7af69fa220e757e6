//! Voice over SIP: SIPp as the trunk calling MIDs whose voice URL is the echo agent
//! (`echo_agent`), against a server with `call_carrier = "sip"` whose trunk allows
//! 127.0.0.1. Prints one JSON line per scenario:
//!
//! - `voice_calls` for each count N (0: the probe alone): N calls held at once, SIPp
//!   streaming RTP in each; once all N stream, the latency probe's call runs for the
//!   window while the server's CPU is read from /proc. When the calls have ended: the
//!   frames the agent got, lost and late (`echo_agent::CallFrames`), and the probe's
//!   latency from RTP packet sent to `media` frame received, p50/p99;
//! - `voice_setup`: SIPp starting calls at a fixed rate for a number of seconds, each
//!   held 1 s with RTP; calls created, succeeded and failed, by SIPp's own count.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

use crate::echo_agent::{self, CallFrames, Stats};
use crate::load::{self, Client, s};
use crate::rtp_probe;

/// MIDs the load calls are spread over.
const LOAD_MIDS: usize = 10;
/// Calls SIPp starts per second while building up a count.
const RAMP_RATE: u64 = 50;
/// The kernel's clock ticks in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

pub struct Setup {
    pub base: String,
    pub admin_key: String,
    /// The server's SIP listener, host:port.
    pub sip: String,
    pub server_pid: u32,
    /// Where uac_load.xml and uac_probe.xml are.
    pub scenarios: PathBuf,
}

pub struct Plan {
    pub counts: Vec<u64>,
    pub window_secs: u64,
    pub setup_rate: u64,
    pub setup_secs: u64,
}

pub async fn run(setup: Setup, plan: Plan) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("ami-bench-voice-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = scenarios(&setup, &plan, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn scenarios(setup: &Setup, plan: &Plan, work: &Path) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::default());
    let agent = echo_agent::start(stats.clone()).await?;
    let numbers = provision(setup, &format!("ws://{agent}/agent")).await?;
    let (probe_number, load_numbers) = numbers.split_first().context("no MIDs")?;
    *stats
        .probe_number
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = probe_number.clone();
    injection_file(&work.join("load.csv"), load_numbers)?;
    injection_file(&work.join("probe.csv"), std::slice::from_ref(probe_number))?;
    std::fs::write(work.join("bench.ulaw"), echo_agent::stream_file())?;

    for &count in &plan.counts {
        calls(setup, work, &stats, count, plan.window_secs).await?;
    }
    if plan.setup_secs > 0 {
        setup_rate(setup, work, &stats, plan.setup_rate, plan.setup_secs).await?;
    }
    Ok(())
}

/// A customer with LOAD_MIDS + 1 MIDs, each with the agent as its voice URL; their numbers,
/// the probe's first.
async fn provision(setup: &Setup, voice_url: &str) -> anyhow::Result<Vec<String>> {
    let c = Client::new(&setup.base)?;
    let key = load::customer(&c, &setup.admin_key).await?;
    let mut numbers = Vec::new();
    for _ in 0..=LOAD_MIDS {
        let mid = load::activated_mid(&c, &key).await?;
        let id = s(&mid, "/id")?;
        c.post(
            &format!("/v1/mobile-identities/{id}/voice-config"),
            &key,
            json!({"voice_url": voice_url}),
        )
        .await?;
        numbers.push(s(&mid, "/phone_number")?);
    }
    Ok(numbers)
}

fn injection_file(path: &Path, numbers: &[String]) -> anyhow::Result<()> {
    let mut text = String::from("SEQUENTIAL\n");
    for n in numbers {
        text.push_str(n);
        text.push_str(";\n");
    }
    Ok(std::fs::write(path, text)?)
}

/// `count` calls at once, the probe in the middle.
async fn calls(
    setup: &Setup,
    work: &Path,
    stats: &Arc<Stats>,
    count: u64,
    window_secs: u64,
) -> anyhow::Result<()> {
    stats.take_calls();
    take_latencies(stats);
    let ramp_secs = count.div_ceil(RAMP_RATE);
    // Long enough for the ramp, the probe's set-up and its window.
    let hold_ms = (ramp_secs + window_secs + 8) * 1_000;
    let load = if count > 0 {
        let rate = RAMP_RATE.min(count);
        let args = [
            "-r",
            &rate.to_string(),
            "-l",
            &count.to_string(),
            "-m",
            &count.to_string(),
            "-d",
            &hold_ms.to_string(),
            "-mp",
            "40000",
        ];
        Some(Sipp::start(setup, work, "uac_load", "load", &args)?)
    } else {
        None
    };
    let deadline = Instant::now() + Duration::from_secs(ramp_secs + 15);
    while (stats.live.load(Ordering::SeqCst) as u64) < count {
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} calls streaming after {} s",
                stats.live.load(Ordering::SeqCst),
                ramp_secs + 15
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let streaming = stats.live.load(Ordering::SeqCst);

    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port().to_string();
    let probe_hold = ((window_secs + 3) * 1_000).to_string();
    let probe_args = [
        "-m",
        "1",
        "-d",
        &probe_hold,
        "-mp",
        "48000",
        "-key",
        "probe_port",
        &port,
    ];
    let probe_sipp = Sipp::start(setup, work, "uac_probe", "probe", &probe_args)?;
    let cpu_before = cpu_ticks(setup.server_pid)?;
    let started = Instant::now();
    let sent = match rtp_probe::run(socket, &stats.probe, window_secs as u32 * 50).await {
        Ok(sent) => sent,
        Err(e) => {
            let run = probe_sipp.finish().await?;
            bail!("{e}; the probe call: {}", run.errors);
        }
    };
    let cpu = (cpu_ticks(setup.server_pid)? - cpu_before) / TICKS_PER_SEC;
    let window = started.elapsed().as_secs_f64();
    let probe_run = probe_sipp.finish().await?;
    let load_run = match load {
        Some(sipp) => Some(sipp.finish().await?),
        None => None,
    };
    // The agent counts a call once its socket closes, just after the BYE.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let frames = stats.take_calls();
    let total = frames
        .iter()
        .fold(CallFrames::default(), |a, f| CallFrames {
            received: a.received + f.received,
            lost: a.lost + f.lost,
            late: a.late + f.late,
        });
    let expected = total.received + total.lost;
    let latencies = take_latencies(stats);
    let cores = cpu / window;
    println!(
        "{}",
        json!({
            "scenario": "voice_calls",
            "calls": count,
            "streaming_at_once": streaming,
            "calls_failed": load_run.as_ref().map_or(0, |r| r.failed),
            "calls_measured": frames.len(),
            "frames_to_agent": total.received,
            "frames_lost": total.lost,
            "frames_late": total.late,
            "late_or_lost_pct": round(100.0 * (total.lost + total.late) as f64 / expected.max(1) as f64, 3),
            "late_after_ms": echo_agent::LATE_AFTER_MS,
            "probe_packets": sent,
            "probe_frames": latencies.len(),
            "probe_failed": probe_run.failed,
            "latency_p50_ms": percentile_ms(&latencies, 0.50),
            "latency_p99_ms": percentile_ms(&latencies, 0.99),
            "latency_max_ms": percentile_ms(&latencies, 1.0),
            "server_cores": round(cores, 3),
            "server_cpu_pct_per_call": round(100.0 * cores / (count + 1) as f64, 3),
        })
    );
    Ok(())
}

/// Calls started at `rate` per second for `secs`, each held 1 s with RTP.
async fn setup_rate(
    setup: &Setup,
    work: &Path,
    stats: &Arc<Stats>,
    rate: u64,
    secs: u64,
) -> anyhow::Result<()> {
    stats.take_calls();
    let total = rate * secs;
    let args = [
        "-r",
        &rate.to_string(),
        "-m",
        &total.to_string(),
        "-l",
        &(rate * 5).to_string(),
        "-d",
        "1000",
        "-mp",
        "40000",
    ];
    let cpu_before = cpu_ticks(setup.server_pid)?;
    let started = Instant::now();
    let run = Sipp::start(setup, work, "uac_load", "setup", &args)?
        .finish()
        .await?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(setup.server_pid)? - cpu_before) / TICKS_PER_SEC;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let streamed = stats.take_calls().len();
    println!(
        "{}",
        json!({
            "scenario": "voice_setup",
            "rate_per_sec": rate,
            "seconds": secs,
            "calls_created": run.created,
            "calls_succeeded": run.succeeded,
            "calls_failed": run.failed,
            "calls_streamed_to_agent": streamed,
            "sipp_wall_secs": round(wall, 1),
            "server_cores": round(cpu / wall, 3),
        })
    );
    if run.failed > 0 {
        eprintln!("{}", run.errors);
    }
    Ok(())
}

fn take_latencies(stats: &Stats) -> Vec<Duration> {
    let mut l = std::mem::take(
        &mut *stats
            .probe
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    stats
        .probe
        .sent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    l.sort();
    l
}

fn percentile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((last as f64) * p).round() as usize;
    Some(round(sorted[i].as_secs_f64() * 1e3, 2))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

/// One SIPp run of a scenario against the server.
struct Sipp {
    child: Child,
    stat_file: PathBuf,
    error_file: PathBuf,
}

struct SippRun {
    created: u64,
    succeeded: u64,
    failed: u64,
    errors: String,
}

impl Sipp {
    fn start(
        setup: &Setup,
        work: &Path,
        scenario: &str,
        tag: &str,
        args: &[&str],
    ) -> anyhow::Result<Sipp> {
        // Not `<tag>.csv`: that is the name of the injection files (load.csv, probe.csv).
        let stat_file = work.join(format!("{tag}.stat.csv"));
        let error_file = work.join(format!("{tag}.errors"));
        let _ = std::fs::remove_file(&stat_file);
        let _ = std::fs::remove_file(&error_file);
        let sip_port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let inf = if scenario == "uac_probe" {
            "probe.csv"
        } else {
            "load.csv"
        };
        let child = Command::new("sipp")
            .arg(&setup.sip)
            .arg("-sf")
            .arg(setup.scenarios.join(format!("{scenario}.xml")))
            .arg("-inf")
            .arg(work.join(inf))
            .args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
            .args([
                "-nostdin",
                "-recv_timeout",
                "15000",
                "-timeout",
                "600",
                "-timeout_error",
            ])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stat_file)
            .args(["-trace_err", "-error_file"])
            .arg(&error_file)
            .args(args)
            .current_dir(work)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("sipp (Debian package sip-tester) must be installed")?;
        Ok(Sipp {
            child,
            stat_file,
            error_file,
        })
    }

    async fn finish(self) -> anyhow::Result<SippRun> {
        let out = self.child.wait_with_output().await?;
        let stats = std::fs::read_to_string(&self.stat_file).with_context(|| {
            format!(
                "sipp wrote no statistics: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let mut lines = stats.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .context("empty statistics")?
            .split(';')
            .collect();
        let last: Vec<&str> = lines
            .next_back()
            .context("no statistics row")?
            .split(';')
            .collect();
        let field = |name: &str| -> anyhow::Result<u64> {
            let i = header
                .iter()
                .position(|h| *h == name)
                .with_context(|| format!("{name} in sipp's statistics"))?;
            Ok(last.get(i).context("short row")?.trim().parse()?)
        };
        let errors = std::fs::read_to_string(&self.error_file).unwrap_or_default();
        Ok(SippRun {
            created: field("TotalCallCreated")?,
            succeeded: field("SuccessfulCall(C)")?,
            failed: field("FailedCall(C)")?,
            errors: errors.lines().take(20).collect::<Vec<_>>().join("\n"),
        })
    }
}
