//! A 3xx is a failed attempt and is never followed.

// A panic is the failure report of a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use ami_webhooks::{AttemptError, Disposition, StaticLookup, classify};
use bytes::Bytes;
use common::{Reply, guard, sender, spawn_receiver};
use http::HeaderMap;

#[tokio::test]
async fn redirects_are_failures_and_are_not_followed() {
    let target = spawn_receiver("127.0.0.1:0", Reply::status(200)).await;
    let sender = sender(guard("127.0.0.0/8", Arc::new(StaticLookup::new())));
    // The loopback target comes first: a client that followed redirects fails there,
    // before it could be sent towards the metadata address.
    let locations = [
        format!("http://127.0.0.1:{}/second", target.port()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    for status in [301, 302, 303, 307, 308] {
        for location in &locations {
            let receiver = spawn_receiver("127.0.0.1:0", Reply::redirect(status, location)).await;
            let url = sender
                .guard()
                .check_url(&format!("http://127.0.0.1:{}/hook", receiver.port()))
                .unwrap();
            let outcome = sender
                .send(&url, HeaderMap::new(), Bytes::from_static(b"{}"))
                .await;
            assert_eq!(outcome.status, Some(status), "{outcome:?}");
            assert_eq!(outcome.error, Some(AttemptError::Redirect));
            assert_eq!(classify(&outcome), Disposition::Retry { after: None });
            assert_eq!(receiver.requests().len(), 1, "one request per attempt");
        }
    }
    assert_eq!(target.accepted(), 0, "a redirect was followed");
}

#[tokio::test]
async fn gone_and_retry_after_are_reported() {
    let sender = sender(guard("127.0.0.0/8", Arc::new(StaticLookup::new())));

    let gone = spawn_receiver("127.0.0.1:0", Reply::status(410)).await;
    let url = sender
        .guard()
        .check_url(&format!("http://127.0.0.1:{}/", gone.port()))
        .unwrap();
    let outcome = sender.send(&url, HeaderMap::new(), Bytes::new()).await;
    assert_eq!(classify(&outcome), Disposition::Gone);

    let busy = spawn_receiver(
        "127.0.0.1:0",
        Reply::Fixed {
            status: 503,
            headers: vec![("Retry-After".into(), "120".into())],
            body: b"busy\r\n\x1b[2J".to_vec(),
        },
    )
    .await;
    let url = sender
        .guard()
        .check_url(&format!("http://127.0.0.1:{}/", busy.port()))
        .unwrap();
    let outcome = sender.send(&url, HeaderMap::new(), Bytes::new()).await;
    assert_eq!(outcome.status, Some(503));
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.response_excerpt, "busy\\r\\n\\x1b[2J");
    assert_eq!(
        classify(&outcome),
        Disposition::Retry {
            after: Some(std::time::Duration::from_secs(120))
        }
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind then drop, so nothing listens on the port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender = sender(guard("127.0.0.0/8", Arc::new(StaticLookup::new())));
    let url = sender
        .guard()
        .check_url(&format!("http://127.0.0.1:{port}/"))
        .unwrap();
    let outcome = sender.send(&url, HeaderMap::new(), Bytes::new()).await;
    assert_eq!(outcome.error, Some(AttemptError::Connect), "{outcome:?}");
}
