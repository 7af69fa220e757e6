//! One SMPP session's life: connect, bind, keep alive, hand what the SMSC sends to
//! [`crate::incoming`], and, when the link breaks or the SMSC unbinds, bind again after a
//! backoff with jitter. On shutdown it stops taking submissions, lets the window drain,
//! unbinds and closes.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter};
use rusmpp::types::COctetString;
use rusmpp::values::{InterfaceVersion, Npi, Ton};
use rusmpp::{CommandId, CommandStatus, Pdu};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, Event};
use crate::incoming::Incoming;
use crate::pace::Pace;
use crate::settings::Connection;

/// Largest PDU accepted from an SMSC; a longer `command_length` ends the connection.
pub(crate) const MAX_PDU: usize = 64 * 1024;
/// A bind that held this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);
/// How long a throttled session is left alone before it is offered submissions again.
pub(crate) const THROTTLE_PAUSE: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Transceiver,
    Transmitter,
    Receiver,
}

impl Role {
    pub fn submits(self) -> bool {
        self != Role::Receiver
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Transceiver => "transceiver",
            Role::Transmitter => "transmitter",
            Role::Receiver => "receiver",
        }
    }
}

/// Counters of one session, for health and metrics.
#[derive(Default)]
pub struct Counters {
    pub binds: AtomicU64,
    pub bind_failures: AtomicU64,
    pub submitted: AtomicU64,
    pub throttled: AtomicU64,
    pub refused: AtomicU64,
    pub unknown: AtomicU64,
    pub received: AtomicU64,
    pub disconnects: AtomicU64,
}

pub struct Session {
    pub connection: Arc<Connection>,
    pub role: Role,
    client: Mutex<Option<Client>>,
    up: AtomicBool,
    window: Arc<Semaphore>,
    in_flight: AtomicUsize,
    pub(crate) pace: Pace,
    throttled_until: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    pub counters: Counters,
}

