//! A receiver cannot make an attempt read without bound or store more than the excerpt.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ami_webhooks::{Disposition, EXCERPT_MAX, MAX_BODY_READ, StaticLookup, classify};
use bytes::Bytes;
use common::{Reply, guard, sender, spawn_receiver};
use http::HeaderMap;

async fn capped(reply: Reply) {
    let receiver = spawn_receiver("127.0.0.1:0", reply).await;
    let sender = sender(guard("127.0.0.0/8", Arc::new(StaticLookup::new())));
    let url = sender
        .guard()
        .check_url(&format!("http://127.0.0.1:{}/", receiver.port()))
        .unwrap();

    let started = Instant::now();
    let outcome = sender
        .send(&url, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await;
    let took = started.elapsed();

    // Ended by the cap, not by the 10 s total timeout.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.error, None);
    assert_eq!(classify(&outcome), Disposition::Delivered);
    assert!(
        outcome.body_bytes_read <= MAX_BODY_READ as u64,
        "{}",
        outcome.body_bytes_read
    );
    assert!(!outcome.body_complete);
    assert!(outcome.response_excerpt.len() <= EXCERPT_MAX);
    assert!(!outcome.response_excerpt.is_empty());
    assert!(
        outcome
            .response_excerpt
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b)),
        "raw bytes in the excerpt"
    );
    // The pattern starts 00 01 02 …: escaped, never raw.
    assert!(outcome.response_excerpt.starts_with("\\x00\\x01\\x02"));

    // The client hung up: the receiver's writes start failing soon after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !receiver.client_closed.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        receiver.client_closed.load(Ordering::SeqCst),
        "the sender kept the connection open after the cap"
    );
}

#[tokio::test]
async fn endless_chunked_body_is_cut_at_64_kib() {
    capped(Reply::Endless).await;
}

#[tokio::test]
async fn huge_content_length_is_not_trusted() {
    capped(Reply::HugeContentLength).await;
}
