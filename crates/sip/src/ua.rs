//! The user agent: listeners, the SIP stack's endpoint and dialog layer, the table of live
//! calls, and the loop that sorts incoming requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::{CallIdFormat, TransactionReceiver};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TcpListenerConnection, TransportLayer};
use rsipstack::{EndpointBuilder, sip};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::call::{CallEvent, CallSignal, InboundRouter, InviteError, OutboundInvite, UriInvite};
use crate::settings::{SipSettings, Transport, Trunk, split_host_port};
use crate::{inbound, outbound, register};

/// Signals waiting for the server at most; a full channel slows the calls' tasks down.
const SIGNAL_CAPACITY: usize = 1024;
/// How long `shutdown` waits for live calls to say goodbye.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the user agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid SIP settings:\n{0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("the SIP stack failed to start: {0}")]
    Stack(String),
}

/// A live call's controls, by our call id.
pub(crate) struct CallHandle {
    pub hangup: CancellationToken,
}

pub(crate) struct Inner {
    pub settings: SipSettings,
    pub endpoint: EndpointInnerRef,
    pub dialogs: Arc<DialogLayer>,
    pub router: Arc<dyn InboundRouter>,
    signals: mpsc::Sender<CallSignal>,
    calls: Mutex<HashMap<String, CallHandle>>,
    pub registered: Mutex<HashMap<String, bool>>,
    pub stopping: AtomicBool,
    /// Ends registrations and the stack's loops.
    pub cancel: CancellationToken,
    pub tasks: TaskTracker,
}

impl Inner {
    pub async fn signal(&self, call_id: &str, event: CallEvent) {
        let signal = CallSignal {
            call_id: call_id.to_string(),
            event,
        };
        if self.signals.send(signal).await.is_err() {
            debug!(call_id, "call signal dropped: nobody listens");
        }
    }

    /// Takes a call id for a new call; false when it is live already.
    pub fn add_call(&self, call_id: &str, hangup: CancellationToken) -> bool {
        let Ok(mut calls) = self.calls.lock() else {
            return false;
        };
        if calls.contains_key(call_id) {
            return false;
        }
        calls.insert(call_id.to_string(), CallHandle { hangup });
        true
    }

    pub fn remove_call(&self, call_id: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(call_id);
        }
    }

    fn live_calls(&self) -> Vec<CancellationToken> {
        self.calls
            .lock()
            .map(|c| c.values().map(|h| h.hangup.clone()).collect())
            .unwrap_or_default()
    }

    pub fn credential(trunk: &Trunk) -> Option<Credential> {
        Some(Credential {
            username: trunk.username.clone()?,
            password: trunk.password.clone()?,
            realm: trunk.realm.clone(),
            auth_username: None,
        })
    }

    /// Our Contact with `user` as its user part.
    pub fn contact(&self, user: &str) -> Option<sip::Uri> {
        self.dialogs
            .build_local_contact(Some(user.to_string()), None)
            .ok()
    }
}

/// The SIP user agent. Cheap to clone; every clone drives the same stack.
#[derive(Clone)]
pub struct Ua {
    inner: Arc<Inner>,
}

