//! `Idempotency-Key` on mutating POSTs (PROTOCOL §0): a retry with the same key and body
//! replays the first answer byte for byte and creates nothing more; the same key with another
//! body is `409 idempotency_key_reused` and creates nothing; keys belong to one credential;
//! malformed keys are `400 invalid_idempotency_key`; a claim never completed (its process died)
//! is taken over after the request timeout and a margin, not after the window; `ami serve`
//! sweeps keys past the window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{ADMIN_KEY, AmiProcess, Engine, TestServer, engines};
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
            "/v1/events?action=sim_request_created&limit=1000",
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

/// A key claimed by a request that never completed (its process died mid-request) answers
/// `409 idempotency_key_in_flight` until the request timeout and the margin have passed, and
/// is then taken over by the same request, which runs.
#[tokio::test]
async fn an_abandoned_claim_is_taken_over_after_the_in_flight_timeout() {
    const TIMEOUT_MS: i64 = 20_000;
    let lease = TIMEOUT_MS
        + i64::try_from(ami_server::http::idempotency::IN_FLIGHT_MARGIN.as_millis()).unwrap();
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_REQUEST_TIMEOUT_MS", "20000")]).await;
        let (_, key) = server.customer("Crashed").await;
        let body = json!({"country": "ES"}).to_string();
        let first = post(&server, "/v1/sim-requests", &key, Some("crashed"), &body).await;
        assert_eq!(first.0, StatusCode::CREATED, "{engine:?} {}", first.1);
        // Now leave the key as a process that died after claiming it leaves it.
        let now = server.clock.0.load(Ordering::SeqCst);
        let store = &server.running.services.store;
        let mut tx = store.begin().await.unwrap();
        let changed = sqlx::query(
            "UPDATE idempotency_keys SET status_code = NULL, response_body = NULL,
                 created_at = $1, lease_until = $2, claim_token = 'dead-process'
             WHERE key = 'crashed'",
        )
        .bind(now)
        .bind(now + lease)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
        ami_store::commit(tx).await.unwrap();
        assert_eq!(changed, 1);

        for advance in [0, lease - 1] {
            server.clock.0.fetch_add(advance, Ordering::SeqCst);
            let (s, b) = post(&server, "/v1/sim-requests", &key, Some("crashed"), &body).await;
            assert_eq!(
                (s, error(&b)),
                (StatusCode::CONFLICT, json!("idempotency_key_in_flight")),
                "{engine:?} {b}"
            );
        }
        server.clock.0.fetch_add(1, Ordering::SeqCst);
        let taken = post(&server, "/v1/sim-requests", &key, Some("crashed"), &body).await;
        assert_eq!(taken.0, StatusCode::CREATED, "{engine:?} {}", taken.1);
        assert_ne!(
            taken.1, first.1,
            "{engine:?}: the request did not run again"
        );
        assert_eq!(created(&server, &key).await, 2, "{engine:?}");
        // The new answer is the one kept.
        let again = post(&server, "/v1/sim-requests", &key, Some("crashed"), &body).await;
        assert_eq!(again, taken, "{engine:?}");
        server.stop().await;
    }
}

/// The keys in the table, read over a connection of the test's own.
async fn stored_keys(url: &str) -> Vec<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let mut keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    keys.sort();
    keys
}

/// `ami serve` sweeps the keys past the window (24 h by default), finished or abandoned, and
/// keeps the others.
#[tokio::test]
async fn ami_serve_sweeps_expired_keys_and_keeps_live_ones() {
    const HOUR: i64 = 3_600_000;
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => common::fresh_pg_database().await,
        };
        let store = ami_store::Store::open(&url, &ami_store::OpenOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let now = ami_core::time::now_ms();
        // (key, created_at, status, lease_until)
        let rows: [(&str, i64, Option<i64>, Option<i64>); 5] = [
            ("expired-done", now - 25 * HOUR, Some(201), None),
            (
                "expired-abandoned",
                now - 25 * HOUR,
                None,
                Some(now - 25 * HOUR + 35_000),
            ),
            ("expired-before-leases", now - 30 * HOUR, None, None),
            ("live-done", now - HOUR, Some(200), None),
            ("live-claim", now, None, Some(now + 35_000)),
        ];
        let mut tx = store.begin().await.unwrap();
        for (key, created_at, status, lease_until) in rows {
            sqlx::query(
                "INSERT INTO idempotency_keys
                     (scope, key, request_hash, status_code, response_body, created_at, lease_until, claim_token)
                 VALUES ('scope', $1, 'hash', $2, $3, $4, $5, 'token')",
            )
            .bind(key)
            .bind(status)
            .bind(status.map(|_| "sealed"))
            .bind(created_at)
            .bind(lease_until)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        ami_store::commit(tx).await.unwrap();
        store.close().await;

        let mut ami = AmiProcess::spawn(&url, &[], &[]);
        ami.ready().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut keys = stored_keys(&url).await;
        while keys.len() > 2 {
            assert!(
                Instant::now() < deadline,
                "{engine:?}: not swept: {keys:?}\n{}",
                ami.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            keys = stored_keys(&url).await;
        }
        assert_eq!(keys, ["live-claim", "live-done"], "{engine:?}");
        let (status, _) = ami.terminate().await;
        assert!(status.success(), "{engine:?}");
        if engine == Engine::Postgres {
            common::drop_pg_database(&url).await;
        }
    }
}
