//! What an SMSC sends: delivery receipts and mobile-originated messages, turned into carrier
//! events. The `deliver_sm_resp` is the event's acknowledgement: answered once the event is
//! committed, or with a temporary error (the SMSC sends it again) when it could not be. The
//! parts of a concatenated message are all answered when the whole message is.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::client::Client;
use rusmpp::pdus::{DataSmResp, DeliverSmResp};
use rusmpp::tlvs::TlvValue;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::sync::mpsc::UnboundedSender;

use ami_carrier::{Ack, CarrierEvent, Inbound};
use ami_core::delivery::SmsStatus;

use crate::inbound::Reassembler;
use crate::receipt::{self, Outcome};

/// The fields of a `deliver_sm` or `data_sm` that matter here.
#[derive(Debug, Default)]
struct Delivered {
    from: String,
    from_ton: u8,
    to: String,
    to_ton: u8,
    esm_class: u8,
    data_coding: u8,
    short_message: Vec<u8>,
    payload: Option<Vec<u8>>,
    receipted_message_id: Option<String>,
    message_state: Option<u8>,
    network_error: Option<Vec<u8>>,
    sar: Option<(u16, u8, u8)>,
}

/// Concatenated messages awaiting their other parts at once, at most.
const REASSEMBLY_MAX: usize = 10_000;
/// References of later parts remembered, so that their receipts are not taken for unknown
/// messages' (the message's own reference is its first part's).
const LATER_PARTS_MAX: usize = 100_000;

