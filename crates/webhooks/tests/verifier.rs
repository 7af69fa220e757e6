//! The shipped verifiers, through the public API: fresh deliveries verify, stale and
//! future timestamps and tampered bodies do not.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ami_webhooks::{
    TOLERANCE_SECS, VerifyError, generate_secret, sign, verify_compatible, verify_standard,
};

const NOW: u64 = 1_795_946_400;
const BODY: &[u8] = br#"{"id":"evt_1","event":"sms.inbound","data":{}}"#;

fn both(
    secret: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    now: u64,
) -> [Result<(), VerifyError>; 2] {
    [
        verify_compatible(secret, headers, body, now),
        verify_standard(secret, headers, body, now),
    ]
}

fn signed(secret: &str, ts: u64) -> http::HeaderMap {
    sign(secret, "wh_01", "evt_01", ts, BODY)
        .unwrap()
        .to_header_map()
        .unwrap()
}

#[test]
fn fresh_delivery_verifies() {
    let secret = generate_secret();
    assert_eq!(
        both(&secret, &signed(&secret, NOW), BODY, NOW),
        [Ok(()), Ok(())]
    );
}

#[test]
fn stale_timestamp_is_rejected() {
    let secret = generate_secret();
    let stale = NOW - TOLERANCE_SECS - 1;
    assert_eq!(
        both(&secret, &signed(&secret, stale), BODY, NOW),
        [Err(VerifyError::TimestampTooOld); 2]
    );
    let edge = NOW - TOLERANCE_SECS;
    assert_eq!(
        both(&secret, &signed(&secret, edge), BODY, NOW),
        [Ok(()), Ok(())]
    );
}

#[test]
fn future_timestamp_is_rejected() {
    let secret = generate_secret();
    let future = NOW + TOLERANCE_SECS + 1;
    assert_eq!(
        both(&secret, &signed(&secret, future), BODY, NOW),
        [Err(VerifyError::TimestampTooNew); 2]
    );
    let edge = NOW + TOLERANCE_SECS;
    assert_eq!(
        both(&secret, &signed(&secret, edge), BODY, NOW),
        [Ok(()), Ok(())]
    );
}

#[test]
fn tampered_body_is_rejected() {
    let secret = generate_secret();
    let headers = signed(&secret, NOW);
    let mut tampered = BODY.to_vec();
    tampered.push(b' ');
    assert_eq!(
        both(&secret, &headers, &tampered, NOW),
        [Err(VerifyError::Mismatch); 2]
    );
    let mut flipped = BODY.to_vec();
    flipped[10] ^= 0x20;
    assert_eq!(
        both(&secret, &headers, &flipped, NOW),
        [Err(VerifyError::Mismatch); 2]
    );
}

#[test]
fn replayed_headers_with_a_moved_timestamp_are_rejected() {
    // Rewriting only the timestamp headers to look fresh breaks both MACs.
    let secret = generate_secret();
    let mut headers = signed(&secret, NOW - 3600);
    for name in ["x-ami-timestamp", "webhook-timestamp"] {
        headers.insert(name, http::HeaderValue::from(NOW));
    }
    assert_eq!(
        both(&secret, &headers, BODY, NOW),
        [Err(VerifyError::Mismatch); 2]
    );
}

#[test]
fn another_endpoints_secret_is_rejected() {
    let headers = signed(&generate_secret(), NOW);
    assert_eq!(
        both(&generate_secret(), &headers, BODY, NOW),
        [Err(VerifyError::Mismatch); 2]
    );
}
