//! Answering submit_sm: the fault plan decides, the answer and the receipt follow.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use rusmpp::pdus::{DeliverSm, SubmitSm, SubmitSmResp};
use rusmpp::tlvs::TlvValue;
use rusmpp::types::COctetString;
use rusmpp::{Command, CommandId, CommandStatus};

use crate::deliver;
use crate::faults::SubmitAction;
use crate::observe::{SarInfo, SessionStats, SubmitAnswer, SubmitRecord, bump};
use crate::receipts;
use crate::registry::Shared;
use crate::session::{Flow, Session, generic_nack, header_only};

/// A planned answer to one submit_sm and the receipt that follows it.
pub(crate) struct Reply {
    response: Command,
    status: u32,
    receipt: Option<(String, DeliverSm)>,
    stats: Arc<SessionStats>,
}

impl Reply {
    /// Sends the response, then (after the receipt delay) the receipt.
    fn complete(
        self,
        shared: &Arc<Shared>,
        tx: &tokio::sync::mpsc::UnboundedSender<crate::registry::Outgoing>,
    ) {
        self.stats.submit_answered();
        if self.response.id() == CommandId::GenericNack {
            bump(&shared.tally.generic_nacks_sent);
        } else {
            shared.tally.submit_response(self.status);
        }
        let _ = tx.send(crate::registry::Outgoing::Pdu(self.response));
        if let Some((system_id, receipt)) = self.receipt {
            send_receipt(shared, system_id, receipt, shared.config.receipts.delay);
        }
    }
}

fn send_receipt(shared: &Arc<Shared>, system_id: String, receipt: DeliverSm, delay: Duration) {
    bump(&shared.tally.receipts);
    if delay.is_zero() {
        deliver::dispatch(shared, Some(system_id), receipt);
    } else {
        let shared = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            deliver::dispatch(&shared, Some(system_id), receipt);
        });
    }
}

fn sar_of(submit: &SubmitSm) -> (Option<SarInfo>, Option<Vec<u8>>) {
    let (mut reference, mut total, mut number, mut payload) = (None, None, None, None);
    for tlv in submit.tlvs() {
        match tlv.value() {
            Some(TlvValue::SarMsgRefNum(value)) => reference = Some(*value),
            Some(TlvValue::SarTotalSegments(value)) => total = Some(*value),
            Some(TlvValue::SarSegmentSeqnum(value)) => number = Some(*value),
            Some(TlvValue::MessagePayload(value)) => payload = Some(value.value.as_ref().to_vec()),
            _ => {}
        }
    }
    let sar = match (reference, total, number) {
        (Some(msg_ref_num), Some(total_segments), Some(segment_seqnum)) => Some(SarInfo {
            msg_ref_num,
            total_segments,
            segment_seqnum,
        }),
        _ => None,
    };
    (sar, payload)
}

fn record(
    session: &Session,
    sequence: u32,
    submit: &SubmitSm,
    answer: SubmitAnswer,
) -> SubmitRecord {
    let (sar, message_payload) = sar_of(submit);
    SubmitRecord {
        session_id: session.id,
        system_id: session
            .link
            .as_ref()
            .map(|link| link.info.system_id.clone())
            .unwrap_or_default(),
        sequence_number: sequence,
        source_addr: submit.source_addr.as_str().to_owned(),
        source_addr_ton: u8::from(submit.source_addr_ton),
        source_addr_npi: u8::from(submit.source_addr_npi),
        destination_addr: submit.destination_addr.as_str().to_owned(),
        dest_addr_ton: u8::from(submit.dest_addr_ton),
        dest_addr_npi: u8::from(submit.dest_addr_npi),
        esm_class: u8::from(submit.esm_class),
        data_coding: u8::from(submit.data_coding),
        registered_delivery: u8::from(submit.registered_delivery),
        short_message: submit.short_message().as_ref().to_vec(),
        sar,
        message_payload,
        answer,
        received_at: SystemTime::now(),
    }
}

impl Session {
    pub(crate) fn submit(&mut self, sequence: u32, submit: &SubmitSm) -> Flow {
        let shared = self.shared.clone();
        let Some(link) = self
            .link
            .clone()
            .filter(|link| link.info.bind_type.can_submit())
        else {
            self.send(header_only(
                CommandId::SubmitSmResp,
                CommandStatus::EsmeRinvbndsts,
                sequence,
            ));
            return Flow::Continue;
        };
        bump(&shared.tally.submits);
        link.stats.submit_arrived(&mut self.rate);
        let destination = submit.destination_addr.as_str();
        let plan = shared.plan_submit(destination);
        let (response, status, answer) = match plan.action {
            SubmitAction::DropConnection | SubmitAction::Silence => {
                if shared.config.record_submits {
                    shared.record_submit(record(self, sequence, submit, SubmitAnswer::None));
                }
                return match plan.action {
                    SubmitAction::DropConnection => Flow::Close,
                    _ => Flow::Continue,
                };
            }
            SubmitAction::GenericNack => (
                generic_nack(CommandStatus::EsmeRsyserr, sequence),
                0,
                SubmitAnswer::GenericNack,
            ),
            SubmitAction::Answer(CommandStatus::EsmeRok) => {
                let message_id = shared.next_message_id();
                let resp = SubmitSmResp::builder()
                    .message_id(
                        COctetString::from_string(message_id.clone())
                            .unwrap_or_else(|_| COctetString::empty()),
                    )
                    .build();
                (
                    Command::new(CommandStatus::EsmeRok, sequence, resp),
                    0,
                    SubmitAnswer::Accepted { message_id },
                )
            }
            SubmitAction::Answer(status) => (
                header_only(CommandId::SubmitSmResp, status, sequence),
                u32::from(status),
                SubmitAnswer::Refused {
                    status: u32::from(status),
                },
            ),
        };
        let receipt = answer.message_id().and_then(|message_id| {
            let receipts = &shared.config.receipts;
            let (state, error_code) = receipts.rule_for(destination);
            let registered = u8::from(submit.registered_delivery);
            if !receipts.enabled || !receipts::wanted(registered, state) {
                return None;
            }
            // Built now, sent after the delays: the done date is when it will go out.
            let submitted = Utc::now();
            let done = submitted + plan.delay.unwrap_or_default() + receipts.delay;
            receipts::build(submit, message_id, (state, error_code), submitted, done)
                .ok()
                .map(|receipt| (link.info.system_id.clone(), receipt))
        });
        if shared.config.record_submits {
            shared.record_submit(record(self, sequence, submit, answer));
        }
        let mut reply = Reply {
            response,
            status,
            receipt,
            stats: link.stats.clone(),
        };
        if plan.receipt_first
            && let Some((system_id, receipt)) = reply.receipt.take()
        {
            send_receipt(&shared, system_id, receipt, Duration::ZERO);
        }
        if let Some(delay) = plan.delay {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                reply.complete(&shared, &tx);
            });
        } else if let Some(window) = plan.reverse_window {
            self.held.push(reply);
            if self.held.len() >= window {
                for reply in self.held.drain(..).rev() {
                    reply.complete(&shared, &self.tx);
                }
            }
        } else {
            reply.complete(&shared, &self.tx);
        }
        Flow::Continue
    }
}