impl Ua {
    /// Binds the listeners, starts the stack, registers the trunks that ask for it, and
    /// hands back the signals of every call.
    pub async fn start(
        settings: SipSettings,
        router: Arc<dyn InboundRouter>,
    ) -> Result<(Ua, mpsc::Receiver<CallSignal>), StartError> {
        settings.validate().map_err(StartError::Settings)?;
        let cancel = CancellationToken::new();
        let transport = TransportLayer::new(cancel.child_token());
        let external = |addr: SocketAddr| {
            settings
                .public_host
                .map(|ip| SocketAddr::new(ip, addr.port()))
        };
        if let Some(addr) = settings.listen_udp {
            let udp =
                UdpConnection::create_connection(addr, external(addr), Some(cancel.child_token()))
                    .await
                    .map_err(|e| StartError::Bind {
                        addr,
                        reason: e.to_string(),
                    })?;
            transport.add_transport(udp.into());
        }
        if let Some(addr) = settings.listen_tcp {
            // The stack binds its TCP listener in the background and only logs a failure:
            // try the address here so that a taken port fails the start.
            std::net::TcpListener::bind(addr).map_err(|e| StartError::Bind {
                addr,
                reason: e.to_string(),
            })?;
            let tcp = TcpListenerConnection::new(addr, external(addr))
                .await
                .map_err(|e| StartError::Stack(e.to_string()))?;
            transport.add_transport(tcp.into());
        }
        let t1 = settings.t1();
        let option = EndpointOption {
            t1,
            t1x64: t1 * 64,
            // The stack's default appends a fixed domain of its authors to every Call-ID.
            callid_format: CallIdFormat::Uuid,
            ..EndpointOption::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_transport_layer(transport)
            .with_cancel_token(cancel.clone())
            .with_option(option)
            .with_user_agent(concat!("ami/", env!("CARGO_PKG_VERSION")))
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| StartError::Stack(e.to_string()))?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let (signals, receiver) = mpsc::channel(SIGNAL_CAPACITY);
        let inner = Arc::new(Inner {
            settings,
            endpoint: endpoint.inner.clone(),
            dialogs,
            router,
            signals,
            calls: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            cancel: cancel.clone(),
            tasks: TaskTracker::new(),
        });
        let serving = endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serving.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        tokio::spawn(sort_incoming(inner.clone(), incoming));
        for trunk in inner.settings.trunks.iter().filter(|t| t.register) {
            tokio::spawn(register::keep_registered(inner.clone(), trunk.clone()));
        }
        Ok((Ua { inner }, receiver))
    }

    /// The addresses the listeners use (the UDP one resolved when bound to port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .endpoint
            .get_addrs()
            .iter()
            .filter_map(|a| a.get_socketaddr().ok())
            .collect()
    }

    /// Whether the trunk's last registration succeeded (false for trunks that do not
    /// register).
    pub fn is_registered(&self, trunk: &str) -> bool {
        self.inner
            .registered
            .lock()
            .map(|r| r.get(trunk).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    /// Calls a number through a trunk. Returns the SIP Call-ID once the INVITE is on its
    /// way; what follows comes as signals.
    pub async fn invite(&self, call: OutboundInvite) -> Result<String, InviteError> {
        let settings = &self.inner.settings;
        let trunk = match &call.trunk {
            Some(name) => settings
                .trunks
                .iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| InviteError::UnknownTrunk(name.clone()))?,
            None => settings.trunks.first().ok_or(InviteError::NoTrunk)?,
        };
        let to = trunk
            .number_format
            .to_trunk(&call.to_e164)
            .ok_or_else(|| InviteError::BadNumber(call.to_e164.clone()))?;
        let from = trunk
            .number_format
            .to_trunk(&call.from_e164)
            .ok_or_else(|| InviteError::BadNumber(call.from_e164.clone()))?;
        let (host, port) = split_host_port(&trunk.proxy).map_err(InviteError::Stack)?;
        let host = bracket_v6(&host);
        let (transport, param) = match trunk.transport {
            Transport::Udp => (sip::Transport::Udp, ""),
            Transport::Tcp => (sip::Transport::Tcp, ";transport=tcp"),
        };
        let callee = uri(&format!("sip:{to}@{host}:{port}{param}"))?;
        let caller = uri(&format!("sip:{from}@{host}"))?;
        let destination = SipAddr {
            r#type: Some(transport),
            addr: sip::HostWithPort::try_from(format!("{host}:{port}"))
                .map_err(|e| InviteError::Stack(e.to_string()))?,
        };
        self.start_invite(
            call.call_id,
            caller,
            callee,
            Some(destination),
            &from,
            Inner::credential(trunk),
            call.sdp_offer,
        )
        .await
    }

    /// Calls a SIP URI directly (a customer's own SIP engine), with the same signals.
    pub async fn invite_uri(&self, call: UriInvite) -> Result<String, InviteError> {
        let target = call.target.trim();
        let well_formed = (target.starts_with("sip:") || target.starts_with("sips:"))
            && !target.contains(char::is_whitespace);
        if !well_formed {
            return Err(InviteError::BadUri(call.target));
        }
        let callee = uri(target)?;
        if callee.host_with_port.to_string().is_empty() {
            return Err(InviteError::BadUri(call.target));
        }
        let from = if call.from.is_empty() {
            "anonymous".to_string()
        } else {
            call.from.clone()
        };
        let local = self
            .inner
            .contact(&from)
            .ok_or_else(|| InviteError::Stack("no listener".to_string()))?;
        let caller = uri(&format!("sip:{from}@{}", local.host_with_port))?;
        self.start_invite(
            call.call_id,
            caller,
            callee,
            None,
            &from,
            None,
            call.sdp_offer,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_invite(
        &self,
        call_id: String,
        caller: sip::Uri,
        callee: sip::Uri,
        destination: Option<SipAddr>,
        from_user: &str,
        credential: Option<Credential>,
        sdp_offer: String,
    ) -> Result<String, InviteError> {
        let inner = &self.inner;
        if inner.stopping.load(Ordering::SeqCst) {
            return Err(InviteError::ShuttingDown);
        }
        let contact = inner
            .contact(from_user)
            .ok_or_else(|| InviteError::Stack("no listener".to_string()))?;
        let hangup = CancellationToken::new();
        if !inner.add_call(&call_id, hangup.clone()) {
            return Err(InviteError::DuplicateCallId(call_id));
        }
        let option = InviteOption {
            caller,
            callee,
            destination,
            content_type: Some("application/sdp".to_string()),
            offer: Some(sdp_offer.clone().into_bytes()),
            contact,
            credential,
            ..InviteOption::default()
        };
        let (states, receiver) = inner.dialogs.new_dialog_state_channel();
        let (dialog, outcome) = match inner.dialogs.do_invite_async(option, states) {
            Ok(started) => started,
            Err(e) => {
                inner.remove_call(&call_id);
                return Err(InviteError::Stack(e.to_string()));
            }
        };
        let sip_call_id = dialog.id().call_id;
        inner.tasks.spawn(outbound::run(
            inner.clone(),
            outbound::Call {
                call_id,
                dialog,
                outcome,
                states: receiver,
                hangup,
                local_sdp: sdp_offer,
            },
        ));
        Ok(sip_call_id)
    }

    /// Ends a call: CANCEL before the answer, BYE after. Unknown or ended calls are
    /// ignored, so calling it twice is harmless.
    pub fn hang_up(&self, call_id: &str) {
        if let Ok(calls) = self.inner.calls.lock()
            && let Some(call) = calls.get(call_id)
        {
            call.hangup.cancel();
        }
    }

    /// Ends every live call (CANCEL or BYE, each reported `Ended`), drops the
    /// registrations and stops the listeners.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        for hangup in inner.live_calls() {
            hangup.cancel();
        }
        inner.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, inner.tasks.wait())
            .await
            .is_err()
        {
            warn!("SIP shutdown: calls still ending after the grace period");
        }
        register::unregister_all(inner).await;
        inner.cancel.cancel();
    }
}

