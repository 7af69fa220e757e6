//! The PDU decoder against hostile input: whatever an SMSC (or anyone who reaches the port)
//! sends, decoding fails or succeeds, never panics, and never reserves more than the
//! configured maximum PDU length.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use ami_smpp::pdu::{FrameGuard, StrictCodec};
use bytes::BytesMut;
use proptest::prelude::*;
use rusmpp::{
    Command, CommandStatus, Pdu,
    pdus::{BindTransceiver, DeliverSm, SubmitSm},
    tlvs::{MessageDeliveryRequestTlvValue, MessageSubmissionRequestTlvValue},
    tokio_codec::CommandCodec,
    types::{AnyOctetString, COctetString, OctetString},
    values::{EsmClass, MessagePayload, MessageState},
};
use tokio_util::codec::{Decoder, Encoder};

/// The largest PDU accepted, as the carrier configures its codec.
const MAX_LENGTH: usize = 64 * 1024;

/// What one decode loop produced: the commands decoded before the first error, and the
/// error if any (after an error the connection is closed, as `Framed` does).
#[derive(Debug)]
struct Outcome {
    commands: Vec<Command>,
    error: Option<String>,
}

/// Feeds `input` to the codec the carrier uses in chunks of `chunk` bytes, as a socket
/// would.
fn decode_stream(input: &[u8], chunk: usize) -> Outcome {
    decode_with(StrictCodec::new(MAX_LENGTH), input, chunk)
}

/// The same through `rusmpp`'s codec alone.
fn decode_plain(input: &[u8], chunk: usize) -> Outcome {
    decode_with(
        CommandCodec::new().with_max_length(MAX_LENGTH),
        input,
        chunk,
    )
}

/// The same through [`FrameGuard`] and then `rusmpp`'s codec, as a client library that
/// frames the socket itself would get it.
fn decode_guarded(input: &[u8], chunk: usize) -> Outcome {
    let mut guard = FrameGuard::new(MAX_LENGTH);
    let mut checked = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        guard.extend(piece);
        loop {
            match guard.next_frame() {
                Ok(Some(frame)) => checked.extend(frame),
                Ok(None) => break,
                Err(error) => {
                    let mut outcome = decode_plain(&checked, checked.len().max(1));
                    outcome.error = Some(error.to_string());
                    return outcome;
                }
            }
        }
    }
    decode_plain(&checked, checked.len().max(1))
}

fn decode_with<C>(mut codec: C, input: &[u8], chunk: usize) -> Outcome
where
    C: Decoder<Item = Command>,
    C::Error: std::fmt::Display,
{
    let mut buffer = BytesMut::new();
    let mut commands = Vec::new();
    let allowed_capacity = 2 * MAX_LENGTH.max(input.len());
    for piece in input.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            let result = codec.decode(&mut buffer);
            assert!(
                buffer.capacity() <= allowed_capacity,
                "buffer grew to {} bytes",
                buffer.capacity()
            );
            match result {
                Ok(Some(command)) => commands.push(command),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        commands,
                        error: Some(error.to_string()),
                    };
                }
            }
        }
    }
    Outcome {
        commands,
        error: None,
    }
}

fn encode(commands: &[Command]) -> Vec<u8> {
    let mut codec = CommandCodec::new();
    let mut buffer = BytesMut::new();
    for command in commands {
        codec.encode(command, &mut buffer).unwrap();
    }
    buffer.to_vec()
}

fn sample_commands() -> Vec<Command> {
    let bind = BindTransceiver::builder()
        .system_id(COctetString::from_str("ami").unwrap())
        .password(COctetString::from_str("secret").unwrap())
        .build();
    let submit = SubmitSm::builder()
        .source_addr(COctetString::from_str("15550001").unwrap())
        .destination_addr(COctetString::from_str("15550002").unwrap())
        .short_message(OctetString::from_str("hello").unwrap())
        .push_tlv(MessageSubmissionRequestTlvValue::SarMsgRefNum(7))
        .push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
            MessagePayload::new(AnyOctetString::from_slice(b"payload")),
        ))
        .build();
    let deliver = DeliverSm::builder()
        .source_addr(COctetString::from_str("15550002").unwrap())
        .destination_addr(COctetString::from_str("15550001").unwrap())
        .esm_class(EsmClass::from(0x04))
        .short_message(OctetString::from_str("id:1 stat:DELIVRD err:000").unwrap())
        .push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(
            COctetString::from_str("1").unwrap(),
        ))
        .push_tlv(MessageDeliveryRequestTlvValue::MessageState(
            MessageState::Delivered,
        ))
        .build();
    vec![
        Command::new(CommandStatus::EsmeRok, 1, bind),
        Command::new(CommandStatus::EsmeRok, 2, submit),
        Command::new(CommandStatus::EsmeRok, 3, deliver),
        Command::new(CommandStatus::EsmeRok, 4, Pdu::EnquireLink),
    ]
}

