//! `Idempotency-Key` on mutating POSTs (PROTOCOL §0): a retry with the same key and body
//! replays the first answer byte for byte and creates nothing more; the same key with another
//! body is `409 idempotency_key_reused` and creates nothing; keys belong to one credential;
//! malformed keys are `400 invalid_idempotency_key`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// POSTs raw JSON bytes with an optional key; returns the status and the exact body.
async fn post(
    server: &TestServer,
    path: &str,
    credential: &str,
    key: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut req = server
        .http
        .post(format!("{}{path}", server.base))
        .bearer_auth(credential)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// How many SIM requests this customer created, from its audit log.
async fn created(server: &TestServer, credential: &str) -> u64 {
    let (s, v) = server
        .get(
            "/v1/events?action=sim_request_requested&limit=1000",
            credential,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["count"].as_u64().unwrap()
}

fn error(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap()["error"].clone()
}

#[tokio::test]
async fn same_key_same_body_replays_byte_for_byte() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let body = json!({"country": "ES", "agent": {"name": "bot"}}).to_string();
        let first = post(&server, "/v1/sim-requests", &key, Some("retry-0001"), &body).await;
        assert_eq!(first.0, StatusCode::CREATED, "{engine:?} {}", first.1);
        let second = post(&server, "/v1/sim-requests", &key, Some("retry-0001"), &body).await;
        assert_eq!(
            second, first,
            "{engine:?}: the retry is not the stored answer"
        );
        assert_eq!(
            created(&server, &key).await,
            1,
            "{engine:?}: the retry created a second request"
        );

        // The replayed request is the one that exists.
        let id = serde_json::from_str::<Value>(&first.1).unwrap()["sim_request"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, _) = server.get(&format!("/v1/sim-requests/{id}"), &key).await;
        assert_eq!(s, StatusCode::OK);

        // A refusal is replayed too, and still creates nothing.
        let fr = json!({"country": "FR"}).to_string();
        let a = post(&server, "/v1/sim-requests", &key, Some("retry-0002"), &fr).await;
        let b = post(&server, "/v1/sim-requests", &key, Some("retry-0002"), &fr).await;
        assert_eq!(a.0, StatusCode::BAD_REQUEST);
        assert_eq!(b, a, "{engine:?}");

        // Without a key every POST is a new request.
        post(&server, "/v1/sim-requests", &key, None, &body).await;
        post(&server, "/v1/sim-requests", &key, None, &body).await;
        assert_eq!(created(&server, &key).await, 3, "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn same_key_other_body_is_refused_and_creates_nothing() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let first = post(
            &server,
            "/v1/sim-requests",
            &key,
            Some("k-1"),
            &json!({"country": "ES"}).to_string(),
        )
        .await;
        assert_eq!(first.0, StatusCode::CREATED);
        let events = server.event_count().await;
        let (s, body) = post(
            &server,
            "/v1/sim-requests",
            &key,
            Some("k-1"),
            &json!({"country": "CO"}).to_string(),
        )
        .await;
        assert_eq!(
            (s, error(&body)),
            (StatusCode::CONFLICT, json!("idempotency_key_reused")),
            "{engine:?} {body}"
        );
        assert_eq!(created(&server, &key).await, 1, "{engine:?}");
        assert_eq!(server.event_count().await, events, "{engine:?}");

        // The same key on another route is another request, too.
        let (s, body) = post(
            &server,
            "/v1/customers",
            &key,
            Some("k-1"),
            &json!({"country": "ES"}).to_string(),
        )
        .await;
        assert_eq!(
            (s, error(&body)),
            (StatusCode::CONFLICT, json!("idempotency_key_reused")),
            "{engine:?} {body}"
        );

        // The original answer is still the one replayed.
        let again = post(
            &server,
            "/v1/sim-requests",
            &key,
            Some("k-1"),
            &json!({"country": "ES"}).to_string(),
        )
        .await;
        assert_eq!(again, first, "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn keys_belong_to_one_credential() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, alice) = server.customer("Alice").await;
        let (_, bob) = server.customer("Bob").await;
        let body = json!({"country": "ES"}).to_string();
        let a = post(
            &server,
            "/v1/sim-requests",
            &alice,
            Some("shared-key"),
            &body,
        )
        .await;
        let b = post(&server, "/v1/sim-requests", &bob, Some("shared-key"), &body).await;
        assert_eq!(
            (a.0, b.0),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{engine:?} {} {}",
            a.1,
            b.1
        );
        assert_ne!(a.1, b.1, "{engine:?}: Bob got Alice's stored answer");
        let id = |s: &str| {
            serde_json::from_str::<Value>(s).unwrap()["sim_request"]["account_id"].clone()
        };
        assert_ne!(id(&a.1), id(&b.1));
        assert_eq!(created(&server, &alice).await, 1, "{engine:?}");
        assert_eq!(created(&server, &bob).await, 1, "{engine:?}");

        // A different body from Bob is his own business, not a reuse of Alice's key.
        let other = post(
            &server,
            "/v1/sim-requests",
            &bob,
            Some("alice-only"),
            &json!({"country": "CO"}).to_string(),
        )
        .await;
        let mine = post(
            &server,
            "/v1/sim-requests",
            &alice,
            Some("alice-only"),
            &body,
        )
        .await;
        assert_eq!(
            (other.0, mine.0),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{engine:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let body = json!({"country": "ES"}).to_string();
        let events = server.event_count().await;
        for bad in ["k".repeat(256), "has space".to_owned(), String::new()] {
            let (s, res) = post(&server, "/v1/sim-requests", &key, Some(&bad), &body).await;
            let shown = bad.chars().take(20).collect::<String>();
            assert_eq!(
                (s, error(&res)),
                (StatusCode::BAD_REQUEST, json!("invalid_idempotency_key")),
                "{engine:?} {shown:?}"
            );
        }
        assert_eq!(created(&server, &key).await, 0, "{engine:?}");
        assert_eq!(server.event_count().await, events, "{engine:?}");

        // 255 visible characters is the longest valid key.
        let (s, res) = post(
            &server,
            "/v1/sim-requests",
            &key,
            Some(&"k".repeat(255)),
            &body,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {res}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_key_is_forgotten_after_the_window() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let body = json!({"country": "ES"}).to_string();
        let first = post(&server, "/v1/sim-requests", &key, Some("daily"), &body).await;
        server.clock.advance_days(2);
        let later = post(&server, "/v1/sim-requests", &key, Some("daily"), &body).await;
        assert_eq!(later.0, StatusCode::CREATED, "{engine:?} {}", later.1);
        assert_ne!(later.1, first.1, "{engine:?}: replayed after 24 h");
        assert_eq!(created(&server, &key).await, 2, "{engine:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn concurrent_retries_create_one_request() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let body = json!({"country": "ES"}).to_string();
        let tries = (0..6).map(|_| post(&server, "/v1/sim-requests", &key, Some("burst"), &body));
        let answers = futures_join_all(tries).await;
        let winner = answers
            .iter()
            .find(|(s, _)| *s == StatusCode::CREATED)
            .unwrap_or_else(|| panic!("{engine:?}: nobody won: {answers:?}"))
            .clone();
        for (s, b) in &answers {
            // Either the stored answer, or told that the first is still running.
            let in_flight = *s == StatusCode::CONFLICT && error(b) == "idempotency_key_in_flight";
            assert!(
                (*s, b) == (winner.0, &winner.1) || in_flight,
                "{engine:?}: {s} {b}"
            );
        }
        assert_eq!(created(&server, &key).await, 1, "{engine:?}");
        server.stop().await;
    }
}

/// Runs the futures concurrently on this task (no extra dependency needed).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

/// A stored response is no way around a rotation: the old credential gets its 401 on the
/// very next request, replay or not (PROTOCOL §1).
#[tokio::test]
async fn a_rotated_credential_gets_no_replay() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Replay").await;
        let body = json!({"country": "ES"}).to_string();
        let (s, _) = post(&server, "/v1/sim-requests", &key, Some("k-rotate"), &body).await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, _) = server
            .post(
                &format!("/v1/admin/customers/{account}/rotate-key"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = post(&server, "/v1/sim-requests", &key, Some("k-rotate"), &body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{engine:?} {v}");
        server.stop().await;
    }
}
