//! `Idempotency-Key` on mutating POSTs (PROTOCOL §0): the same key and body within the window
//! replays the stored response; the same key with another body is `409 idempotency_key_reused`.
//!
//! Keys belong to the credential that sent them. A stored response may hold a secret shown
//! once (an API key, an agent token, a signing link), and the store never keeps a secret in
//! plaintext, so responses are sealed with ChaCha20-Poly1305 under a key derived from the
//! credential, which the store only knows hashed. The layer runs after authentication
//! (`auth::authenticate`), so nothing is read or written for a request whose credential fails,
//! and a replay is served only while that credential still authenticates: a rotated or
//! suspended credential gets its 401/403.
//!
//! A claim holds its key for the request timeout plus a margin, not for the whole window: a
//! request that never finished (its process died) no longer blocks its key for a day.
//! Expired keys are swept by `idempotency_sweep`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use ami_core::secret;
use ami_store::Store;
use ami_store::idempotency::{self, Claim, Window};

use crate::http::auth::Credential;
use crate::http::error::ApiError;
use crate::http::json;

const HEADER: &str = "idempotency-key";
/// The largest response kept for replay. Ours are far smaller; a larger one is delivered
/// whole to its request, and its key then answers `409 idempotency_response_too_large`
/// instead of running the request again or replaying part of it.
pub const MAX_STORED_RESPONSE: usize = 1 << 20;
/// Kept instead of a response larger than [`MAX_STORED_RESPONSE`].
const TOO_LARGE: &str = "too-large";
const SEALED: &str = "sealed-v2:";
/// How long a claim outlives the request timeout: time for what a timed-out request left
/// queued (a send group's commit) and for the write of its answer.
pub const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(5);

/// The layer's settings and what it writes to, behind one `Arc`: the layer's state is
/// cloned for every request.
#[derive(Clone)]
pub struct Idempotency(Arc<Settings>);

pub struct Settings {
    store: Store,
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
    ttl_ms: i64,
    in_flight_ms: i64,
    body_limit: usize,
}

impl Idempotency {
    /// Keys are remembered for `ttl_ms`; a claim holds its key for the request timeout plus
    /// [`IN_FLIGHT_MARGIN`]. The request timeout layer ends every request by then, so two
    /// live requests never hold one key.
    pub fn new(
        store: Store,
        now: impl Fn() -> i64 + Send + Sync + 'static,
        ttl_ms: i64,
        request_timeout: Duration,
        body_limit: usize,
    ) -> Self {
        let in_flight = request_timeout.saturating_add(IN_FLIGHT_MARGIN);
        Idempotency(Arc::new(Settings {
            store,
            now: Arc::new(now),
            ttl_ms,
            in_flight_ms: i64::try_from(in_flight.as_millis()).unwrap_or(i64::MAX / 2),
            body_limit,
        }))
    }
}

impl std::ops::Deref for Idempotency {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.0
    }
}

impl Settings {
    fn window(&self) -> Window {
        Window {
            now: (self.now)(),
            ttl_ms: self.ttl_ms,
            lease_ms: self.in_flight_ms,
        }
    }
}

/// Route layer, inside `auth::authenticate`: a POST with an `Idempotency-Key` from an
/// authenticated credential is claimed, then replayed or run and stored. A request without a
/// credential (a public route) has no key space, so it simply runs.
pub async fn idempotency(State(layer): State<Idempotency>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    match handle(layer, req, next).await {
        Ok(res) | Err(res) => res,
    }
}

/// What keys and seals are derived from: the credential and the level it authenticated at.
fn key_material(credential: &Credential) -> String {
    format!("{}\0{}", credential.level.name(), credential.secret())
}