/// enquire_link, sequence number 9: 16 bytes, four of them zero.
const ENQUIRE_LINK: [u8; 16] = [0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 9];

/// A header of the given length, command id and sequence number 1.
fn header(command_length: u32, command_id: u32) -> Vec<u8> {
    [
        command_length.to_be_bytes(),
        command_id.to_be_bytes(),
        [0; 4],
        1u32.to_be_bytes(),
    ]
    .concat()
}

/// A PDU: header with the right length, then `body`.
fn pdu(command_id: u32, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(16 + body.len()).unwrap();
    [header(length, command_id), body.to_vec()].concat()
}

/// A submit_sm body up to and including `short_message` ("hi").
fn submit_sm_fields() -> Vec<u8> {
    [
        &b"\0"[..],       // service_type
        &[1, 1],          // source ton, npi
        b"123\0",         // source_addr
        &[1, 1],          // destination ton, npi
        b"456\0",         // destination_addr
        &[0, 0, 0],       // esm_class, protocol_id, priority_flag
        b"\0\0",          // schedule_delivery_time, validity_period
        &[0, 0, 0, 0],    // registered_delivery, replace, data_coding, default id
        &[2, b'h', b'i'], // sm_length, short_message
    ]
    .concat()
}

const SUBMIT_SM: u32 = 0x0000_0004;
const BIND_TRANSMITTER: u32 = 0x0000_0002;

#[test]
fn valid_commands_round_trip_in_any_chunking() {
    let commands = sample_commands();
    let bytes = encode(&commands);
    for chunk in [1, 3, 16, 17, 100, bytes.len()] {
        let outcome = decode_stream(&bytes, chunk);
        assert_eq!(outcome.error, None, "chunk {chunk}");
        assert_eq!(outcome.commands, commands, "chunk {chunk}");
    }
}

/// Both codecs, each with the words of its error for a length over and under the bounds.
type Decode = fn(&[u8], usize) -> Outcome;
const CODECS: [(Decode, &str, &str); 2] = [
    (decode_stream, "exceeds the maximum", "shorter than"),
    (
        decode_plain,
        "Maximum command length",
        "Minimum command length",
    ),
];

#[test]
fn four_gigabyte_length_is_refused_before_reading() {
    for (decode, too_long, _) in CODECS {
        let outcome = decode(&header(0xFFFF_FFFF, SUBMIT_SM), 16);
        assert!(outcome.commands.is_empty());
        let error = outcome.error.expect("an error");
        assert!(error.contains(too_long), "{error}");
    }
}

#[test]
fn length_just_above_the_maximum_is_refused() {
    for (decode, too_long, _) in CODECS {
        let length = u32::try_from(MAX_LENGTH + 1).unwrap();
        let error = decode(&header(length, SUBMIT_SM), 16)
            .error
            .expect("an error");
        assert!(error.contains(too_long), "{error}");
        // The maximum itself is accepted: the codec waits for the rest of the PDU.
        let length = u32::try_from(MAX_LENGTH).unwrap();
        let outcome = decode(&header(length, SUBMIT_SM), 16);
        assert_eq!(outcome.error, None);
        assert!(outcome.commands.is_empty());
    }
}

#[test]
fn length_below_the_header_is_refused() {
    for (decode, _, too_short) in CODECS {
        for length in [0, 1, 4, 15] {
            let error = decode(&header(length, 0x15), 16).error.expect("an error");
            assert!(error.contains(too_short), "{length}: {error}");
        }
    }
}

