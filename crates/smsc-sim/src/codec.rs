//! Reading PDUs so that a PDU the codec cannot decode is an item, not the end of the stream
//! (a framed stream stops at its decoder's first error, yet an SMSC answers such a PDU with
//! generic_nack and carries on).

use rusmpp::tokio_codec::CommandCodec;
use rusmpp::{Command, CommandId, CommandStatus};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

const HEADER_LENGTH: usize = 16;
/// Far above any SMPP 3.4 PDU (a submit_sm with a full message_payload is under 66 KiB).
const MAX_PDU_LENGTH: usize = 70 * 1024;

// Boxing the command would cost an allocation per PDU; the item is moved once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Inbound {
    Command(Command),
    /// A whole PDU that did not decode; the next one starts right after it.
    Undecodable {
        sequence_number: u32,
        status: CommandStatus,
    },
    /// A command_length no PDU can have: the PDU boundaries are lost.
    Unframeable {
        sequence_number: u32,
    },
}

#[derive(Debug, Default)]
pub(crate) struct InboundCodec;

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Decoder for InboundCodec {
    type Item = Inbound;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, std::io::Error> {
        if src.len() < HEADER_LENGTH {
            return Ok(None);
        }
        let length = be_u32(&src[0..4]) as usize;
        let command_id = be_u32(&src[4..8]);
        let sequence_number = be_u32(&src[12..16]);
        if !(HEADER_LENGTH..=MAX_PDU_LENGTH).contains(&length) {
            src.clear();
            return Ok(Some(Inbound::Unframeable { sequence_number }));
        }
        if src.len() < length {
            src.reserve(length - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(length);
        let unknown_id = matches!(CommandId::from(command_id), CommandId::Other(_));
        let decoded = CommandCodec::new().without_max_length().decode(&mut frame);
        Ok(Some(match decoded {
            Ok(Some(command)) if !unknown_id => Inbound::Command(command),
            _ => Inbound::Undecodable {
                sequence_number,
                status: if unknown_id {
                    CommandStatus::EsmeRinvcmdid
                } else {
                    CommandStatus::EsmeRinvcmdlen
                },
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rusmpp::Pdu;
    use tokio_util::codec::Encoder;

    fn encoded(command: Command) -> BytesMut {
        let mut bytes = BytesMut::new();
        CommandCodec::new().encode(command, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_valid_pdu_decodes_and_leaves_the_next_in_place() {
        let mut src = encoded(Command::new(CommandStatus::EsmeRok, 7, Pdu::EnquireLink));
        src.extend_from_slice(&encoded(Command::new(
            CommandStatus::EsmeRok,
            8,
            Pdu::EnquireLink,
        )));
        let Some(Inbound::Command(first)) = InboundCodec.decode(&mut src).unwrap() else {
            panic!("expected a command");
        };
        assert_eq!(first.sequence_number(), 7);
        let Some(Inbound::Command(second)) = InboundCodec.decode(&mut src).unwrap() else {
            panic!("expected a command");
        };
        assert_eq!(second.sequence_number(), 8);
    }

    #[test]
    fn an_unknown_command_id_is_undecodable_and_skipped() {
        let mut src = BytesMut::from(&[0, 0, 0, 16, 0, 0, 0x77, 0x77, 0, 0, 0, 0, 0, 0, 0, 9][..]);
        src.extend_from_slice(&encoded(Command::new(
            CommandStatus::EsmeRok,
            10,
            Pdu::EnquireLink,
        )));
        match InboundCodec.decode(&mut src).unwrap() {
            Some(Inbound::Undecodable {
                sequence_number: 9,
                status: CommandStatus::EsmeRinvcmdid,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            InboundCodec.decode(&mut src).unwrap(),
            Some(Inbound::Command(_))
        ));
    }

    #[test]
    fn an_impossible_length_is_unframeable() {
        let mut src = BytesMut::from(&[0xff; 20][..]);
        assert!(matches!(
            InboundCodec.decode(&mut src).unwrap(),
            Some(Inbound::Unframeable { .. })
        ));
        assert!(src.is_empty());
    }
}
