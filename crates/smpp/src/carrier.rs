//! The SMPP carrier: routes each SMS to the first bound session of its route, keeps within
//! every session's window and throughput cap, and reads the SMSC's answer as the durability
//! rules need it: taken (its `message_id` is the reference), try later, refused for good, or
//! unknown (no answer, a `generic_nack`, the link lost after sending).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use rusmpp::pdus::SubmitSm;
use rusmpp::tlvs::MessageSubmissionRequestTlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{
    DataCoding, EsmClass, MessagePayload, Npi, RegisteredDelivery, ServiceType, Ton,
};
use rusmpp::{CommandId, Pdu};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use ami_carrier::{
    BoxFuture, Carrier, CarrierEvent, Inbound, OutboundCall, OutboundSms, SubmitError,
};
use ami_core::delivery::SmsStatus;

use crate::client::ClientError;
use crate::incoming::Incoming;
use crate::session::{Role, Session};
use crate::settings::{BindMode, Settings};
use crate::status::{self, Verdict};
use crate::text::{self, Part};

#[derive(Clone)]
pub struct Smpp {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// Every session, receivers included, in the order of the connections.
    sessions: Vec<Arc<Session>>,
    /// The sessions that submit, by connection name.
    submitters: HashMap<String, Arc<Session>>,
    events: UnboundedSender<Inbound>,
    incoming: Arc<Incoming>,
    reference: AtomicU16,
    shutdown: CancellationToken,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// What became of one part.
enum PartOutcome {
    Taken(String),
    Throttled,
    Refused(u32),
    Unknown(String),
    /// Not sent: no room in the window or the pace before the deadline, or no client.
    NotSent,
}

impl Smpp {
    /// Starts every session; they bind in the background and keep binding until
    /// [`Smpp::stop`].
    pub fn start(settings: Settings, events: UnboundedSender<Inbound>) -> Smpp {
        let mut sessions = Vec::new();
        let mut submitters = HashMap::new();
        for connection in &settings.connections {
            let connection = Arc::new(connection.clone());
            let roles: &[Role] = match connection.bind {
                BindMode::Transceiver => &[Role::Transceiver],
                BindMode::TransmitterReceiver => &[Role::Transmitter, Role::Receiver],
            };
            for role in roles {
                let session = Arc::new(Session::new(connection.clone(), *role));
                if role.submits() {
                    submitters.insert(connection.name.clone(), session.clone());
                }
                sessions.push(session);
            }
        }
        let incoming = Arc::new(Incoming::new(events.clone(), settings.reassembly_timeout));
        let shutdown = CancellationToken::new();
        let tasks = sessions
            .iter()
            .map(|s| tokio::spawn(s.clone().run(incoming.clone(), shutdown.clone())))
            .collect();
        let incoming = incoming.clone();
        Smpp {
            inner: Arc::new(Inner {
                settings,
                sessions,
                submitters,
                events,
                incoming,
                reference: AtomicU16::new(rand::random()),
                shutdown,
                tasks: std::sync::Mutex::new(tasks),
            }),
        }
    }

    /// Every session, for health and metrics.
    pub fn sessions(&self) -> &[Arc<Session>] {
        &self.inner.sessions
    }

    /// Whether some route covers `to` (up or not).
    pub fn routes(&self, to: &str) -> bool {
        !self.inner.settings.route(to).is_empty()
    }