#[test]
fn complete_submit_sm_with_a_tlv_decodes() {
    // Sanity for the hand-built bytes below: sar_msg_ref_num = 7.
    let body = [submit_sm_fields(), vec![0x02, 0x0C, 0x00, 0x02, 0x00, 0x07]].concat();
    let outcome = decode_stream(&pdu(SUBMIT_SM, &body), 1024);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.commands.len(), 1);
    let Some(Pdu::SubmitSm(submit)) = outcome.commands[0].pdu() else {
        panic!("not a submit_sm: {:?}", outcome.commands[0]);
    };
    assert_eq!(submit.tlvs().len(), 1);
}

#[test]
fn submit_sm_with_a_truncated_tlv_is_refused() {
    // sar_msg_ref_num announces 2 bytes, the PDU ends after 1.
    let value_cut = [submit_sm_fields(), vec![0x02, 0x0C, 0x00, 0x02, 0x00]].concat();
    // A TLV header cut short.
    let header_cut = [submit_sm_fields(), vec![0x02, 0x0C, 0x00]].concat();
    for (decode, _, _) in CODECS {
        for body in [&value_cut, &header_cut] {
            // Alone, and followed by another PDU whose bytes must not complete it.
            for input in [
                pdu(SUBMIT_SM, body),
                [pdu(SUBMIT_SM, body), ENQUIRE_LINK.to_vec()].concat(),
            ] {
                let outcome = decode(&input, 1024);
                assert!(outcome.commands.is_empty(), "{outcome:?}");
                assert!(outcome.error.is_some(), "{outcome:?}");
            }
        }
    }
}