impl Session {
    pub fn new(connection: Arc<Connection>, role: Role) -> Session {
        Session {
            window: Arc::new(Semaphore::new(connection.window)),
            pace: Pace::new(connection.max_per_second),
            connection,
            role,
            client: Mutex::new(None),
            up: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            throttled_until: Mutex::new(None),
            last_error: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.connection.name
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Up and not asked by the SMSC to slow down: offered new submissions.
    pub fn is_ready(&self) -> bool {
        self.is_up() && self.throttled_until().is_none_or(|t| t <= Instant::now())
    }

    pub fn throttled_until(&self) -> Option<Instant> {
        self.throttled_until.lock().ok().and_then(|t| *t)
    }

    pub fn throttle(&self) {
        if let Ok(mut t) = self.throttled_until.lock() {
            *t = Some(Instant::now() + THROTTLE_PAUSE);
        }
        self.counters.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_error(&self, error: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(error);
        }
    }

    pub fn client(&self) -> Option<Client> {
        self.client.lock().ok().and_then(|c| c.clone())
    }

    /// A place in the window, held until the response (or its timeout) comes; None when none
    /// frees up before `latest`.
    pub async fn window_slot(&self, latest: Instant) -> Option<WindowSlot<'_>> {
        let permit = tokio::time::timeout_at(latest, self.window.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(WindowSlot {
            session: self,
            _permit: permit,
        })
    }

    /// Connects and binds until `shutdown`, again after every loss.
    pub async fn run(self: Arc<Self>, incoming: Arc<Incoming>, shutdown: CancellationToken) {
        let c = &self.connection;
        let mut backoff = c.reconnect_min;
        loop {
            let started = Instant::now();
            match self.bind().await {
                Ok((client, events)) => {
                    self.counters.binds.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(connection = %c.name, role = self.role.as_str(), "SMPP bound");
                    self.serve(client, events, &incoming, &shutdown).await;
                    if shutdown.is_cancelled() {
                        return;
                    }
                    self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    self.counters.bind_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(connection = %c.name, role = self.role.as_str(), %error, "SMPP bind failed; retrying");
                    self.set_error(error);
                }
            }
            if started.elapsed() >= STABLE {
                backoff = c.reconnect_min;
            }
            // Full jitter within the upper half, so that many sessions do not come back at once.
            let wait = backoff.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(c.reconnect_max);
        }
    }

    async fn bind(&self) -> Result<(Client, mpsc::UnboundedReceiver<Event>), String> {
        let c = &self.connection;
        let link = tokio::time::timeout(
            c.response_timeout,
            crate::link::connect(&c.host, c.port, c.tls),
        )
        .await
        .map_err(|_| format!("connecting to {}:{} timed out", c.host, c.port))?
        .map_err(|e| format!("connecting to {}:{}: {e}", c.host, c.port))?;
        let (client, events) = Client::start(link, MAX_PDU);
        let system_id = c_octets(&c.system_id, "system_id")?;
        let password = c_octets(&c.password, "the password")?;
        let system_type = c_octets(&c.system_type, "system_type")?;
        // The three bind PDUs have the same fields under different types.
        macro_rules! bind {
            ($pdu:ident) => {
                Pdu::$pdu(
                    $pdu::builder()
                        .system_id(system_id)
                        .password(password)
                        .system_type(system_type)
                        .interface_version(InterfaceVersion::Smpp3_4)
                        .addr_ton(Ton::Unknown)
                        .addr_npi(Npi::Unknown)
                        .address_range(COctetString::empty())
                        .build(),
                )
            };
        }
        let pdu = match self.role {
            Role::Transceiver => bind!(BindTransceiver),
            Role::Transmitter => bind!(BindTransmitter),
            Role::Receiver => bind!(BindReceiver),
        };
        let refused = match client.request(pdu, c.response_timeout).await {
            Ok(resp) if resp.status() == CommandStatus::EsmeRok => None,
            Ok(resp) if resp.id() == CommandId::GenericNack => Some(format!(
                "the SMSC answered the bind with generic_nack ({})",
                crate::status::name(u32::from(resp.status()))
            )),
            Ok(resp) => Some(format!(
                "the SMSC refused the bind: {}",
                crate::status::name(u32::from(resp.status()))
            )),
            Err(e) => Some(format!("bind: {e}")),
        };
        if let Some(error) = refused {
            client.close();
            return Err(error);
        }
        Ok((client, events))
    }

    /// Serves one bound connection until it ends or `shutdown`.
    async fn serve(
        &self,
        client: Client,
        mut events: mpsc::UnboundedReceiver<Event>,
        incoming: &Arc<Incoming>,
        shutdown: &CancellationToken,
    ) {
        let c = &self.connection;
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some(client.clone());
        }
        if let Ok(mut e) = self.last_error.lock() {
            *e = None;
        }
        self.up.store(true, Ordering::Release);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_enquire = Instant::now();
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    incoming.expire();
                    if last_enquire.elapsed() >= c.enquire_link {
                        last_enquire = Instant::now();
                        let (client, timeout) = (client.clone(), c.response_timeout);
                        // A link that does not answer its keep-alive is dead: closed, bound again.
                        tokio::spawn(async move {
                            if client.request(Pdu::EnquireLink, timeout).await.is_err() {
                                client.close();
                            }
                        });
                    }
                    continue;
                }
                event = events.recv() => event,
            };
            let command = match event {
                Some(Event::Request(command)) => command,
                Some(Event::Closed(reason)) => {
                    tracing::warn!(connection = %c.name, role = self.role.as_str(), %reason, "SMPP connection ended");
                    self.set_error(reason);
                    break;
                }
                None => break,
            };
            match command.id() {
                CommandId::Unbind => {
                    tracing::info!(connection = %c.name, "the SMSC unbinds; binding again");
                    self.up.store(false, Ordering::Release);
                    client.respond(
                        command.sequence_number(),
                        CommandStatus::EsmeRok,
                        Pdu::UnbindResp,
                    );
                    self.set_error("the SMSC unbound".into());
                    // Let the unbind_resp leave before the link closes.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
                CommandId::DeliverSm | CommandId::DataSm => {
                    self.counters.received.fetch_add(1, Ordering::Relaxed);
                    incoming.accept(&client, command, &c.name);
                }
                CommandId::GenericNack => {
                    tracing::warn!(connection = %c.name, status = %crate::status::name(u32::from(command.status())), "generic_nack from the SMSC");
                }
                _ => client.respond(
                    command.sequence_number(),
                    CommandStatus::EsmeRinvcmdid,
                    Pdu::GenericNack,
                ),
            }
        }
        self.up.store(false, Ordering::Release);
        if shutdown.is_cancelled() && !client.is_closed() {
            // Submissions under way get their responses before the unbind.
            let drained = Instant::now() + c.response_timeout;
            while self.in_flight() > 0 && Instant::now() < drained {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = client.request(Pdu::Unbind, c.response_timeout).await;
        }
        if let Ok(mut slot) = self.client.lock() {
            *slot = None;
        }
        client.close();
    }
}

fn c_octets<const MAX: usize>(s: &str, what: &str) -> Result<COctetString<1, MAX>, String> {
    COctetString::from_str(s).map_err(|e| format!("{what} cannot be sent: {e}"))
}

/// A place in a session's window.
pub struct WindowSlot<'a> {
    session: &'a Session,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for WindowSlot<'_> {
    fn drop(&mut self) {
        self.session.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One bind and unbind on `connection`, for `ami doctor`: whether the SMSC takes this
/// account now. The error says why not.
pub async fn probe(connection: Arc<Connection>) -> Result<(), String> {
    let role = match connection.bind {
        crate::settings::BindMode::Transceiver => Role::Transceiver,
        crate::settings::BindMode::TransmitterReceiver => Role::Transmitter,
    };
    let timeout = connection.response_timeout;
    let session = Session::new(connection, role);
    let (client, _events) = session.bind().await?;
    let _ = client.request(Pdu::Unbind, timeout).await;
    client.close();
    Ok(())
}
