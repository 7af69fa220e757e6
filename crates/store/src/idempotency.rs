//! Stored responses of mutating requests, keyed by (caller scope, Idempotency-Key).

use crate::{Conn, Result};

pub enum Claim {
    /// First use of the key: the caller runs the request and then calls `complete`.
    Fresh,
    /// Same key, same request, finished: replay this.
    Replay { status: u16, body: String },
    /// Same key, different request.
    Mismatch,
    /// Same key, same request, still running elsewhere.
    InFlight,
}

pub async fn claim(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<Claim> {
    // Keys older than the window are forgotten before the claim.
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < $3")
        .bind(scope)
        .bind(key)
        .bind(now - ttl_ms)
        .execute(&mut *conn)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
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
            status: status as u16,
            body,
        },
        (true, _, _) => Claim::InFlight,
    })
}

pub async fn complete(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status_code = $3, response_body = $4 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets a claim whose request failed, so a retry can run it again.
pub async fn release(conn: &mut Conn, scope: &str, key: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status_code IS NULL",
    )
    .bind(scope)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}