    /// Stops taking submissions, lets each window drain, unbinds and closes.
    pub async fn stop(&self) {
        self.inner.shutdown.cancel();
        let tasks =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn submit(&self, sms: OutboundSms, deadline: Instant) -> Result<String, SubmitError> {
        let inner = &self.inner;
        let route: Vec<Arc<Session>> = inner
            .settings
            .route(&sms.to)
            .into_iter()
            .filter_map(|name| inner.submitters.get(name).cloned())
            .collect();
        if route.is_empty() {
            return Err(SubmitError::Rejected("no_route".into()));
        }
        let reference = inner.reference.fetch_add(1, Ordering::Relaxed);
        loop {
            let Some(session) = route.iter().find(|s| s.is_ready()) else {
                // Throttled sessions come back on their own; down ones need a bind.
                let back = route
                    .iter()
                    .filter(|s| s.is_up())
                    .filter_map(|s| s.throttled_until())
                    .min();
                match back {
                    Some(at) if at + session_margin(&route) < deadline => {
                        tokio::time::sleep_until(at).await;
                        continue;
                    }
                    Some(_) => return Err(SubmitError::Unavailable("ESME_RTHROTTLED".into())),
                    None => {
                        return Err(SubmitError::Down(
                            "no connection of the route is bound".into(),
                        ));
                    }
                }
            };
            let c = &session.connection;
            let parts = text::parts(&sms.body, c.long_messages, reference);
            let latest = deadline - c.response_timeout;
            match send(session, &sms, &parts[0], latest).await {
                PartOutcome::Taken(first) => {
                    let outcome = self.rest(session, &sms, &parts[1..], deadline).await;
                    if let Some(error) = outcome {
                        self.report(&sms.id, &first, SmsStatus::Failed, Some(error));
                    } else {
                        self.report(&sms.id, &first, SmsStatus::Sent, None);
                    }
                    return Ok(first);
                }
                PartOutcome::Throttled => session.throttle(),
                PartOutcome::NotSent => {
                    if Instant::now() >= latest {
                        return Err(SubmitError::Unavailable(
                            "the window or the throughput cap left no room in time".into(),
                        ));
                    }
                }
                PartOutcome::Refused(code) => {
                    return match status::verdict(code) {
                        Verdict::Temporary => Err(SubmitError::Unavailable(status::name(code))),
                        _ => Err(SubmitError::Rejected(status::name(code))),
                    };
                }
                PartOutcome::Unknown(why) => return Err(SubmitError::Unknown(why)),
            }
        }
    }

    /// Sends the parts after the first on the same session, retrying throttled ones; the
    /// message has left already, so an error here fails it rather than retrying it. Returns
    /// the failure, if any.
    async fn rest(
        &self,
        session: &Session,
        sms: &OutboundSms,
        parts: &[Part],
        deadline: Instant,
    ) -> Option<String> {
        let latest = deadline - session.connection.response_timeout;
        let total = parts.len() + 1;
        for (i, part) in parts.iter().enumerate() {
            let number = i + 2;
            loop {
                match send(session, sms, part, latest).await {
                    PartOutcome::Taken(telco_ref) => {
                        self.inner.incoming.later_part(telco_ref);
                        break;
                    }
                    PartOutcome::Throttled if Instant::now() < latest => {
                        session.throttle();
                        tokio::time::sleep(crate::session::THROTTLE_PAUSE).await;
                    }
                    PartOutcome::Throttled => {
                        return Some(format!("part {number} of {total}: ESME_RTHROTTLED"));
                    }
                    PartOutcome::Refused(code) => {
                        return Some(format!("part {number} of {total}: {}", status::name(code)));
                    }
                    // It may have arrived: the message is left as sent.
                    PartOutcome::Unknown(_) => return None,
                    PartOutcome::NotSent => {
                        return Some(format!("part {number} of {total}: not sent in time"));
                    }
                }
            }
        }
        None
    }

    /// What the SMSC said of the whole message, as the network reports it.
    fn report(&self, msg_id: &str, telco_ref: &str, status: SmsStatus, error: Option<String>) {
        let _ = self
            .inner
            .events
            .send(Inbound::unacknowledged(CarrierEvent::Sms {
                msg_id: msg_id.to_owned(),
                telco_ref: telco_ref.to_owned(),
                status,
                error,
            }));
    }
}

/// The longest response timeout of a route: a throttled wait must leave that much.
fn session_margin(route: &[Arc<Session>]) -> std::time::Duration {
    route
        .iter()
        .map(|s| s.connection.response_timeout)
        .max()
        .unwrap_or_default()
}

/// One `submit_sm`, within the session's window and pace.
async fn send(session: &Session, sms: &OutboundSms, part: &Part, latest: Instant) -> PartOutcome {
    let Some(client) = session.client() else {
        return PartOutcome::NotSent;
    };
    let Some(_slot) = session.window_slot(latest).await else {
        return PartOutcome::NotSent;
    };
    if !session.pace.wait(latest).await {
        return PartOutcome::NotSent;
    }
    let pdu = match submit_sm(session, sms, part) {
        Ok(pdu) => pdu,
        Err(e) => return PartOutcome::Refused(e),
    };
    let counters = &session.counters;
    counters.submitted.fetch_add(1, Ordering::Relaxed);
    let timeout = session.connection.response_timeout;
    let resp = match client.request(Pdu::SubmitSm(pdu), timeout).await {
        Ok(resp) => resp,
        Err(ClientError::NotSent) => return PartOutcome::NotSent,
        Err(e) => {
            counters.unknown.fetch_add(1, Ordering::Relaxed);
            return PartOutcome::Unknown(format!("no answer from the SMSC: {e}"));
        }
    };
    let code = u32::from(resp.status());
    match resp.pdu() {
        Some(Pdu::SubmitSmResp(r)) if code == 0 => PartOutcome::Taken(r.message_id().to_string()),
        _ if resp.id() == CommandId::SubmitSmResp
            && status::verdict(code) == Verdict::Throttled =>
        {
            PartOutcome::Throttled
        }
        _ if resp.id() == CommandId::SubmitSmResp => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            PartOutcome::Refused(code)
        }
        // A generic_nack (or anything else) instead of the response: the SMSC may or may
        // not have taken it.
        _ => {
            counters.unknown.fetch_add(1, Ordering::Relaxed);
            PartOutcome::Unknown(format!(
                "the SMSC answered {:?} ({})",
                resp.id(),
                status::name(code)
            ))
        }
    }
}

/// The `submit_sm` of one part; a refusal code when a field cannot be sent as given.
fn submit_sm(session: &Session, sms: &OutboundSms, part: &Part) -> Result<SubmitSm, u32> {
    let c = &session.connection;
    let address = |number: &str, code: u32| {
        COctetString::from_str(number.trim_start_matches('+')).map_err(|_| code)
    };
    let source = address(&sms.from, 0x0A)?;
    let destination = address(&sms.to, 0x0B)?;
    let short_message = OctetString::from_slice(&part.short_message).map_err(|_| 0x01_u32)?;
    let mut esm_class = 0_u8;
    if part.udhi {
        esm_class |= 0x40;
    }
    let mut tlvs = Vec::new();
    if let Some(sar) = &part.sar {
        tlvs.push(MessageSubmissionRequestTlvValue::SarMsgRefNum(
            sar.reference,
        ));
        tlvs.push(MessageSubmissionRequestTlvValue::SarTotalSegments(
            sar.total,
        ));
        tlvs.push(MessageSubmissionRequestTlvValue::SarSegmentSeqnum(sar.seq));
    }
    if let Some(payload) = &part.message_payload {
        let value = rusmpp::types::AnyOctetString::from_slice(payload);
        tlvs.push(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(value),
        ));
    }
    Ok(SubmitSm::builder()
        .service_type(ServiceType::default())
        .source_addr_ton(Ton::from(c.source_ton))
        .source_addr_npi(Npi::from(c.source_npi))
        .source_addr(source)
        .dest_addr_ton(Ton::International)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(destination)
        .esm_class(EsmClass::from(esm_class))
        .registered_delivery(RegisteredDelivery::from(1_u8))
        .data_coding(DataCoding::from(part.data_coding))
        .short_message(short_message)
        .tlvs(tlvs)
        .build())
}

impl Carrier for Smpp {
    fn name(&self) -> &'static str {
        "smpp"
    }

    fn reports_by_reference(&self) -> bool {
        true
    }

    fn submit_sms(&self, sms: OutboundSms) -> BoxFuture<'_, Result<String, SubmitError>> {
        let deadline = Instant::now() + self.inner.settings.submit_deadline;
        Box::pin(self.submit(sms, deadline))
    }

    fn submit_sms_batch(
        &self,
        batch: Vec<OutboundSms>,
    ) -> BoxFuture<'_, Vec<Result<String, SubmitError>>> {
        let deadline = Instant::now() + self.inner.settings.submit_deadline;
        Box::pin(futures_util::future::join_all(
            batch.into_iter().map(|sms| self.submit(sms, deadline)),
        ))
    }

    fn place_call(&self, _: OutboundCall) -> BoxFuture<'_, Result<String, SubmitError>> {
        Box::pin(async { Err(SubmitError::Rejected("SMPP carries no calls".into())) })
    }

    fn hang_up(&self, _: String) -> BoxFuture<'_, Result<(), SubmitError>> {
        Box::pin(async { Ok(()) })
    }
}
