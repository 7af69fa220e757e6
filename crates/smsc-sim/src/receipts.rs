//! Delivery receipts: a deliver_sm with esm_class 0x04, the customary text and the
//! receipted_message_id and message_state TLVs.

use chrono::{DateTime, Utc};
use rusmpp::pdus::{DeliverSm, SubmitSm};
use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, MessageState};

use crate::config::FinalState;

/// esm_class of an SMSC delivery receipt (SMPP 3.4, 5.2.12).
pub const RECEIPT_ESM_CLASS: u8 = 0x04;
const TEXT_EXCERPT_LENGTH: usize = 20;

/// Whether registered_delivery asks for a receipt in this final state.
pub(crate) fn wanted(registered_delivery: u8, state: FinalState) -> bool {
    match registered_delivery & 0x03 {
        1 => true,
        2 => !state.is_success(),
        _ => false,
    }
}

/// The receipt text: `id:.. sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm
/// stat:DELIVRD err:000 text:...`.
pub fn receipt_text(
    message_id: &str,
    state: FinalState,
    error_code: u16,
    submitted: DateTime<Utc>,
    done: DateTime<Utc>,
    excerpt: &str,
) -> String {
    let delivered = if state.is_success() { "001" } else { "000" };
    format!(
        "id:{message_id} sub:001 dlvrd:{delivered} submit date:{} done date:{} stat:{} err:{error_code:03} text:{excerpt}",
        submitted.format("%y%m%d%H%M"),
        done.format("%y%m%d%H%M"),
        state.stat(),
    )
}

/// The first characters of the submitted text, as printable ASCII (others become '?').
pub(crate) fn excerpt(submit: &SubmitSm) -> String {
    let mut body: &[u8] = submit.short_message().as_ref();
    if body.is_empty()
        && let Some(payload) = message_payload(submit)
    {
        return excerpt_of(&payload, u8::from(submit.data_coding));
    }
    let has_udh = u8::from(submit.esm_class) & 0x40 != 0;
    if has_udh {
        let header = usize::from(body.first().copied().unwrap_or(0)) + 1;
        body = body.get(header..).unwrap_or(&[]);
    }
    excerpt_of(body, u8::from(submit.data_coding))
}

fn message_payload(submit: &SubmitSm) -> Option<Vec<u8>> {
    submit.tlvs().iter().find_map(|tlv| match tlv.value() {
        Some(rusmpp::tlvs::TlvValue::MessagePayload(payload)) => {
            Some(payload.value.as_ref().to_vec())
        }
        _ => None,
    })
}

fn excerpt_of(body: &[u8], data_coding: u8) -> String {
    let printable = |c: char| {
        if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        }
    };
    if data_coding == 8 {
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        char::decode_utf16(units)
            .map(|c| c.map_or('?', printable))
            .take(TEXT_EXCERPT_LENGTH)
            .collect()
    } else {
        body.iter()
            .take(TEXT_EXCERPT_LENGTH)
            .map(|byte| printable(char::from(*byte)))
            .collect()
    }
}

/// The receipt for an accepted submit_sm: from its destination back to its source.
pub(crate) fn build(
    submit: &SubmitSm,
    message_id: &str,
    (state, error_code): (FinalState, u16),
    submitted: DateTime<Utc>,
    done: DateTime<Utc>,
) -> anyhow::Result<DeliverSm> {
    let text = receipt_text(
        message_id,
        state,
        error_code,
        submitted,
        done,
        &excerpt(submit),
    );
    Ok(DeliverSm::builder()
        .source_addr_ton(submit.dest_addr_ton)
        .source_addr_npi(submit.dest_addr_npi)
        .source_addr(submit.destination_addr.clone())
        .dest_addr_ton(submit.source_addr_ton)
        .dest_addr_npi(submit.source_addr_npi)
        .destination_addr(submit.source_addr.clone())
        .esm_class(EsmClass::from(RECEIPT_ESM_CLASS))
        .data_coding(DataCoding::from(0))
        .short_message(OctetString::from_vec(text.into_bytes())?)
        .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            COctetString::from_string(message_id.to_owned())?,
        ))
        .push_tlv(MessageDeliveryRequestTlvValue::MessageState(
            MessageState::from(state.message_state()),
        ))
        .build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn text_has_the_customary_form() {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap();
        let text = receipt_text("42", FinalState::Delivered, 0, at, at, "hello");
        assert_eq!(
            text,
            "id:42 sub:001 dlvrd:001 submit date:2603040506 done date:2603040506 stat:DELIVRD err:000 text:hello"
        );
        let failed = receipt_text("42", FinalState::Undeliverable, 1, at, at, "");
        assert!(failed.contains("dlvrd:000") && failed.contains("stat:UNDELIV err:001"));
    }

    #[test]
    fn registered_delivery_two_asks_only_for_failures() {
        assert!(wanted(1, FinalState::Delivered));
        assert!(!wanted(2, FinalState::Delivered));
        assert!(wanted(2, FinalState::Undeliverable));
        assert!(!wanted(0, FinalState::Undeliverable));
    }

    #[test]
    fn ucs2_excerpt_is_decoded_and_cut() {
        let body: Vec<u8> = "héllo wörld, ça va bien?"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(excerpt_of(&body, 8), "h?llo w?rld, ?a va b");
    }
}