#[test]
fn c_string_without_its_nul_is_refused() {
    // bind_transmitter whose system_id runs to the end of the PDU.
    for (decode, _, _) in CODECS {
        let outcome = decode(&pdu(BIND_TRANSMITTER, b"abcdef"), 1024);
        assert!(outcome.commands.is_empty());
        assert!(outcome.error.is_some(), "{outcome:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..512,
    ) {
        decode_stream(&bytes, chunk);
        decode_plain(&bytes, chunk);
    }

    /// Arbitrary bodies behind a header whose length matches, so that they reach the PDU
    /// decoders rather than stopping at the length check.
    #[test]
    fn arbitrary_bodies_never_panic(
        command_id in prop_oneof![
            Just(0x8000_0000u32), 1u32..=9, 0x15u32..=0x15, 0x0000_0102u32..=0x0000_0103,
            0x8000_0001u32..=0x8000_0009, 0x8000_0015u32..=0x8000_0015, any::<u32>(),
        ],
        body in prop::collection::vec(any::<u8>(), 0..600),
        trailing in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let input = [pdu(command_id, &body), trailing].concat();
        decode_stream(&input, input.len());
        decode_plain(&input, input.len());
    }

    /// Whatever a PDU holds, the PDU after it is read from its own bytes.
    #[test]
    fn framing_survives_any_body(
        command_id in prop_oneof![1u32..=9, 0x15u32..=0x15, 0x8000_0001u32..=0x8000_0009],
        body in prop::collection::vec(any::<u8>(), 0..300),
        chunk in 1usize..400,
    ) {
        let input = [pdu(command_id, &body), ENQUIRE_LINK.to_vec()].concat();
        let outcome = decode_stream(&input, chunk);
        if outcome.error.is_none() {
            prop_assert_eq!(outcome.commands.len(), 2);
            prop_assert_eq!(&outcome.commands[1], &enquire_link(9));
        }
    }

    /// The guard in front of `rusmpp`'s codec decodes what the strict codec decodes.
    #[test]
    fn guard_matches_the_strict_codec(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        smuggled in prop::collection::vec(any::<u8>(), 0..40),
        chunk in 1usize..300,
    ) {
        // A valid stream with one PDU carrying an arbitrary body, then random damage.
        let mut bytes = encode(&sample_commands());
        bytes.extend(pdu(BIND_TRANSMITTER, &smuggled));
        bytes.extend(encode(&sample_commands()));
        for (index, value) in mutations {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        let strict = decode_stream(&bytes, chunk);
        let guarded = decode_guarded(&bytes, chunk);
        prop_assert_eq!(guarded.commands, strict.commands);
        prop_assert_eq!(guarded.error.is_some(), strict.error.is_some());
    }

    #[test]
    fn mutated_valid_commands_never_panic(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        chunk in 1usize..300,
    ) {
        let mut bytes = encode(&sample_commands());
        for (index, value) in mutations {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        let end = cut.index(bytes.len() + 1);
        decode_stream(&bytes[..end], chunk);
        decode_plain(&bytes[..end], chunk);
    }
}

fn enquire_link(sequence_number: u32) -> Command {
    Command::new(CommandStatus::EsmeRok, sequence_number, Pdu::EnquireLink)
}

/// Upstream behaviour the strict codec exists for: with the next PDU already buffered, a
/// C-string without its NUL is completed from that PDU's bytes and decodes "successfully".
#[test]
fn plain_codec_reads_into_the_next_pdu() {
    let input = [pdu(BIND_TRANSMITTER, b"abcdef"), ENQUIRE_LINK.to_vec()].concat();
    let outcome = decode_plain(&input, input.len());
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.commands.len(), 1, "{outcome:?}");
    assert_eq!(outcome.commands[0].id(), rusmpp::CommandId::BindTransmitter);
    // The same bytes in two reads: now the PDU fails.
    let outcome = decode_plain(&input, 22);
    assert!(outcome.error.is_some(), "{outcome:?}");
}

#[test]
fn strict_codec_keeps_a_pdu_within_its_length() {
    let input = [pdu(BIND_TRANSMITTER, b"abcdef"), ENQUIRE_LINK.to_vec()].concat();
    for chunk in [1, 22, input.len()] {
        let outcome = decode_stream(&input, chunk);
        assert!(outcome.commands.is_empty(), "{outcome:?}");
        let error = outcome.error.expect("an error");
        assert!(error.contains("within its command_length"), "{error}");
    }
}

/// Upstream behaviour: body bytes a PDU's fields do not account for are read as the next
/// PDU's header.
#[test]
fn plain_codec_reads_leftover_body_as_a_header() {
    let input = [pdu(0x15, &[1, 2, 3, 4]), ENQUIRE_LINK.to_vec()].concat();
    let outcome = decode_plain(&input, input.len());
    assert_eq!(outcome.commands.len(), 1);
    let error = outcome.error.expect("an error");
    assert!(error.contains("actual: 16909060"), "{error}");
}

#[test]
fn strict_codec_drops_leftover_body() {
    let input = [pdu(0x15, &[1, 2, 3, 4]), ENQUIRE_LINK.to_vec()].concat();
    let outcome = decode_stream(&input, input.len());
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.commands.len(), 2, "{outcome:?}");
    assert_eq!(outcome.commands[0].id(), rusmpp::CommandId::EnquireLink);
    assert_eq!(outcome.commands[1], enquire_link(9));
}

#[test]
fn strict_codec_refuses_lengths_after_four_bytes() {
    let outcome = decode_stream(&0xFFFF_FFFFu32.to_be_bytes(), 4);
    let error = outcome.error.expect("an error");
    assert!(error.contains("exceeds the maximum"), "{error}");
    let outcome = decode_stream(&8u32.to_be_bytes(), 4);
    let error = outcome.error.expect("an error");
    assert!(error.contains("shorter than"), "{error}");
}

#[test]
fn guard_cuts_leftover_body_and_refuses_overreach() {
    let input = [pdu(0x15, &[1, 2, 3, 4]), ENQUIRE_LINK.to_vec()].concat();
    let outcome = decode_guarded(&input, 5);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.commands, vec![enquire_link(1), enquire_link(9)]);

    let input = [pdu(BIND_TRANSMITTER, b"abcdef"), ENQUIRE_LINK.to_vec()].concat();
    let outcome = decode_guarded(&input, input.len());
    assert!(outcome.commands.is_empty());
    let error = outcome.error.expect("an error");
    assert!(error.contains("within its command_length"), "{error}");

    let outcome = decode_guarded(&header(0xFFFF_FFFF, SUBMIT_SM), 4);
    assert!(
        outcome
            .error
            .expect("an error")
            .contains("exceeds the maximum")
    );
}
