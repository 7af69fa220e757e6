//! Mobile-originated messages: a text as one or more deliver_sm, concatenated by a user
//! data header or by SAR TLVs.

use anyhow::{Context, bail};
use rusmpp::pdus::DeliverSm;
use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, Ton};

use crate::config::Segmentation;
use crate::gsm7;

/// The data_coding of an MO text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoCoding {
    /// data_coding 0: the GSM default alphabet, one septet per octet (unpacked).
    Gsm7,
    /// data_coding 8: UCS-2 (UTF-16 big-endian).
    Ucs2,
}

impl MoCoding {
    fn data_coding(self) -> u8 {
        match self {
            MoCoding::Gsm7 => 0,
            MoCoding::Ucs2 => 8,
        }
    }

    /// Octets in a single message, and in each part of a concatenated one.
    fn limits(self) -> (usize, usize) {
        match self {
            MoCoding::Gsm7 => (160, 153),
            MoCoding::Ucs2 => (140, 134),
        }
    }
}

const UDHI: u8 = 0x40;

/// The text of one deliver_sm, with its place in the whole.
struct Part {
    body: Vec<u8>,
    number: u8,
}

/// Splits encoded text into parts of at most `max` octets without cutting a GSM escape
/// pair or a UTF-16 surrogate pair.
fn split(encoded: &[u8], coding: MoCoding, max: usize) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut start = 0;
    while start < encoded.len() {
        let mut end = (start + max).min(encoded.len());
        if end < encoded.len() {
            match coding {
                MoCoding::Gsm7 => {
                    let escapes_before_end = encoded[start..end]
                        .iter()
                        .rev()
                        .take_while(|&&septet| septet == gsm7::ESCAPE)
                        .count();
                    if escapes_before_end % 2 == 1 {
                        end -= 1;
                    }
                }
                MoCoding::Ucs2 => {
                    let last_unit = u16::from_be_bytes([encoded[end - 2], encoded[end - 1]]);
                    if (0xD800..0xDC00).contains(&last_unit) {
                        end -= 2;
                    }
                }
            }
        }
        parts.push(encoded[start..end].to_vec());
        start = end;
    }
    parts
}

fn encode(text: &str, coding: MoCoding) -> anyhow::Result<Vec<u8>> {
    match coding {
        MoCoding::Gsm7 => gsm7::encode(text)
            .map_err(|c| anyhow::anyhow!("{c:?} is not in the GSM 7-bit default alphabet")),
        MoCoding::Ucs2 => Ok(text.encode_utf16().flat_map(u16::to_be_bytes).collect()),
    }
}

fn address(number: &str) -> anyhow::Result<COctetString<1, 21>> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    COctetString::from_string(digits.to_owned())
        .with_context(|| format!("{number:?} is not a valid SMPP address"))
}

/// The deliver_sm carrying `text` from `from` to `to`; `reference` ties the parts together.
pub(crate) fn build_parts(
    from: &str,
    to: &str,
    text: &str,
    coding: MoCoding,
    segmentation: Segmentation,
    reference: u16,
) -> anyhow::Result<Vec<DeliverSm>> {
    let encoded = encode(text, coding)?;
    let (single, each) = coding.limits();
    let parts: Vec<Part> = if encoded.len() <= single {
        vec![Part {
            body: encoded,
            number: 1,
        }]
    } else {
        split(&encoded, coding, each)
            .into_iter()
            .zip(1u8..)
            .map(|(body, number)| Part { body, number })
            .collect()
    };
    let total = parts.len();
    if total > 255 {
        bail!("a text of {total} parts cannot be concatenated");
    }
    let total = total as u8;
    let (source, destination) = (address(from)?, address(to)?);
    parts
        .into_iter()
        .map(|part| {
            let mut esm_class = 0u8;
            let mut body = part.body;
            let mut tlvs = Vec::new();
            if total > 1 {
                match segmentation {
                    Segmentation::Udh => {
                        esm_class |= UDHI;
                        let header = [0x05, 0x00, 0x03, reference as u8, total, part.number];
                        body.splice(0..0, header);
                    }
                    Segmentation::Sar => {
                        tlvs.push(MessageDeliveryRequestTlvValue::SarMsgRefNum(reference));
                        tlvs.push(MessageDeliveryRequestTlvValue::SarTotalSegments(total));
                        tlvs.push(MessageDeliveryRequestTlvValue::SarSegmentSeqnum(
                            part.number,
                        ));
                    }
                }
            }
            Ok(DeliverSm::builder()
                .source_addr_ton(Ton::International)
                .source_addr_npi(Npi::Isdn)
                .source_addr(source.clone())
                .dest_addr_ton(Ton::International)
                .dest_addr_npi(Npi::Isdn)
                .destination_addr(destination.clone())
                .esm_class(EsmClass::from(esm_class))
                .data_coding(DataCoding::from(coding.data_coding()))
                .short_message(OctetString::from_vec(body)?)
                .tlvs(tlvs)
                .build())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn bodies(parts: &[DeliverSm]) -> Vec<Vec<u8>> {
        parts
            .iter()
            .map(|part| part.short_message().as_ref().to_vec())
            .collect()
    }

    #[test]
    fn a_short_gsm_text_is_one_part_without_header() {
        let parts =
            build_parts("+4479", "100", "hi", MoCoding::Gsm7, Segmentation::Udh, 7).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(u8::from(parts[0].esm_class), 0);
        assert_eq!(bodies(&parts)[0], b"hi");
        assert_eq!(parts[0].source_addr.as_str(), "4479");
    }

    #[test]
    fn a_long_gsm_text_is_split_with_udh() {
        let text = "a".repeat(200);
        let parts =
            build_parts("1", "2", &text, MoCoding::Gsm7, Segmentation::Udh, 0x1234).unwrap();
        let bodies = bodies(&parts);
        assert_eq!(parts.len(), 2);
        assert_eq!(bodies[0][..6], [5, 0, 3, 0x34, 2, 1]);
        assert_eq!(bodies[0].len(), 6 + 153);
        assert_eq!(bodies[1][..6], [5, 0, 3, 0x34, 2, 2]);
        assert_eq!(bodies[1].len(), 6 + 47);
        assert_eq!(u8::from(parts[1].esm_class), UDHI);
    }

    #[test]
    fn an_escape_pair_is_never_cut() {
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(20));
        let parts = split(&encode(&text, MoCoding::Gsm7).unwrap(), MoCoding::Gsm7, 153);
        assert_eq!(parts[0].len(), 152);
        assert_eq!(parts[1][..2], [gsm7::ESCAPE, 0x65]);
    }

    #[test]
    fn a_long_ucs2_text_uses_sar_tlvs_and_keeps_surrogates_whole() {
        let text = format!("{}🙂{}", "ж".repeat(66), "ж".repeat(10));
        let parts = build_parts("1", "2", &text, MoCoding::Ucs2, Segmentation::Sar, 9).unwrap();
        let bodies = bodies(&parts);
        assert_eq!(parts.len(), 2);
        assert_eq!(bodies[0].len(), 132);
        assert_eq!(u8::from(parts[0].esm_class), 0);
        assert_eq!(u8::from(parts[0].data_coding), 8);
        assert_eq!(parts[1].tlvs().len(), 3);
        let whole: Vec<u8> = bodies.concat();
        let units: Vec<u16> = whole
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        assert_eq!(String::from_utf16(&units).unwrap(), text);
    }
}
