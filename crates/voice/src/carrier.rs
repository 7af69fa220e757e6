//! The carrier: the user agent, the RTP ports, the table of live calls, and the loop that
//! hands each SIP signal to its call's task.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ami_carrier::{
    BoxFuture, Carrier, CarrierEvent, Inbound, OutboundCall, OutboundSms, SubmitError,
};
use ami_media::leg::RtpLeg;
use ami_media::ports::PortAllocator;
use ami_media::sdp::{self, LocalAudio};
use ami_sip::{CallSignal, InviteError, OutboundInvite, Ua};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::call::{Call, Msg};
use crate::causes::Side;
use crate::directory::CallDirectory;
use crate::metrics::VoiceMetrics;
use crate::router::Router;
use crate::settings::VoiceSettings;

/// The suffix of the id under which a call's second leg (to a SIP URI) is signalled.
pub(crate) const B_LEG: &str = ".b";
/// How long `shutdown` waits for the calls' last events once the user agent has stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid SIP settings:\n{0}")]
    Settings(String),
    #[error(transparent)]
    Sip(#[from] ami_sip::StartError),
}

/// One live call's mailbox.
pub(crate) struct Live {
    pub control: mpsc::UnboundedSender<Msg>,
    pub telco_ref: Option<String>,
}

pub(crate) struct Shared {
    pub settings: VoiceSettings,
    pub ports: PortAllocator,
    pub bind_ip: IpAddr,
    pub media_ip: IpAddr,
    pub events: mpsc::UnboundedSender<Inbound>,
    pub directory: Arc<dyn CallDirectory>,
    ua: OnceLock<Ua>,
    calls: Mutex<HashMap<String, Live>>,
    /// SIP Call-ID of the first leg → our call id.
    refs: Mutex<HashMap<String, String>>,
    pub tasks: TaskTracker,
    pub metrics: Arc<VoiceMetrics>,
}

impl Shared {
    pub fn ua(&self) -> Option<&Ua> {
        self.ua.get()
    }

    /// Our SDP's session for a socket on `port`.
    pub fn local_audio(&self, port: u16) -> LocalAudio {
        LocalAudio {
            address: self.media_ip,
            port,
            session_id: rand::random::<u32>().into(),
            session_version: 1,
        }
    }

    /// A leg counted in the carrier's media totals.
    pub async fn bind_leg(&self) -> Result<RtpLeg, String> {
        let mut leg = RtpLeg::bind(&self.ports, self.bind_ip)
            .await
            .map_err(|e| e.to_string())?;
        leg.count_into(self.metrics.media.clone());
        Ok(leg)
    }

    /// Hands a call's event to the server, counting the calls that end.
    pub fn report(&self, event: CarrierEvent) -> bool {
        self.metrics.observe(&event);
        self.events.send(Inbound::unacknowledged(event)).is_ok()
    }

    /// Registers a call; false when the id is live already.
    pub fn insert(&self, call_id: &str, live: Live) -> bool {
        let Ok(mut calls) = self.calls.lock() else {
            return false;
        };
        if calls.contains_key(call_id) {
            return false;
        }
        if let (Some(r), Ok(mut refs)) = (&live.telco_ref, self.refs.lock()) {
            refs.insert(r.clone(), call_id.to_owned());
        }
        calls.insert(call_id.to_owned(), live);
        true
    }

    pub fn set_ref(&self, call_id: &str, telco_ref: &str) {
        if let Ok(mut calls) = self.calls.lock()
            && let Some(live) = calls.get_mut(call_id)
        {
            live.telco_ref = Some(telco_ref.to_owned());
            if let Ok(mut refs) = self.refs.lock() {
                refs.insert(telco_ref.to_owned(), call_id.to_owned());
            }
        }
    }

    pub fn remove(&self, call_id: &str) {
        let removed = self.calls.lock().ok().and_then(|mut c| c.remove(call_id));
        if let Some(r) = removed.and_then(|l| l.telco_ref)
            && let Ok(mut refs) = self.refs.lock()
        {
            refs.remove(&r);
        }
    }

    fn control(&self, call_id: &str) -> Option<mpsc::UnboundedSender<Msg>> {
        self.calls
            .lock()
            .ok()?
            .get(call_id)
            .map(|l| l.control.clone())
    }

    fn live_ref(&self, call_id: &str) -> Option<Option<String>> {
        self.calls
            .lock()
            .ok()?
            .get(call_id)
            .map(|l| l.telco_ref.clone())
    }

    fn by_ref(&self, telco_ref: &str) -> Option<String> {
        self.refs.lock().ok()?.get(telco_ref).cloned()
    }

    pub fn live_count(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// Calls over SIP trunks. Cheap to clone.
#[derive(Clone)]
pub struct SipCarrier {
    shared: Arc<Shared>,
}

impl SipCarrier {
    /// Binds the SIP listeners and starts the user agent; events of every call go to
    /// `events`.
    pub async fn start(
        settings: VoiceSettings,
        directory: Arc<dyn CallDirectory>,
        events: mpsc::UnboundedSender<Inbound>,
    ) -> Result<SipCarrier, StartError> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(StartError::Settings(problems.join("\n")));
        }
        let (Some(bind_ip), Some(media_ip)) = (settings.bind_ip(), settings.media_ip()) else {
            return Err(StartError::Settings("sip: no listener".into()));
        };
        let ports = PortAllocator::new(settings.rtp_port_first, settings.rtp_port_last)
            .map_err(|e| StartError::Settings(e.to_string()))?;
        let metrics = Arc::new(VoiceMetrics::default());
        let mut settings = settings;
        settings.bridge.totals = Some(metrics.media.clone());
        let shared = Arc::new(Shared {
            ports,
            bind_ip,
            media_ip,
            events,
            directory,
            ua: OnceLock::new(),
            calls: Mutex::new(HashMap::new()),
            refs: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            metrics,
            settings,
        });
        let router = Arc::new(Router {
            shared: shared.clone(),
        });
        let (ua, signals) = Ua::start(shared.settings.sip.clone(), router).await?;
        let _ = shared.ua.set(ua);
        tokio::spawn(dispatch(shared.clone(), signals));
        Ok(SipCarrier { shared })
    }