async fn handle(layer: Idempotency, req: Request, next: Next) -> Result<Response, Response> {
    let key = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        })?;
    let Some(material) = req.extensions().get::<Credential>().map(key_material) else {
        return Ok(next.run(req).await);
    };
    let scope = secret::hash(&material);
    let (parts, body) = req.into_parts();
    if json::content_length(&parts.headers).is_some_and(|n| n > layer.body_limit as u64) {
        return Err(json::too_large(layer.body_limit).into_response());
    }
    let bytes = json::read_body(body, layer.body_limit)
        .await
        .map_err(IntoResponse::into_response)?;
    let fingerprint = {
        let mut h = Sha256::new();
        let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
        h.update(format!("{} {target}\n", parts.method));
        h.update(&bytes);
        hex::encode(h.finalize())
    };
    let token = {
        let mut t = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut t);
        hex::encode(t)
    };
    let internal = |e: ami_store::StoreError| ApiError(e.into()).into_response();
    let claim = {
        let mut tx = layer.store.begin().await.map_err(internal)?;
        let claim = idempotency::claim(&mut tx, &scope, &key, &fingerprint, &token, layer.window())
            .await
            .map_err(internal)?;
        ami_store::commit(tx).await.map_err(internal)?;
        claim
    };
    match claim {
        Claim::Fresh => {}
        Claim::Replay { body, .. } if body == TOO_LARGE => {
            return Err(ApiError::new(
                409,
                "idempotency_response_too_large",
                "the response to this Idempotency-Key was too large to keep; it was delivered to the first request",
            )
            .into_response());
        }
        Claim::Replay { status, body } => {
            let body = open(&material, &key, &body).ok_or_else(|| {
                internal(ami_store::StoreError::Corrupt(
                    "a stored idempotent response does not open".into(),
                ))
            })?;
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(res);
        }
        Claim::Mismatch => {
            return Err(ApiError::new(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            .into_response());
        }
        Claim::InFlight => {
            return Err(ApiError::new(
                409,
                "idempotency_key_in_flight",
                "a request with this Idempotency-Key is still running",
            )
            .into_response());
        }
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let claimed = Claimed {
        store: layer.store.clone(),
        scope,
        key,
        token,
    };
    let (parts, body) = res.into_parts();
    // Server errors are not final: forget the key so a retry runs again.
    if parts.status.is_server_error() {
        claimed.settle(None).await;
        return Ok(Response::from_parts(parts, body));
    }
    let fits = body
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_STORED_RESPONSE as u64);
    if !fits {
        claimed
            .settle(Some((parts.status.as_u16(), TOO_LARGE.to_owned())))
            .await;
        return Ok(Response::from_parts(parts, body));
    }
    match to_bytes(body, MAX_STORED_RESPONSE).await {
        Ok(bytes) => {
            let sealed = seal(&material, &claimed.key, &bytes);
            claimed.settle(Some((parts.status.as_u16(), sealed))).await;
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
        Err(e) => {
            tracing::error!(error = %e, "a response body failed while being stored");
            claimed.settle(None).await;
            Err(ApiError::new(500, "internal_error", "internal error").into_response())
        }
    }
}

/// A claim this request holds.
struct Claimed {
    store: Store,
    scope: String,
    key: String,
    token: String,
}

impl Claimed {
    /// Completes the claim with `(status, stored body)`, or releases it (None). The write runs
    /// in a task of its own, so a request timeout striking now cannot lose an answer that
    /// was already produced; a failure leaves the claim to expire with its lease.
    async fn settle(self, outcome: Option<(u16, String)>) {
        let write = tokio::spawn(async move {
            let mut tx = self.store.begin().await?;
            match outcome {
                Some((status, body)) => {
                    idempotency::complete(
                        &mut tx,
                        &self.scope,
                        &self.key,
                        &self.token,
                        status,
                        &body,
                    )
                    .await?;
                }
                None => {
                    idempotency::release(&mut tx, &self.scope, &self.key, &self.token).await?;
                }
            }
            ami_store::commit(tx).await
        });
        match write.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "an idempotency key could not be settled"),
            Err(e) => tracing::error!(error = %e, "an idempotency key could not be settled"),
        }
    }
}

