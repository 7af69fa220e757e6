//! The simulator driven over TCP by a minimal client on the same codec.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod binds;
mod client;
mod faults;
mod mo;
mod receipts;
mod submits;
mod throughput;

use std::time::Duration;

use ami_smsc_sim::{Credentials, DeliverRetry, SimConfig, Smsc};

/// A simulator accepting ("ami", "secret") and ("other", "secret"), resending unanswered
/// deliver_sm after 300 ms.
pub async fn start_with(adjust: impl FnOnce(&mut SimConfig)) -> Smsc {
    let mut config = SimConfig {
        credentials: vec![
            Credentials::new("ami", "secret"),
            Credentials::new("other", "secret"),
        ],
        deliver_retry: DeliverRetry {
            response_timeout: Duration::from_millis(300),
            max_attempts: 5,
        },
        ..SimConfig::default()
    };
    adjust(&mut config);
    Smsc::start(config).await.unwrap()
}

pub async fn start() -> Smsc {
    start_with(|_| {}).await
}
