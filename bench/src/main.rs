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
//!
//! Every figure of one report comes from the same run against the same server, so ratios stay
//! meaningful on a noisy machine.

mod load;
mod mcp;
mod seed;
mod sendsms;
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
        _ => {
            bail!(
                "usage: ami-bench throughput|flow|sms|sms-steady|sendsms|mcp|webhooks|seed ... (see the source header)"
            )
        }
    }
}