fn cipher(credential: &str, key: &str) -> ChaCha20Poly1305 {
    // The credential is a high-entropy secret, so one domain-separated hash is a sound KDF.
    let mut h = Sha256::new();
    h.update(b"ami idempotency seal v2\0");
    h.update(credential.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    ChaCha20Poly1305::new(Key::from_slice(&h.finalize()))
}

fn seal(credential: &str, key: &str, plaintext: &[u8]) -> String {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    // Encryption with a fresh nonce cannot fail for inputs of this size.
    let ciphertext = cipher(credential, key)
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .unwrap_or_default();
    format!("{SEALED}{}:{}", hex::encode(nonce), hex::encode(ciphertext))
}

/// The plaintext, or None when sealed under another credential or key, or altered.
fn open(credential: &str, key: &str, stored: &str) -> Option<String> {
    let (nonce, ciphertext) = stored.strip_prefix(SEALED)?.split_once(':')?;
    let nonce = hex::decode(nonce).ok().filter(|n| n.len() == 12)?;
    let plain = cipher(credential, key)
        .decrypt(
            Nonce::from_slice(&nonce),
            hex::decode(ciphertext).ok()?.as_ref(),
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use axum::Router;
    use axum::middleware::from_fn_with_state;
    use axum::routing::post;
    use tower::ServiceExt;

    use crate::http::auth::Level;

    /// The layer over a synthetic route, on a store of its own, with a hand-moved clock;
    /// `/sized/{n}` answers a JSON string of `n` bytes and counts its runs, `/fail` answers 500.
    struct Harness {
        app: Router,
        clock: Arc<AtomicI64>,
        runs: Arc<AtomicUsize>,
        store: Store,
        _dir: tempfile::TempDir,
    }

    const TIMEOUT: Duration = Duration::from_secs(30);

    async fn harness() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/ami.db", dir.path().display());
        let store = Store::open(&url, &ami_store::OpenOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
        let runs = Arc::new(AtomicUsize::new(0));
        let now = {
            let clock = clock.clone();
            move || clock.load(Ordering::SeqCst)
        };
        let layer = Idempotency::new(store.clone(), now, 86_400_000, TIMEOUT, 1 << 20);
        let counted = runs.clone();
        let app = Router::new()
            .route(
                "/sized/{n}",
                post(move |axum::extract::Path(n): axum::extract::Path<usize>| {
                    let run = counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        // A JSON string of n bytes, different on every run.
                        let fill = char::from(b'a' + (run % 26) as u8);
                        let text = format!("\"{}\"", fill.to_string().repeat(n - 2));
                        ([(header::CONTENT_TYPE, "application/json")], text)
                    }
                }),
            )
            .route(
                "/fail",
                post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .route_layer(from_fn_with_state(layer, idempotency))
            .layer(axum::middleware::from_fn(
                |mut req: Request, next: Next| async move {
                    req.extensions_mut()
                        .insert(Credential::new(Level::Customer, "amik_live_test"));
                    next.run(req).await
                },
            ));
        Harness {
            app,
            clock,
            runs,
            store,
            _dir: dir,
        }
    }

    async fn call(h: &Harness, path: &str, key: &str) -> (StatusCode, Vec<u8>) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header(HEADER, key)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let res = h.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        (
            status,
            to_bytes(res.into_body(), 8 << 20).await.unwrap().to_vec(),
        )
    }

    fn code(body: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["error"].as_str().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_large_response_replays_whole_and_a_too_large_one_is_refused_not_cut() {
        let h = harness().await;
        // Over the 256 KiB the layer used to keep, under its limit: replayed byte for byte.
        let first = call(&h, "/sized/300000", "big").await;
        assert_eq!((first.0, first.1.len()), (StatusCode::OK, 300_000));
        let again = call(&h, "/sized/300000", "big").await;
        assert_eq!(again, first, "the replay is not the first answer");
        assert_eq!(h.runs.load(Ordering::SeqCst), 1);

        // Over the limit: the first request still gets all of it; a retry runs nothing and
        // is told why there is nothing to replay.
        let n = MAX_STORED_RESPONSE + 1;
        let first = call(&h, &format!("/sized/{n}"), "huge").await;
        assert_eq!((first.0, first.1.len()), (StatusCode::OK, n));
        let again = call(&h, &format!("/sized/{n}"), "huge").await;
        assert_eq!(
            (again.0, code(&again.1)),
            (
                StatusCode::CONFLICT,
                "idempotency_response_too_large".into()
            )
        );
        assert_eq!(h.runs.load(Ordering::SeqCst), 2);
        h.store.close().await;
    }

    #[tokio::test]
    async fn a_server_error_releases_its_key() {
        let h = harness().await;
        for _ in 0..2 {
            let (status, _) = call(&h, "/fail", "retry-me").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        let mut conn = h.store.reader().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(rows, 0);
        drop(conn);
        h.store.close().await;
    }

    #[tokio::test]
    async fn a_claim_expires_after_the_request_timeout_and_its_margin() {
        let h = harness().await;
        // A claim left by a request that never finished, as a dead process leaves it.
        let (status, _) = call(&h, "/sized/10", "stuck").await;
        assert_eq!(status, StatusCode::OK);
        let now = h.clock.load(Ordering::SeqCst);
        let lease = i64::try_from((TIMEOUT + IN_FLIGHT_MARGIN).as_millis()).unwrap();
        let mut tx = h.store.begin().await.unwrap();
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = NULL, response_body = NULL,
                 lease_until = $1, claim_token = 'dead'",
        )
        .bind(now + lease)
        .execute(&mut *tx)
        .await
        .unwrap();
        ami_store::commit(tx).await.unwrap();

        h.clock.fetch_add(lease - 1, Ordering::SeqCst);
        let (status, body) = call(&h, "/sized/10", "stuck").await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "idempotency_key_in_flight".into())
        );
        h.clock.fetch_add(1, Ordering::SeqCst);
        let taken = call(&h, "/sized/10", "stuck").await;
        assert_eq!(taken.0, StatusCode::OK);
        assert_eq!(h.runs.load(Ordering::SeqCst), 2, "the request ran again");
        assert_eq!(call(&h, "/sized/10", "stuck").await, taken);
        h.store.close().await;
    }

    #[test]
    fn sealed_responses_open_only_with_the_same_credential_and_key() {
        let body = r#"{"api_key":"amik_live_0123456789abcdef","note":"ünïcode"}"#;
        let sealed = seal("Bearer a", "k1", body.as_bytes());
        assert!(!sealed.contains("amik_live_") && sealed.starts_with(SEALED));
        assert_ne!(
            sealed,
            seal("Bearer a", "k1", body.as_bytes()),
            "a fresh nonce each time"
        );
        assert_eq!(open("Bearer a", "k1", &sealed).as_deref(), Some(body));
        assert_eq!(open("Bearer b", "k1", &sealed), None);
        assert_eq!(open("Bearer a", "k2", &sealed), None);
        let last = if sealed.ends_with('0') { "1" } else { "0" };
        let altered = format!("{}{last}", &sealed[..sealed.len() - 1]);
        assert_eq!(open("Bearer a", "k1", &altered), None);
        assert_eq!(open("x", "y", "{\"plain\":1}"), None);
        assert_eq!(
            open("Bearer a", "k1", &seal("Bearer a", "k1", b"")).as_deref(),
            Some("")
        );
    }
}
