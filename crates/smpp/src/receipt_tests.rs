#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn receipt(id: &str, outcome: Outcome, state: &str, error: Option<&str>) -> Option<Receipt> {
    Some(Receipt {
        message_id: id.to_owned(),
        outcome,
        state: state.to_owned(),
        error: error.map(str::to_owned),
    })
}

fn text(esm_class: u8, body: &str) -> Option<Receipt> {
    parse(esm_class, body.as_bytes(), None, None, None)
}

#[test]
fn specification_example() {
    assert_eq!(
        text(
            0x04,
            "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 \
             stat:DELIVRD err:000 text:Hello World"
        ),
        receipt("0123456789", Outcome::Delivered, "DELIVRD", None)
    );
}

#[test]
fn gateway_style_samples() {
    // Kannel's SMSC simulator and many gateways: capitalised "Text:", short text excerpt.
    assert_eq!(
        text(
            0x04,
            "id:1234567890 sub:001 dlvrd:000 submit date:1206111402 done date:1206111403 \
             stat:UNDELIV err:005 Text:Your code is"
        ),
        receipt(
            "1234567890",
            Outcome::Failed,
            "UNDELIV",
            Some("UNDELIV err:005")
        )
    );
    // Hex id, as SMSCs that answer submit_sm with hex ids send it back.
    assert_eq!(
        text(
            0x04,
            "id:7220b6c3 sub:001 dlvrd:001 submit date:2001011200 done date:2001011201 \
             stat:DELIVRD err:000 text:"
        ),
        receipt("7220b6c3", Outcome::Delivered, "DELIVRD", None)
    );
    // A 32-character id and no text field at all.
    assert_eq!(
        text(
            0x04,
            "id:c449ab9744f47b6af1879e49e75e4f40 sub:001 dlvrd:000 submit date:2401311200 \
             done date:2402011200 stat:EXPIRED err:000"
        ),
        receipt(
            "c449ab9744f47b6af1879e49e75e4f40",
            Outcome::Failed,
            "EXPIRED",
            Some("EXPIRED err:000")
        )
    );
    // Upper-case keys, underscored dates, states written out in full.
    assert_eq!(
        text(
            0x04,
            "ID:42 SUB:001 DLVRD:001 SUBMIT_DATE:2401311200 DONE_DATE:2401311201 \
             STAT:DELIVERED ERR:0 TEXT:hi"
        ),
        receipt("42", Outcome::Delivered, "DELIVRD", None)
    );
}

#[test]
fn fields_in_any_order() {
    assert_eq!(
        text(0x04, "stat:REJECTD err:0x0B id:99 sub:001 dlvrd:000"),
        receipt("99", Outcome::Failed, "REJECTD", Some("REJECTD err:0x0B"))
    );
}

#[test]
fn the_message_excerpt_cannot_override_fields() {
    assert_eq!(
        text(
            0x04,
            "id:5 sub:001 dlvrd:000 submit date:2401311200 done date:2401311201 stat:UNDELIV \
             err:001 text:id:6 stat:DELIVRD"
        ),
        receipt("5", Outcome::Failed, "UNDELIV", Some("UNDELIV err:001"))
    );
}

#[test]
fn keys_only_at_word_starts() {
    // "msgid:" is not "id:".
    assert_eq!(text(0x04, "msgid:1 stat:DELIVRD"), None);
}

#[test]
fn intermediate_notification_is_accepted() {
    assert_eq!(
        text(0x20, "id:77 sub:001 dlvrd:000 stat:ENROUTE err:000 text:"),
        receipt("77", Outcome::Accepted, "ENROUTE", None)
    );
    assert_eq!(
        text(0x04, "id:78 stat:ACCEPTED err:000"),
        receipt("78", Outcome::Accepted, "ACCEPTD", None)
    );
}

#[test]
fn other_esm_bits_do_not_matter() {
    // Store-and-forward mode bits and UDHI around the receipt type.
    assert_eq!(
        text(0x04 | 0x03, "id:1 stat:DELETED err:002"),
        receipt("1", Outcome::Failed, "DELETED", Some("DELETED err:002"))
    );
}