fn uri(text: &str) -> Result<sip::Uri, InviteError> {
    sip::Uri::try_from(text).map_err(|_| InviteError::BadUri(text.to_string()))
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Sorts requests the stack could not match to a transaction: in-dialog ones go to their
/// dialog, new INVITEs to the inbound path, the rest get a short answer.
async fn sort_incoming(inner: Arc<Inner>, mut incoming: TransactionReceiver) {
    while let Some(mut tx) = incoming.recv().await {
        let to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        let method = tx.original.method;
        if to_tag {
            match inner.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None if method == Method::Ack => {}
                None => {
                    tokio::spawn(async move {
                        tx.reply(StatusCode::CallTransactionDoesNotExist).await.ok();
                    });
                }
            }
            continue;
        }
        match method {
            Method::Invite => {
                if inner.stopping.load(Ordering::SeqCst) {
                    tokio::spawn(async move {
                        tx.reply(StatusCode::ServiceUnavailable).await.ok();
                    });
                } else {
                    inner.tasks.spawn(inbound::run(inner.clone(), tx));
                }
            }
            Method::Ack => {}
            // Trunks probe with OPTIONS; answering keeps them routing to us.
            Method::Options => {
                tokio::spawn(async move {
                    tx.reply(StatusCode::OK).await.ok();
                });
            }
            Method::Bye | Method::Cancel => {
                tokio::spawn(async move {
                    tx.reply(StatusCode::CallTransactionDoesNotExist).await.ok();
                });
            }
            _ => {
                tokio::spawn(async move {
                    tx.reply(StatusCode::MethodNotAllowed).await.ok();
                });
            }
        }
    }
}
