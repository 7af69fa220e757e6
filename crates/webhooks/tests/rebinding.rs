//! DNS rebinding: a name that was fine at registration and points somewhere refused at
//! delivery is refused at delivery, because the client resolves through the guard on
//! every attempt and never reuses a connection.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;

use ami_webhooks::{AttemptError, Disposition, GuardError, StaticLookup, classify};
use bytes::Bytes;
use common::{Reply, guard, receiver_on, sender, spawn_receiver};
use http::HeaderMap;
use tokio::net::TcpListener;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn rebinds_to(target: &str, reason: &str) {
    let receiver = spawn_receiver("127.0.0.1:0", Reply::status(200)).await;
    let name = "rebind.test";
    let table = Arc::new(
        StaticLookup::new().with_sequence(name, vec![vec![ip("127.0.0.1")], vec![ip(target)]]),
    );
    let guard = guard("127.0.0.0/8", table.clone());
    let url = format!("http://{name}:{}/hook", receiver.port());

    let registered = guard.check_url_resolving(&url).await.unwrap();
    let outcome = sender(guard)
        .send(&registered, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await;

    assert_eq!(table.calls(name), 2, "delivery must resolve again");
    match &outcome.error {
        Some(AttemptError::Refused(e @ GuardError::ResolvesToBlockedAddress(_))) => {
            assert_eq!(e.reason(), reason)
        }
        other => panic!("expected a refusal, got {other:?} ({outcome:?})"),
    }
    assert_eq!(outcome.status, None);
    assert_eq!(classify(&outcome), Disposition::Retry { after: None });
    assert_eq!(receiver.accepted(), 0);
}

#[tokio::test]
async fn rebinding_to_metadata_is_refused_at_delivery() {
    rebinds_to(
        "169.254.169.254",
        "resolves_to_blocked_address:cloud_metadata",
    )
    .await;
}

#[tokio::test]
async fn rebinding_to_private_is_refused_at_delivery() {
    rebinds_to("10.0.0.1", "resolves_to_blocked_address:private").await;
}

/// Two loopback addresses play "public" (127.0.0.2, allowlisted) and "internal victim"
/// (127.0.0.1, same port). The first delivery goes through; then the name rebinds to
/// the victim, and the victim never sees a connection.
#[tokio::test]
async fn rebinding_between_loopback_addresses_never_reaches_the_victim() {
    let (receiver, victim) = loop {
        let public = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = public.local_addr().unwrap().port();
        if let Ok(victim) = TcpListener::bind(("127.0.0.1", port)).await {
            break (
                receiver_on(public, Reply::status(200)),
                receiver_on(victim, Reply::status(200)),
            );
        }
    };
    let name = "flip.test";
    let table = Arc::new(StaticLookup::new().with_sequence(
        name,
        vec![
            vec![ip("127.0.0.2")],
            vec![ip("127.0.0.2")],
            vec![ip("127.0.0.1")],
        ],
    ));
    let guard = guard("127.0.0.2/32", table.clone());
    let sender = sender(guard.clone());
    let url = guard
        .check_url_resolving(&format!("http://{name}:{}/hook", receiver.port()))
        .await
        .unwrap();

    let first = sender
        .send(&url, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await;
    assert_eq!(classify(&first), Disposition::Delivered, "{first:?}");

    let second = sender
        .send(&url, HeaderMap::new(), Bytes::from_static(b"{}"))
        .await;
    assert!(
        matches!(second.error, Some(AttemptError::Refused(_))),
        "{second:?}"
    );
    assert_eq!(table.calls(name), 3);
    assert_eq!(receiver.accepted(), 1);
    assert_eq!(victim.accepted(), 0, "the victim was reached");
}
