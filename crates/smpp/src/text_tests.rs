#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use ami_core::sms::segment;
use proptest::prelude::*;

/// The body a receiver reassembles from the parts: the header dropped, the payload decoded.
fn reassemble(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|part| {
            let bytes = match &part.message_payload {
                Some(payload) => {
                    assert!(part.short_message.is_empty());
                    payload.as_slice()
                }
                None if part.udhi => &part.short_message[UDH_LEN..],
                None => part.short_message.as_slice(),
            };
            decode(part.data_coding, bytes)
        })
        .collect()
}

fn check_limits(parts: &[Part]) {
    for part in parts {
        let limit = if part.data_coding == DATA_CODING_UCS2 {
            140
        } else {
            160
        };
        assert!(
            part.short_message.len() <= limit,
            "{} bytes",
            part.short_message.len()
        );
    }
}

#[test]
fn short_gsm_body_is_one_plain_part() {
    let parts = parts("Hello @ 10€ {ok}", LongMessages::Udh, 7);
    assert_eq!(
        parts,
        vec![Part {
            data_coding: 0,
            udhi: false,
            short_message: [
                b"Hello ".as_slice(),
                &[0x00],
                b" 10",
                &[0x1B, 0x65, 0x20, 0x1B, 0x28],
                b"ok",
                &[0x1B, 0x29]
            ]
            .concat(),
            sar: None,
            message_payload: None,
        }]
    );
}

#[test]
fn short_ucs2_body_is_utf16be() {
    let parts = parts("añ😀", LongMessages::Sar, 7);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].data_coding, 8);
    assert_eq!(
        parts[0].short_message,
        vec![0x00, 0x61, 0x00, 0xF1, 0xD8, 0x3D, 0xDE, 0x00]
    );
    assert_eq!(parts[0].sar, None);
}

#[test]
fn empty_body_is_one_empty_part() {
    let parts = parts("", LongMessages::Payload, 1);
    assert_eq!(parts, vec![single_part(0, Vec::new())]);
}

#[test]
fn long_gsm_body_with_udh() {
    let body = "a".repeat(161);
    let parts = parts(&body, LongMessages::Udh, 0x1234);
    assert_eq!(parts.len(), 2);
    assert_eq!(&parts[0].short_message[..6], &[5, 0, 3, 0x34, 2, 1]);
    assert_eq!(&parts[1].short_message[..6], &[5, 0, 3, 0x34, 2, 2]);
    assert_eq!(parts[0].short_message.len(), 6 + 153);
    assert_eq!(parts[1].short_message.len(), 6 + 8);
    assert!(parts.iter().all(|p| p.udhi && p.sar.is_none()));
    assert_eq!(reassemble(&parts), body);
}

#[test]
fn long_ucs2_body_with_sar() {
    let body = "á".repeat(135);
    let parts = parts(&body, LongMessages::Sar, 0x1234);
    assert_eq!(parts.len(), 3);
    for (index, part) in parts.iter().enumerate() {
        assert!(!part.udhi);
        assert_eq!(
            part.sar,
            Some(Sar {
                reference: 0x1234,
                total: 3,
                seq: index as u8 + 1
            })
        );
    }
    assert_eq!(parts[0].short_message.len(), 134);
    assert_eq!(parts[2].short_message.len(), 2);
    assert_eq!(reassemble(&parts), body);
}

#[test]
fn long_body_as_payload() {
    let body = "x".repeat(500);
    let parts = parts(&body, LongMessages::Payload, 9);
    assert_eq!(parts.len(), 1);
    assert!(parts[0].short_message.is_empty());
    assert_eq!(parts[0].message_payload.as_deref(), Some(body.as_bytes()));
    assert_eq!(reassemble(&parts), body);
}

#[test]
fn escape_pair_moves_whole_to_the_next_part() {
    let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
    let parts = parts(&body, LongMessages::Sar, 1);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].short_message.len(), 152);
    assert_eq!(&parts[1].short_message[..2], &[0x1B, 0x65]);
    assert_eq!(reassemble(&parts), body);
}

#[test]
fn surrogate_pair_moves_whole_to_the_next_part() {
    let body = format!("{}😀{}", "á".repeat(66), "á".repeat(66));
    let parts = parts(&body, LongMessages::Udh, 1);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].short_message.len(), 6 + 132);
    assert_eq!(&parts[1].short_message[6..10], &[0xD8, 0x3D, 0xDE, 0x00]);
    assert_eq!(reassemble(&parts), body);
}

