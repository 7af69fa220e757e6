//! Stored responses of mutating requests, keyed by (caller scope, Idempotency-Key).
//!
//! A key is claimed before its request runs and completed with the response after. A claim
//! holds its key only for a short lease (the longest a live request can run): a claim whose
//! request never completed (the process died) is taken over by the next identical request
//! once the lease has passed. Only the holder of a claim, named by its token, completes or
//! releases it, so a request that outlived its lease cannot overwrite its successor's answer.

use crate::{Conn, Result};

pub enum Claim {
    /// The caller holds the key: it runs the request, then calls `complete` or `release`
    /// with its token.
    Fresh,
    /// Same key, same request, finished: replay this.
    Replay { status: u16, body: String },
    /// Same key, different request.
    Mismatch,
    /// Same key, same request, still running elsewhere (its lease has not passed).
    InFlight,
}

/// The times a claim is judged by, in the caller's clock (milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub now: i64,
    /// How long a key is remembered after its first use.
    pub ttl_ms: i64,
    /// How long a claim holds its key without completing.
    pub lease_ms: i64,
}

/// A row the window has forgotten: older than the TTL and not a live claim.
const EXPIRED: &str =
    "created_at < $1 AND (status_code IS NOT NULL OR COALESCE(lease_until, 0) <= $2)";

pub async fn claim(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    request_hash: &str,
    token: &str,
    window: Window,
) -> Result<Claim> {
    let Window {
        now,
        ttl_ms,
        lease_ms,
    } = window;
    // A key older than the window is forgotten before the claim.
    sqlx::query(&format!(
        "DELETE FROM idempotency_keys WHERE {EXPIRED} AND scope = $3 AND key = $4"
    ))
    .bind(now - ttl_ms)
    .bind(now)
    .bind(scope)
    .bind(key)
    .execute(&mut *conn)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, lease_until, claim_token)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .bind(now + lease_ms)
    .bind(token)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    // The same request whose claim was never completed and whose lease has passed: its
    // process is gone, so this request takes the key over. One statement, so of two such
    // requests only one matches.
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET lease_until = $4, claim_token = $5
         WHERE scope = $1 AND key = $2 AND request_hash = $3 AND status_code IS NULL
           AND COALESCE(lease_until, 0) <= $6",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now + lease_ms)
    .bind(token)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 1 {
        return Ok(Claim::Fresh);
    }
    let (hash, status, body): (String, Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT request_hash, status_code, response_body FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(match (hash == request_hash, status, body) {
        (false, _, _) => Claim::Mismatch,
        (true, Some(status), Some(body)) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        (true, _, _) => Claim::InFlight,
    })
}

/// Stores the response of a claim still held by `token`; false when the claim is no longer
/// this caller's (taken over after its lease).
pub async fn complete(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    token: &str,
    status: u16,
    body: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET status_code = $4, response_body = $5, lease_until = NULL
         WHERE scope = $1 AND key = $2 AND claim_token = $3 AND status_code IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(token)
    .bind(i64::from(status))
    .bind(body)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Forgets a claim whose request failed, so a retry can run it again.
pub async fn release(conn: &mut Conn, scope: &str, key: &str, token: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE scope = $1 AND key = $2 AND claim_token = $3 AND status_code IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(token)
    .execute(conn)
    .await?;
    Ok(())
}

/// What one batch of [`sweep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub deleted: u64,
    /// Older keys than this batch reached may still be waiting for the next one.
    pub more: bool,
}

/// Deletes a batch of about `limit` rows the window has forgotten, oldest first; live claims
/// stay, whatever their age. Both statements are range scans of the index on `created_at`
/// (a `(scope, key) IN (subquery)` delete scans the whole table on PostgreSQL).
pub async fn sweep(conn: &mut Conn, now: i64, ttl_ms: i64, limit: i64) -> Result<Swept> {
    let cutoff = now - ttl_ms;
    // The age of the `limit`-th oldest forgotten key bounds this batch.
    let bound: Option<i64> = sqlx::query_scalar(
        "SELECT created_at FROM idempotency_keys WHERE created_at < $1
         ORDER BY created_at LIMIT 1 OFFSET $2",
    )
    .bind(cutoff)
    .bind(limit.max(1) - 1)
    .fetch_optional(&mut *conn)
    .await?;
    let upto = bound.map_or(cutoff, |age| cutoff.min(age.saturating_add(1)));
    let deleted = sqlx::query(&format!("DELETE FROM idempotency_keys WHERE {EXPIRED}"))
        .bind(upto)
        .bind(now)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(Swept {
        deleted,
        more: upto < cutoff,
    })
}
