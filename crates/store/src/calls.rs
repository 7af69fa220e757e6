//! Call records, outbound (placed by agents) and inbound (forwarded to them).
//!
//! Status changes are read-modify-write under a row lock ([`lock`], [`lock_scoped`]): the
//! state machine lives in `ami_core::delivery::CallStatus`, the caller decides, [`save`]
//! writes the whole mutable state back in the same transaction.

use crate::AccountId;
use crate::page::{self, Page, PageRequest};
use crate::{Conn, Engine, Result};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Call {
    pub id: String,
    pub account_id: String,
    pub mid_id: String,
    pub direction: String,
    pub from_number: String,
    pub to_number: String,
    pub callback_sip_uri: Option<String>,
    pub status: String,
    pub created_at: i64,
    /// When the current attempt was handed to the carrier; None while it waits for that.
    pub handed_at: Option<i64>,
    /// Ringing.
    pub started_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_sec: Option<i64>,
    pub hangup_cause: Option<String>,
    pub telco_ref: Option<String>,
    pub retry_count: i64,
    /// Micro-euros charged on completion.
    pub cost: i64,
    pub updated_at: i64,
}

pub(crate) const COLUMNS: &str = "id, account_id, mid_id, direction, from_number, to_number, callback_sip_uri, status, created_at, handed_at, started_at, answered_at, ended_at, duration_sec, hangup_cause, telco_ref, retry_count, cost, updated_at";

/// The statuses of a call that has not ended (the `calls_live` index lists the same ones).
pub(crate) const LIVE: &str = "status IN ('initiated', 'ringing', 'in_progress')";

pub async fn insert(conn: &mut Conn, c: &Call) -> Result<()> {
    sqlx::query(
        "INSERT INTO calls (id, account_id, mid_id, direction, from_number, to_number, callback_sip_uri, status,
                            created_at, handed_at, started_at, answered_at, ended_at, duration_sec, hangup_cause,
                            telco_ref, retry_count, cost, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(&c.id)
    .bind(&c.account_id)
    .bind(&c.mid_id)
    .bind(&c.direction)
    .bind(&c.from_number)
    .bind(&c.to_number)
    .bind(&c.callback_sip_uri)
    .bind(&c.status)
    .bind(c.created_at)
    .bind(c.handed_at)
    .bind(c.started_at)
    .bind(c.answered_at)
    .bind(c.ended_at)
    .bind(c.duration_sec)
    .bind(&c.hangup_cause)
    .bind(&c.telco_ref)
    .bind(c.retry_count)
    .bind(c.cost)
    .bind(c.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One call of one MID of one account.
pub async fn get(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    id: &str,
) -> Result<Option<Call>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls WHERE account_id = $1 AND mid_id = $2 AND id = $3"
    ))
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// [`get`], locked until the transaction ends.
pub async fn lock_scoped(
    conn: &mut Conn,
    engine: Engine,
    account_id: &AccountId,
    mid_id: &str,
    id: &str,
) -> Result<Option<Call>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls WHERE account_id = $1 AND mid_id = $2 AND id = $3{}",
        engine.for_update()
    ))
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Newest first, optionally one direction only.
pub async fn list(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    direction: Option<&str>,
    req: &PageRequest,
) -> Result<Page<Call>> {
    let rows: Vec<Call> = match direction {
        Some(d) => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM calls WHERE mid_id = $1 AND account_id = $2 AND direction = $3 AND id < $4
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(mid_id)
        .bind(account_id.as_str())
        .bind(d)
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?,
        None => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM calls WHERE mid_id = $1 AND account_id = $2 AND id < $3
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(mid_id)
        .bind(account_id.as_str())
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?,
    };
    Ok(page::finish(rows, req.limit, |c| &c.id))
}
