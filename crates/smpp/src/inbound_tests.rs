#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn key(from: &str) -> (String, String) {
    (from.to_owned(), "+15550000".to_owned())
}

fn frag(reference: u16, total: u8, seq: u8) -> Fragment {
    Fragment {
        reference,
        total,
        seq,
    }
}

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn header_with_8bit_reference() {
    let message = [0x05, 0x00, 0x03, 0xAB, 0x03, 0x02, b'h', b'i'];
    assert_eq!(
        fragment(0x40, &message, None),
        (Some(frag(0xAB, 3, 2)), b"hi".as_slice())
    );
}

#[test]
fn header_with_16bit_reference_and_other_elements() {
    // A port-addressing element (0x05) before the 16-bit concatenation element.
    let message = [
        0x0C, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01, b'x',
    ];
    assert_eq!(
        fragment(0x40, &message, None),
        (Some(frag(0x1234, 2, 1)), b"x".as_slice())
    );
}

#[test]
fn header_without_concatenation() {
    let message = [0x04, 0x05, 0x02, 0x0B, 0x84, b'y'];
    assert_eq!(fragment(0x40, &message, None), (None, b"y".as_slice()));
    assert_eq!(fragment(0x40, &[0x00, b'z'], None), (None, b"z".as_slice()));
}

#[test]
fn malformed_header_is_no_header() {
    for message in [
        &[][..],
        &[0x06, 0x00, 0x03, 0x01, 0x02][..], // longer than the message
        &[0x03, 0x00, 0x03, 0x01, b'a', b'b'][..], // element longer than the header
        &[0x04, 0x00, 0x02, 0x01, 0x02, b'a'][..], // concatenation of the wrong size
        &[0x05, 0x08, 0x03, 0x01, 0x02, 0x01, b'a'][..], // 16-bit of the wrong size
        &[0x01, 0x00, b'a'][..],             // element without its length
    ] {
        assert_eq!(
            fragment(0x40, message, None),
            (None, message),
            "{message:?}"
        );
    }
}

#[test]
fn header_ignored_without_udhi() {
    let message = [0x05, 0x00, 0x03, 0xAB, 0x03, 0x02, b'h', b'i'];
    assert_eq!(fragment(0x00, &message, None), (None, message.as_slice()));
}

#[test]
fn sar_tlvs() {
    assert_eq!(
        fragment(0x00, b"part", Some((0xBEEF, 4, 3))),
        (Some(frag(0xBEEF, 4, 3)), b"part".as_slice())
    );
    // Both: the TLVs number the part, the header is still removed.
    let message = [0x05, 0x00, 0x03, 0xAB, 0x03, 0x02, b'h', b'i'];
    assert_eq!(
        fragment(0x40, &message, Some((7, 2, 1))),
        (Some(frag(7, 2, 1)), b"hi".as_slice())
    );
}

#[test]
fn parts_in_any_order_complete_once() {
    let now = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 10);
    assert_eq!(r.push(key("a"), frag(9, 3, 3), "!".into(), 3, now), None);
    assert_eq!(r.push(key("a"), frag(9, 3, 1), "Hel".into(), 1, now), None);
    assert_eq!(r.pending(), 1);
    assert_eq!(
        r.push(key("a"), frag(9, 3, 2), "lo".into(), 2, now),
        Some(("Hello!".to_owned(), vec![1, 2, 3]))
    );
    assert_eq!(r.pending(), 0);
    assert_eq!(r.expire(now + TIMEOUT), Vec::<i32>::new());
}

#[test]
fn duplicate_replaces_text_and_keeps_both_acks() {
    let now = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 10);
    assert_eq!(r.push(key("a"), frag(1, 2, 1), "old".into(), 10, now), None);
    assert_eq!(r.push(key("a"), frag(1, 2, 1), "new".into(), 11, now), None);
    assert_eq!(
        r.push(key("a"), frag(1, 2, 2), " end".into(), 12, now),
        Some(("new end".to_owned(), vec![11, 12, 10]))
    );
}