#[test]
fn long_messages_names() {
    for (name, method) in [
        ("udh", LongMessages::Udh),
        ("sar", LongMessages::Sar),
        ("payload", LongMessages::Payload),
    ] {
        let parsed: LongMessages =
            serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<
                serde::de::value::Error,
            >::new(name))
            .unwrap();
        assert_eq!(parsed, method);
    }
}

#[test]
fn decode_gsm7_with_extension_table() {
    assert_eq!(
        decode(0, &[0x00, 0x01, 0x02, 0x1B, 0x65, 0x1B, 0x0A, 0x7F, 0x11]),
        "@£$€\u{0C}à_"
    );
    // Undefined extension code: the default character; escape before escape or at the
    // end: a space.
    assert_eq!(decode(0, &[0x1B, 0x41, 0x1B, 0x1B, 0x42, 0x1B]), "A B ");
}

#[test]
fn decode_gsm7_with_8bit_bytes_is_latin1() {
    assert_eq!(decode(0, b"caf\xe9 @"), "café @");
}

#[test]
fn decode_other_alphabets() {
    assert_eq!(decode(1, b"abc\x80"), "abc\u{FFFD}");
    assert_eq!(decode(3, b"\xe9\xfc"), "éü");
    assert_eq!(decode(6, b"\xb0\xd1\xf0\xa1\xad"), "Аб№Ё\u{AD}");
    assert_eq!(
        decode(8, &[0x00, 0x61, 0xD8, 0x3D, 0xDE, 0x00, 0x00]),
        "a😀"
    );
    assert_eq!(decode(8, &[0xD8, 0x3D, 0x00, 0x61]), "\u{FFFD}a");
    assert_eq!(decode(4, "héllo".as_bytes()), "héllo");
    assert_eq!(decode(2, &[0xFF, 0x41]), "\u{FFFD}A");
}

#[test]
fn decode_gsm_data_coding_scheme_groups() {
    // General data coding: class 0 default alphabet, UCS-2; compressed; 8-bit.
    assert_eq!(decode(0x10, &[0x00]), "@");
    assert_eq!(decode(0x18, &[0x00, 0x41]), "A");
    assert_eq!(decode(0x30, b"zip"), "zip");
    assert_eq!(decode(0x14, &[0x00]), "\0");
    // Automatic deletion group, UCS-2.
    assert_eq!(decode(0x48, &[0x04, 0x10]), "А");
    // Message waiting groups.
    assert_eq!(decode(0xC0, &[0x00]), "@");
    assert_eq!(decode(0xD8, &[0x00]), "@");
    assert_eq!(decode(0xE0, &[0x00, 0xE9]), "é");
    // Data coding/message class: default alphabet, then 8-bit data.
    assert_eq!(decode(0xF0, &[0x00]), "@");
    assert_eq!(decode(0xF1, &[0x1B, 0x65]), "€");
    assert_eq!(decode(0xF4, &[0x00]), "\0");
}

fn gsm_alphabet() -> Vec<char> {
    GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()).collect()
}

/// Bodies of every length in each encoding: GSM-7 only, GSM-7 with a rare other character
/// (usually turning the body into UCS-2 late), and any characters at all.
fn any_body() -> impl Strategy<Value = String> {
    let mostly_gsm = prop_oneof![
        400 => prop::sample::select(gsm_alphabet()),
        1 => any::<char>(),
    ];
    prop_oneof![
        prop::collection::vec(prop::sample::select(gsm_alphabet()), 0..=1000),
        prop::collection::vec(mostly_gsm, 0..=1000),
        prop::collection::vec(any::<char>(), 0..=1000),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parts_match_the_charged_segments(body in any_body(), reference: u16) {
        let charged = segment(&body);
        for method in [LongMessages::Udh, LongMessages::Sar] {
            let parts = parts(&body, method, reference);
            prop_assert_eq!(parts.len() as u32, charged.segments);
            let expected_coding = match charged.encoding {
                ami_core::sms::Encoding::Gsm7 => DATA_CODING_GSM7,
                ami_core::sms::Encoding::Ucs2 => DATA_CODING_UCS2,
            };
            prop_assert!(parts.iter().all(|p| p.data_coding == expected_coding));
            check_limits(&parts);
            prop_assert_eq!(reassemble(&parts), body.clone());
        }
        let payload = parts(&body, LongMessages::Payload, reference);
        prop_assert_eq!(payload.len(), 1);
        check_limits(&payload);
        prop_assert_eq!(reassemble(&payload), body);
    }

    #[test]
    fn decode_never_panics(data_coding: u8, bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(data_coding, &bytes);
    }
}