    /// The SIP listeners' addresses.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared.ua().map(Ua::local_addrs).unwrap_or_default()
    }

    /// Each trunk that registers, and whether its last registration succeeded.
    pub fn registrations(&self) -> Vec<(String, bool)> {
        let Some(ua) = self.shared.ua() else {
            return Vec::new();
        };
        self.shared
            .settings
            .sip
            .trunks
            .iter()
            .filter(|t| t.register)
            .map(|t| (t.name.clone(), ua.is_registered(&t.name)))
            .collect()
    }

    /// Calls under way (ringing or up).
    pub fn live_calls(&self) -> usize {
        self.shared.live_count()
    }

    /// The carrier's counters since it started.
    pub fn metrics(&self) -> &VoiceMetrics {
        &self.shared.metrics
    }

    /// Hangs up every live call (CANCEL or BYE), waits for their last events, and stops the
    /// listeners.
    pub async fn shutdown(&self) {
        if let Some(ua) = self.shared.ua() {
            ua.shutdown().await;
        }
        self.shared.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("SIP carrier shutdown: calls still ending after the grace period");
        }
    }

    async fn place(&self, call: OutboundCall) -> Result<String, SubmitError> {
        let shared = &self.shared;
        let ua = shared
            .ua()
            .ok_or_else(|| SubmitError::Unavailable("the SIP user agent is not running".into()))?
            .clone();
        // A second attempt for a call still live is the same call.
        if let Some(known) = shared.live_ref(&call.id) {
            return known.ok_or_else(|| SubmitError::Unknown("the call is being placed".into()));
        }
        let leg = shared.bind_leg().await.map_err(SubmitError::Unavailable)?;
        let offer = sdp::build_offer(
            &shared.local_audio(leg.local_port()),
            &shared.settings.codecs,
        );
        let (control, inbox) = mpsc::unbounded_channel();
        let live = Live {
            control: control.clone(),
            telco_ref: None,
        };
        if !shared.insert(&call.id, live) {
            return Err(SubmitError::Unknown("the call is being placed".into()));
        }
        let invite = OutboundInvite {
            call_id: call.id.clone(),
            from_e164: call.from.clone(),
            to_e164: call.to.clone(),
            trunk: None,
            sdp_offer: offer,
        };
        let sip_call_id = match ua.invite(invite).await {
            Ok(id) => id,
            Err(e) => {
                shared.remove(&call.id);
                return Err(match e {
                    InviteError::BadNumber(_)
                    | InviteError::BadUri(_)
                    | InviteError::NoTrunk
                    | InviteError::UnknownTrunk(_) => SubmitError::Rejected(e.to_string()),
                    InviteError::DuplicateCallId(_) => SubmitError::Unknown(e.to_string()),
                    InviteError::ShuttingDown | InviteError::Stack(_) => {
                        SubmitError::Unavailable(e.to_string())
                    }
                });
            }
        };
        shared.set_ref(&call.id, &sip_call_id);
        shared.metrics.started(false);
        let task = Call {
            shared: shared.clone(),
            call_id: call.id,
            telco_ref: sip_call_id.clone(),
            side: Side::Callee,
            from: call.from,
            to: call.to,
            leg_a: Some(leg),
            leg_b: None,
            b_live: false,
            b_answered: false,
            agent: call.agent,
            callback: call.callback_sip_uri,
            answered: false,
            rang: false,
            ours: None,
            server_hangup: false,
            control,
            media: None,
        };
        shared.tasks.spawn(task.run(inbox));
        Ok(sip_call_id)
    }
}

impl Carrier for SipCarrier {
    fn name(&self) -> &'static str {
        "sip"
    }

    fn submit_sms(&self, _sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async {
            Err(SubmitError::Rejected(
                "this carrier carries calls only".into(),
            ))
        })
    }

    fn place_call(&self, call: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(self.place(call))
    }

    fn hang_up(&self, telco_ref: String) -> BoxFuture<'_, Result<(), SubmitError>> {
        Box::pin(async move {
            let shared = &self.shared;
            // The reference is the SIP Call-ID; our call id is accepted too.
            let call_id = shared.by_ref(&telco_ref).unwrap_or(telco_ref);
            if let Some(control) = shared.control(&call_id) {
                let _ = control.send(Msg::HangUp);
            }
            Ok(())
        })
    }
}

/// Hands every signal to its call (the second leg's to the call it belongs to).
async fn dispatch(shared: Arc<Shared>, mut signals: mpsc::Receiver<CallSignal>) {
    while let Some(signal) = signals.recv().await {
        let (call_id, second) = match signal.call_id.strip_suffix(B_LEG) {
            Some(id) => (id, true),
            None => (signal.call_id.as_str(), false),
        };
        match shared.control(call_id) {
            Some(control) => {
                let msg = if second {
                    Msg::B(signal.event)
                } else {
                    Msg::A(signal.event)
                };
                let _ = control.send(msg);
            }
            None => debug!(call_id, "signal for a call no longer followed"),
        }
    }
}