#[test]
fn duplicate_acks_are_returned_on_expiry_too() {
    let now = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 10);
    r.push(key("a"), frag(1, 2, 1), "old".into(), 10, now);
    r.push(key("a"), frag(1, 2, 1), "new".into(), 11, now);
    let mut acks = r.expire(now + TIMEOUT);
    acks.sort();
    assert_eq!(acks, vec![10, 11]);
}

#[test]
fn senders_references_and_totals_keep_messages_apart() {
    let now = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 10);
    assert_eq!(r.push(key("a"), frag(1, 2, 1), "a1".into(), 1, now), None);
    assert_eq!(r.push(key("b"), frag(1, 2, 2), "b2".into(), 2, now), None);
    assert_eq!(r.push(key("a"), frag(2, 2, 2), "x".into(), 3, now), None);
    assert_eq!(r.push(key("a"), frag(1, 3, 2), "y".into(), 4, now), None);
    assert_eq!(r.pending(), 4);
    assert_eq!(
        r.push(key("a"), frag(1, 2, 2), "a2".into(), 5, now),
        Some(("a1a2".to_owned(), vec![1, 5]))
    );
    assert_eq!(
        r.push(key("b"), frag(1, 2, 1), "b1".into(), 6, now),
        Some(("b1b2".to_owned(), vec![6, 2]))
    );
}

#[test]
fn invalid_or_single_numbering_is_a_whole_message() {
    let now = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 10);
    for (n, f) in [frag(1, 0, 0), frag(1, 2, 0), frag(1, 2, 3), frag(1, 1, 1)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            r.push(key("a"), f, "whole".into(), n, now),
            Some(("whole".to_owned(), vec![n])),
            "{f:?}"
        );
    }
    assert_eq!(r.pending(), 0);
}

#[test]
fn expiry_after_the_timeout_from_the_first_part() {
    let start = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 10);
    r.push(key("a"), frag(1, 3, 1), "1".into(), 1, start);
    r.push(key("b"), frag(1, 2, 1), "1".into(), 2, start + TIMEOUT / 2);
    r.push(key("a"), frag(1, 3, 2), "2".into(), 3, start + TIMEOUT / 2);
    assert_eq!(
        r.expire(start + TIMEOUT - Duration::from_millis(1)),
        Vec::<i32>::new()
    );
    let mut acks = r.expire(start + TIMEOUT);
    acks.sort();
    assert_eq!(acks, vec![1, 3]);
    assert_eq!(r.pending(), 1);
    assert_eq!(r.expire(start + TIMEOUT * 3 / 2), vec![2]);
    assert_eq!(r.pending(), 0);
}

#[test]
fn bounded_number_evicts_the_oldest_through_expire() {
    let start = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 2);
    r.push(key("a"), frag(1, 2, 1), "a".into(), 1, start);
    r.push(
        key("b"),
        frag(1, 2, 1),
        "b".into(),
        2,
        start + Duration::from_secs(1),
    );
    // Another part of a held message needs no room.
    r.push(
        key("a"),
        frag(1, 3, 1),
        "c".into(),
        3,
        start + Duration::from_secs(2),
    );
    assert_eq!(r.pending(), 2);
    assert_eq!(r.expire(start + Duration::from_secs(2)), vec![1]);
    // The evicted message starts afresh when its other part arrives.
    assert_eq!(
        r.push(
            key("a"),
            frag(1, 2, 2),
            "x".into(),
            4,
            start + Duration::from_secs(3)
        ),
        None
    );
    assert_eq!(r.pending(), 2);
    assert_eq!(r.expire(start + Duration::from_secs(3)), vec![2]);
    assert_eq!(r.push(key("a"), frag(1, 3, 2), "d".into(), 5, start), None);
    assert_eq!(r.pending(), 2);
}

#[test]
fn zero_capacity_still_holds_one_message() {
    let now = Instant::now();
    let mut r = Reassembler::new(TIMEOUT, 0);
    assert_eq!(r.push(key("a"), frag(1, 2, 1), "a".into(), 1, now), None);
    assert_eq!(
        r.push(key("a"), frag(1, 2, 2), "b".into(), 2, now),
        Some(("ab".to_owned(), vec![1, 2]))
    );
}
