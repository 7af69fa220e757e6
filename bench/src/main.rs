//! `ami-bench`: drives a running AMI server and prints what it measured.
//!
//!   ami-bench throughput <base-url> <admin-key> <seconds>   health vs authenticated MID read
//!   ami-bench flow <base-url> <admin-key> <flows>            the six contracting steps + self
//!   ami-bench sms <base-url> <admin-key> <seconds> <sqlite-path>  SMS sends vs health, dispatch backlog
//!   ami-bench sms-steady <base-url> <admin-key> <seconds> <sqlite-path> <drain-seconds>
//!       SMS sends alone, then the wait until all were handed to the carrier
//!   ami-bench sendsms <sendsms-url-up-to-to=> <seconds> <clients> <status-url> <drain-seconds>
//!       load on Kannel's smsbox, then the wait until bearerbox sent all it accepted
//!   ami-bench mcp <base-url> <admin-key> <calls>             ami.provision_number through MCP
//!   ami-bench webhooks <base-url> <admin-key> <seconds> <sqlite-path>  webhook deliveries vs SMS sends
//!   ami-bench seed <sqlite-path> <mids> <events> [messages]  preload data straight into the store
//!   ami-bench voice <base-url> <admin-key> <sip-host:port> <server-pid> <scenario-dir> <counts>
//!       <window-seconds> <setup-rate> <setup-seconds>
//!       SIPp calls to MIDs whose voice URL is an echo agent (counts: comma-separated, 0 for the
//!       latency probe alone; setup-seconds 0 skips the set-up rate)
//!
//! Every figure of one report comes from the same run against the same server, so ratios stay
//! meaningful on a noisy machine.

mod echo_agent;
mod load;
mod mcp;
mod rtp_probe;
mod seed;
mod sendsms;
mod voice;
mod webhooks;

use anyhow::{Context, bail};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .with_context(|| format!("missing argument {i}"))
    };
    match args.first().map(String::as_str) {
        Some("throughput") => load::throughput(&arg(1)?, &arg(2)?, arg(3)?.parse()?).await,
        Some("flow") => load::flows(&arg(1)?, &arg(2)?, arg(3)?.parse()?).await,
        Some("sms-steady") => {
            load::sms_steady(
                &arg(1)?,
                &arg(2)?,
                arg(3)?.parse()?,
                &arg(4)?,
                arg(5)?.parse()?,
            )
            .await
        }
        Some("sendsms") => {
            sendsms::run(
                &arg(1)?,
                arg(2)?.parse()?,
                arg(3)?.parse()?,
                &arg(4)?,
                arg(5)?.parse()?,
            )
            .await
        }
        Some("mcp") => mcp::provision(&arg(1)?, &arg(2)?, arg(3)?.parse()?).await,
        Some("sms") => load::sms(&arg(1)?, &arg(2)?, arg(3)?.parse()?, &arg(4)?).await,
        Some("webhooks") => webhooks::run(&arg(1)?, &arg(2)?, arg(3)?.parse()?, &arg(4)?).await,
        Some("seed") => {
            let messages = args.get(4).map_or(Ok(0), |m| m.parse())?;
            seed::run(&arg(1)?, arg(2)?.parse()?, arg(3)?.parse()?, messages).await
        }
        Some("voice") => {
            let counts = arg(6)?
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<u64>, _>>()?;
            let setup = voice::Setup {
                base: arg(1)?,
                admin_key: arg(2)?,
                sip: arg(3)?,
                server_pid: arg(4)?.parse()?,
                // SIPp runs in a scratch directory: the path must not be relative.
                scenarios: std::fs::canonicalize(arg(5)?)?,
            };
            let plan = voice::Plan {
                counts,
                window_secs: arg(7)?.parse()?,
                setup_rate: arg(8)?.parse()?,
                setup_secs: arg(9)?.parse()?,
            };
            voice::run(setup, plan).await
        }
        _ => {
            bail!(
                "usage: ami-bench throughput|flow|sms|sms-steady|sendsms|mcp|webhooks|seed|voice ... (see the source header)"
            )
        }
    }
}
