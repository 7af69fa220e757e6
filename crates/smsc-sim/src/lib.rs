//! An SMSC simulator: enough of an SMPP 3.4 server to test and measure an ESME against,
//! including the faults a real SMSC shows (throttling, dropped connections, late and
//! out-of-order responses, receipts before responses, unbinds, garbage bytes).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use ami_smsc_sim::{Faults, SimConfig, Smsc, Trigger};
//! let smsc = Smsc::start(SimConfig::with_credentials("ami", "secret")).await?;
//! // ... point an ESME at smsc.addr() ...
//! smsc.set_faults(Faults { throttle: Some(Trigger::Next(3)), ..Faults::default() });
//! assert_eq!(smsc.counters().submits, smsc.submits().len() as u64);
//! smsc.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod codec;
mod config;
mod deliver;
mod faults;
mod gsm7;
mod mo;
mod observe;
mod receipts;
mod registry;
mod session;
mod submit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{
    Credentials, DeliverRetry, FinalState, FinalStateRule, MessageIdScheme, ReceiptConfig,
    Segmentation, SimConfig,
};
pub use faults::{Faults, ResponseDelay, Trigger};
pub use gsm7::decode as decode_gsm7;
pub use mo::MoCoding;
pub use observe::{
    BindInfo, BindType, Counters, SarInfo, SessionReport, SubmitAnswer, SubmitRecord,
};
pub use receipts::{RECEIPT_ESM_CLASS, receipt_text};

use registry::{Outgoing, Shared};

/// A running simulator. Dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct Smsc {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl Smsc {
    /// Listens on `config.listen` and serves until [`Smsc::shutdown`] or drop.
    pub async fn start(config: SimConfig) -> anyhow::Result<Smsc> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let acceptor = tokio::spawn(accept_loop(shared.clone(), listener));
        Ok(Smsc {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and closes every connection; returns once they are closed.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.await;
        }
        self.shared.all_connections_closed().await;
    }

    /// Replaces the fault plan; its counts (next N, every k-th, n-th submit) start afresh.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Sends a mobile-originated text to a bound receiver or transceiver of any system_id
    /// (queued until one binds), split into concatenated parts when too long for one. Each
    /// part is delivered (and resent) on its own, so with several receivers bound the parts
    /// may arrive on different sessions. Returns the part count.
    pub fn send_mo(
        &self,
        from: &str,
        to: &str,
        text: &str,
        coding: MoCoding,
    ) -> anyhow::Result<usize> {
        self.deliver_mo(None, from, to, text, coding)
    }

    /// As [`Smsc::send_mo`], to receivers of `system_id` only.
    pub fn send_mo_to(
        &self,
        system_id: &str,
        from: &str,
        to: &str,
        text: &str,
        coding: MoCoding,
    ) -> anyhow::Result<usize> {
        self.deliver_mo(Some(system_id), from, to, text, coding)
    }

    fn deliver_mo(
        &self,
        system_id: Option<&str>,
        from: &str,
        to: &str,
        text: &str,
        coding: MoCoding,
    ) -> anyhow::Result<usize> {
        let parts = mo::build_parts(
            from,
            to,
            text,
            coding,
            self.shared.config.segmentation,
            self.shared.next_concat_ref(),
        )?;
        let count = parts.len();
        for part in parts {
            observe::bump(&self.shared.tally.mo_parts);
            deliver::dispatch(&self.shared, system_id.map(str::to_owned), part);
        }
        Ok(count)
    }

    /// Sends an unbind to every bound session; each closes when its unbind_resp arrives.
    /// Returns how many sessions were asked.
    pub fn send_unbind(&self) -> usize {
        let links = self.shared.links();
        for link in &links {
            let command = Command::new(CommandStatus::EsmeRok, link.next_sequence(), Pdu::Unbind);
            link.send(Outgoing::Pdu(command));
        }
        links.len()
    }

    /// Writes `length` random bytes to every bound session. Returns how many got them.
    pub fn send_garbage(&self, length: usize) -> usize {
        let links = self.shared.links();
        for link in &links {
            let mut bytes = vec![0u8; length];
            rand::thread_rng().fill_bytes(&mut bytes);
            link.send(Outgoing::Raw(bytes));
        }
        links.len()
    }

    /// Every submit_sm received so far (when `record_submits` is on), in arrival order.
    pub fn submits(&self) -> Vec<SubmitRecord> {
        self.shared.submits()
    }

    /// The sessions bound now.
    pub fn binds(&self) -> Vec<BindInfo> {
        self.shared.binds()
    }

    /// Every session that ever bound, open or closed.
    pub fn sessions(&self) -> Vec<SessionReport> {
        self.shared
            .session_stats()
            .iter()
            .map(|stats| stats.report())
            .collect()
    }

    pub fn counters(&self) -> Counters {
        self.shared.tally.snapshot(&self.sessions())
    }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn(&Smsc) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.connection_opened();
                    tokio::spawn(session::serve(shared.clone(), stream, peer));
                }
                // Out of descriptors and the like: wait rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}