#[test]
fn unknown_or_unreadable_is_none() {
    assert_eq!(text(0x04, "id:1 stat:UNKNOWN err:000"), None);
    assert_eq!(text(0x04, "id:1 stat:SOMETHING err:000"), None);
    assert_eq!(text(0x04, "id:1 err:000"), None);
    assert_eq!(text(0x04, "stat:DELIVRD"), None);
    assert_eq!(text(0x04, ""), None);
    assert_eq!(parse(0x04, &[0xFF, 0xFE, 0x00], None, None, None), None);
}

#[test]
fn ordinary_messages_are_not_receipts() {
    // A mobile-originated message that reads like a receipt is still a message.
    assert_eq!(text(0x00, "id:1 stat:DELIVRD err:000"), None);
    assert_eq!(text(0x40, "id:1 stat:DELIVRD err:000"), None);
    // SME delivery and manual acknowledgements are not SMSC receipts.
    assert_eq!(text(0x08, "id:1 stat:DELIVRD err:000"), None);
    assert_eq!(text(0x10, "id:1 stat:DELIVRD err:000"), None);
}

#[test]
fn tlvs_alone() {
    assert_eq!(
        parse(0x00, b"", Some("abc-1"), Some(2), None),
        receipt("abc-1", Outcome::Delivered, "DELIVRD", None)
    );
    assert_eq!(
        parse(0x04, b"", Some("abc-2"), Some(5), Some(&[3, 0x00, 0x22])),
        receipt(
            "abc-2",
            Outcome::Failed,
            "UNDELIV",
            Some("UNDELIV GSM error 34")
        )
    );
    assert_eq!(
        parse(0x04, b"", Some("abc-3"), Some(8), Some(&[42, 0x01, 0x00])),
        receipt(
            "abc-3",
            Outcome::Failed,
            "REJECTD",
            Some("REJECTD network error 42:256")
        )
    );
    assert_eq!(
        parse(0x04, b"", Some("abc-4"), Some(1), None),
        receipt("abc-4", Outcome::Accepted, "ENROUTE", None)
    );
    assert_eq!(
        parse(0x04, b"", Some("abc-5"), Some(6), None),
        receipt("abc-5", Outcome::Accepted, "ACCEPTD", None)
    );
    assert_eq!(
        parse(0x04, b"", Some("abc-6"), Some(3), None),
        receipt("abc-6", Outcome::Failed, "EXPIRED", Some("EXPIRED"))
    );
    assert_eq!(
        parse(0x04, b"", Some("abc-7"), Some(4), None),
        receipt("abc-7", Outcome::Failed, "DELETED", Some("DELETED"))
    );
    assert_eq!(parse(0x04, b"", Some("abc-8"), Some(7), None), None);
    // A state without an id cannot be matched to a message.
    assert_eq!(parse(0x04, b"", None, Some(2), None), None);
    assert_eq!(parse(0x04, b"", Some("  "), Some(2), None), None);
}

#[test]
fn tlvs_win_over_text() {
    let body = b"id:111 sub:001 dlvrd:001 submit date:2401311200 done date:2401311201 \
                 stat:DELIVRD err:000 text:";
    assert_eq!(
        parse(0x04, body, Some("0x6F"), Some(5), Some(&[3, 0x00, 0x01])),
        receipt(
            "0x6F",
            Outcome::Failed,
            "UNDELIV",
            Some("UNDELIV GSM error 1")
        )
    );
    // Field by field: a missing TLV leaves the text's value.
    assert_eq!(
        parse(0x04, body, None, Some(3), None),
        receipt("111", Outcome::Failed, "EXPIRED", Some("EXPIRED err:000"))
    );
    assert_eq!(
        parse(0x04, body, Some("222"), None, None),
        receipt("222", Outcome::Delivered, "DELIVRD", None)
    );
    // A message_state outside SMPP 3.4 falls back to the text; a malformed network error
    // code falls back to the text's err.
    assert_eq!(
        parse(0x04, body, None, Some(9), None),
        receipt("111", Outcome::Delivered, "DELIVRD", None)
    );
    let failed = b"id:9 stat:UNDELIV err:034";
    assert_eq!(
        parse(0x04, failed, None, None, Some(&[3, 0])),
        receipt("9", Outcome::Failed, "UNDELIV", Some("UNDELIV err:034"))
    );
}

#[test]
fn tlvs_make_a_receipt_without_the_esm_class() {
    assert_eq!(
        parse(0x00, b"id:1 stat:DELIVRD", None, Some(2), None),
        receipt("1", Outcome::Delivered, "DELIVRD", None)
    );
}