pub struct Incoming {
    events: UnboundedSender<Inbound>,
    parts: Mutex<Reassembler<Ack>>,
    later_parts: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Incoming {
    pub fn new(events: UnboundedSender<Inbound>, reassembly_timeout: Duration) -> Incoming {
        Incoming {
            events,
            parts: Mutex::new(Reassembler::new(reassembly_timeout, REASSEMBLY_MAX)),
            later_parts: Mutex::default(),
        }
    }

    /// The reference of a part after the first of a long message: its receipt is answered
    /// and set aside, as the first part's receipt speaks for the message.
    pub fn later_part(&self, telco_ref: String) {
        if let Ok(mut later) = self.later_parts.lock() {
            let (set, order) = &mut *later;
            if set.insert(telco_ref.clone()) {
                order.push_back(telco_ref);
            }
            while order.len() > LATER_PARTS_MAX {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }

    fn is_later_part(&self, telco_ref: &str) -> bool {
        self.later_parts
            .lock()
            .is_ok_and(|later| later.0.contains(telco_ref))
    }

    /// Turns one `deliver_sm` / `data_sm` into an event whose acknowledgement answers it.
    pub fn accept(&self, client: &Client, command: Command, connection: &str) {
        let ack = answer(client.clone(), &command);
        let Some(d) = delivered(&command) else {
            drop(ack);
            return;
        };
        let receipt = receipt::parse(
            d.esm_class,
            &d.short_message,
            d.receipted_message_id.as_deref(),
            d.message_state,
            d.network_error.as_deref(),
        );
        if let Some(r) = receipt {
            if self.is_later_part(&r.message_id) {
                ack.done();
                return;
            }
            let status = match r.outcome {
                Outcome::Delivered => SmsStatus::Delivered,
                Outcome::Failed => SmsStatus::Failed,
                Outcome::Accepted => SmsStatus::Sent,
            };
            self.send(
                CarrierEvent::Receipt {
                    telco_ref: r.message_id,
                    status,
                    error: r.error,
                },
                ack,
            );
            return;
        }
        let (from, to) = (e164(&d.from, d.from_ton), e164(&d.to, d.to_ton));
        let bytes = d.payload.as_deref().unwrap_or(&d.short_message);
        let (fragment, body) = crate::inbound::fragment(d.esm_class, bytes, d.sar);
        let text = crate::text::decode(d.data_coding, body);
        let (text, acks) = match fragment {
            Some(f) => {
                let done = self.parts.lock().ok().and_then(|mut parts| {
                    parts.push(
                        (from.clone(), to.clone()),
                        f,
                        text,
                        ack,
                        std::time::Instant::now(),
                    )
                });
                match done {
                    Some(whole) => whole,
                    None => return,
                }
            }
            None => (text, vec![ack]),
        };
        let telco_ref = mo_reference(connection, command.sequence_number());
        self.send(
            CarrierEvent::InboundSms {
                from,
                to,
                body: text,
                telco_ref,
            },
            Ack::new(move |ok| {
                for ack in acks {
                    if ok {
                        ack.done();
                    }
                }
            }),
        );
    }

    /// Answers, with a temporary error, the parts of messages whose other parts never came:
    /// the SMSC sends them again.
    pub fn expire(&self) {
        let stale = self
            .parts
            .lock()
            .map(|mut parts| parts.expire(std::time::Instant::now()))
            .unwrap_or_default();
        drop(stale);
    }

    fn send(&self, event: CarrierEvent, ack: Ack) {
        // A closed channel drops the ack: the SMSC is told to send it again.
        let _ = self.events.send(Inbound { event, ack });
    }
}

/// The acknowledgement of one PDU: `deliver_sm_resp` (or `data_sm_resp`) OK once committed,
/// ESME_RX_T_APPN (temporary, send again later) otherwise.
fn answer(client: Client, command: &Command) -> Ack {
    let sequence = command.sequence_number();
    let data_sm = command.id() == CommandId::DataSm;
    Ack::new(move |ok| {
        let status = if ok {
            CommandStatus::EsmeRok
        } else {
            CommandStatus::EsmeRxTAppn
        };
        let resp = if data_sm {
            Pdu::DataSmResp(DataSmResp::default())
        } else {
            Pdu::DeliverSmResp(DeliverSmResp::default())
        };
        client.respond(sequence, status, resp);
    })
}

fn delivered(command: &Command) -> Option<Delivered> {
    let mut d = Delivered::default();
    let tlvs = match command.pdu()? {
        Pdu::DeliverSm(sm) => {
            d.from = sm.source_addr.to_string();
            d.from_ton = u8::from(sm.source_addr_ton);
            d.to = sm.destination_addr.to_string();
            d.to_ton = u8::from(sm.dest_addr_ton);
            d.esm_class = u8::from(sm.esm_class);
            d.data_coding = u8::from(sm.data_coding);
            d.short_message = sm.short_message().as_ref().to_vec();
            sm.tlvs()
        }
        Pdu::DataSm(sm) => {
            d.from = sm.source_addr.to_string();
            d.from_ton = u8::from(sm.source_addr_ton);
            d.to = sm.destination_addr.to_string();
            d.to_ton = u8::from(sm.dest_addr_ton);
            d.esm_class = u8::from(sm.esm_class);
            d.data_coding = u8::from(sm.data_coding);
            sm.tlvs()
        }
        _ => return None,
    };
    let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
    for tlv in tlvs {
        match tlv.value() {
            Some(TlvValue::ReceiptedMessageId(id)) => {
                d.receipted_message_id = Some(id.to_string());
            }
            Some(TlvValue::MessageState(state)) => d.message_state = Some(u8::from(*state)),
            Some(TlvValue::NetworkErrorCode(code)) => {
                d.network_error = Some(vec![
                    u8::from(code.network_type),
                    (code.error_code >> 8) as u8,
                    code.error_code as u8,
                ]);
            }
            Some(TlvValue::MessagePayload(p)) => d.payload = Some(p.value.as_ref().to_vec()),
            Some(TlvValue::SarMsgRefNum(n)) => sar_ref = Some(*n),
            Some(TlvValue::SarTotalSegments(n)) => sar_total = Some(*n),
            Some(TlvValue::SarSegmentSeqnum(n)) => sar_seq = Some(*n),
            _ => {}
        }
    }
    if let (Some(r), Some(t), Some(s)) = (sar_ref, sar_total, sar_seq) {
        d.sar = Some((r, t, s));
    }
    Some(d)
}

/// An address as E.164 when its TON says international; as given otherwise.
fn e164(address: &str, ton: u8) -> String {
    if ton == 1 && !address.starts_with('+') {
        format!("+{address}")
    } else {
        address.to_owned()
    }
}

/// A reference for a mobile-originated message: SMPP gives it no id of its own. Unique per
/// arrival, so two equal messages stay two; an SMSC that resends a message whose
/// `deliver_sm_resp` was lost (a crash between the commit and the answer) can make it
/// appear twice, which is better than dropping one.
fn mo_reference(connection: &str, sequence: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("smpp-mo-{connection}-{nanos:x}-{sequence}")
}
