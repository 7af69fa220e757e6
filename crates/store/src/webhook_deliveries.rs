//! The durable outbox of webhook events: one delivery per event and webhook, written in the
//! transaction of the change that caused the event, claimed by workers with a lease, and
//! every attempt recorded.
//!
//! A delivery is due while `due_at` is set: NULL means finished (delivered or failed) or
//! parked while its webhook is disabled. A claim sets a lease and a token; only the holder
//! of the token can record the attempt, so two workers never record the same delivery, and
//! an expired lease (a crashed worker) makes the delivery claimable again.

use crate::AccountId;
use crate::page::{self, Page, PageRequest};
use crate::{Arg, Conn, Db, Engine, Result, rows};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub id: String,
    pub account_id: &'a str,
    pub webhook_id: &'a str,
    pub event_id: &'a str,
    pub event: &'a str,
    pub mid_id: Option<&'a str>,
    pub sequence: i64,
    pub payload: &'a str,
    pub redelivery_of: Option<&'a str>,
    /// Written at, and due at.
    pub now: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub account_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub mid_id: Option<String>,
    pub sequence: i64,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub due_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub redelivery_of: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "id, account_id, webhook_id, event_id, event, mid_id, sequence, payload, status, attempts, due_at, last_attempt_at, last_status_code, last_error, redelivery_of, created_at, updated_at, delivered_at";

/// A claimed delivery with what an attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub account_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub mid_id: Option<String>,
    pub payload: String,
    /// Attempts recorded before this one.
    pub attempts: i64,
    pub url: String,
    /// As stored: sealed (`crate::sealed`); the worker opens it to sign.
    pub secret: String,
    pub lease_token: String,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: String,
    account_id: String,
    webhook_id: String,
    event_id: String,
    event: String,
    mid_id: Option<String>,
    payload: String,
    attempts: i64,
}

/// How an attempt leaves its delivery.
#[derive(Debug, Clone)]
pub struct Settled<'a> {
    pub id: &'a str,
    pub lease_token: &'a str,
    /// Attempts recorded, this one included.
    pub attempts: i64,
    pub status: &'a str,
    /// The next attempt, None when finished or parked.
    pub due_at: Option<i64>,
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub delivered_at: Option<i64>,
}

/// One attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    pub delivery_id: &'a str,
    pub number: i64,
    pub account_id: &'a str,
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error_kind: Option<&'a str>,
    pub error: Option<&'a str>,
    pub response_excerpt: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub delivery_id: String,
    pub number: i64,
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub response_excerpt: String,
}

/// Takes `n` consecutive sequence numbers of a resource; returns the first.
pub async fn reserve_sequences(db: impl Into<Db<'_>>, resource_id: &str, n: i64) -> Result<i64> {
    let last: i64 = db
        .into()
        .fetch_one(
            "INSERT INTO webhook_sequences (resource_id, last_sequence) VALUES ($1, $2)
             ON CONFLICT (resource_id) DO UPDATE SET last_sequence = webhook_sequences.last_sequence + $2
             RETURNING last_sequence",
            &[Arg::from(resource_id), Arg::from(n)],
        )
        .await?
        .get(0)?;
    Ok(last - n + 1)
}

/// Writes deliveries, due at once, in as few statements as the batch needs.
pub async fn insert_many(db: impl Into<Db<'_>>, all: &[NewDelivery<'_>]) -> Result<()> {
    let mut db = db.into();
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, account_id, webhook_id, event_id, event, mid_id, sequence,
                                             payload, status, due_at, redelivery_of, created_at, updated_at)
             VALUES {}",
            rows::values(chunk.len(), 13, 1)
        );
        let mut args = Vec::with_capacity(chunk.len() * 13);
        for d in chunk {
            args.extend([
                Arg::from(&d.id),
                Arg::from(d.account_id),
                Arg::from(d.webhook_id),
                Arg::from(d.event_id),
                Arg::from(d.event),
                Arg::from(d.mid_id),
                Arg::from(d.sequence),
                Arg::from(d.payload),
                Arg::from(PENDING),
                Arg::from(d.now),
                Arg::from(d.redelivery_of),
                Arg::from(d.now),
                Arg::from(d.now),
            ]);
        }
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Claims up to `batch` due deliveries of active webhooks for `lease_ms`, under a token
/// of this claim. On PostgreSQL, rows another worker is claiming are skipped, not waited for.
pub async fn claim(
    conn: &mut Conn,
    engine: Engine,
    now: i64,
    lease_ms: i64,
    batch: i64,
    holder: &str,
) -> Result<Vec<Claimed>> {
    let token = ami_core::id::new_id_at("tok", now);
    let rows: Vec<ClaimedRow> = sqlx::query_as(&format!(
        "UPDATE webhook_deliveries SET lease_until = $1, lease_token = $2, lease_holder = $5
         WHERE id IN (SELECT d.id FROM webhook_deliveries d
                      WHERE d.due_at IS NOT NULL AND d.due_at <= $3
                        AND (d.lease_until IS NULL OR d.lease_until <= $3)
                        AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.status = 'active')
                      ORDER BY d.due_at LIMIT $4{})
         RETURNING id, account_id, webhook_id, event_id, event, mid_id, payload, attempts",
        engine.skip_locked()
    ))
    .bind(now + lease_ms)
    .bind(&token)
    .bind(now)
    .bind(batch)
    .bind(holder)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut webhook_ids: Vec<&str> = rows.iter().map(|r| r.webhook_id.as_str()).collect();
    webhook_ids.sort_unstable();
    webhook_ids.dedup();
    let mut targets: std::collections::HashMap<String, (String, String)> = Default::default();
    for chunk in webhook_ids.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT id, url, secret FROM webhooks WHERE id IN ({})",
            rows::list(chunk.len(), 1)
        );
        let mut q = sqlx::query_as::<_, (String, String, String)>(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for (id, url, secret) in q.fetch_all(&mut *conn).await? {
            targets.insert(id, (url, secret));
        }
    }
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (url, secret) = targets.get(&r.webhook_id)?.clone();
            Some(Claimed {
                id: r.id,
                account_id: r.account_id,
                webhook_id: r.webhook_id,
                event_id: r.event_id,
                event: r.event,
                mid_id: r.mid_id,
                payload: r.payload,
                attempts: r.attempts,
                url,
                secret,
                lease_token: token.clone(),
            })
        })
        .collect())
}

/// Records the end of an attempt and releases the lease. False when the claim is no
/// longer ours (the lease expired and another worker took the delivery, or the webhook
/// was deleted): the attempt must then not be recorded.
pub async fn settle(conn: &mut Conn, s: &Settled<'_>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE webhook_deliveries
         SET status = $3, attempts = $4, due_at = $5, lease_until = NULL, lease_token = NULL,
             last_attempt_at = $6, last_status_code = $7, last_error = $8,
             delivered_at = COALESCE($9, delivered_at), updated_at = $6
         WHERE id = $1 AND lease_token = $2 AND status = 'pending'",
    )
    .bind(s.id)
    .bind(s.lease_token)
    .bind(s.status)
    .bind(s.attempts)
    .bind(s.due_at)
    .bind(s.attempted_at)
    .bind(s.status_code)
    .bind(s.error)
    .bind(s.delivered_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn insert_attempts(conn: &mut Conn, all: &[NewAttempt<'_>]) -> Result<()> {
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO webhook_attempts (delivery_id, number, account_id, attempted_at, status_code,
                                           latency_ms, error_kind, error, response_excerpt)
             VALUES {}",
            rows::values(chunk.len(), 9, 1)
        );
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q
                .bind(a.delivery_id)
                .bind(a.number)
                .bind(a.account_id)
                .bind(a.attempted_at)
                .bind(a.status_code)
                .bind(a.latency_ms)
                .bind(a.error_kind)
                .bind(a.error)
                .bind(a.response_excerpt);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stops the pending deliveries of a disabled webhook from being attempted.
pub async fn park(conn: &mut Conn, webhook_id: &str, now: i64) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE webhook_deliveries SET due_at = NULL, updated_at = $2
         WHERE webhook_id = $1 AND status = 'pending' AND due_at IS NOT NULL",
    )
    .bind(webhook_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Makes the parked deliveries of a re-enabled webhook due now.
pub async fn unpark(conn: &mut Conn, webhook_id: &str, now: i64) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE webhook_deliveries SET due_at = $2, lease_until = NULL, lease_token = NULL, updated_at = $2
         WHERE webhook_id = $1 AND status = 'pending' AND due_at IS NULL",
    )
    .bind(webhook_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// A webhook's deliveries, newest first, optionally of one status.
pub async fn list(
    conn: &mut Conn,
    account_id: &AccountId,
    webhook_id: &str,
    status: Option<&str>,
    req: &PageRequest,
) -> Result<Page<Delivery>> {
    let filter = if status.is_some() {
        " AND status = $5"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries
         WHERE account_id = $1 AND webhook_id = $2 AND id < $3{filter}
         ORDER BY id DESC LIMIT $4"
    );
    let mut q = sqlx::query_as(&sql)
        .bind(account_id.as_str())
        .bind(webhook_id)
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1);
    if let Some(status) = status {
        q = q.bind(status);
    }
    let rows: Vec<Delivery> = q.fetch_all(conn).await?;
    Ok(page::finish(rows, req.limit, |d| &d.id))
}

/// One delivery of one webhook of one account.
pub async fn get(
    conn: &mut Conn,
    account_id: &AccountId,
    webhook_id: &str,
    id: &str,
) -> Result<Option<Delivery>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE account_id = $1 AND webhook_id = $2 AND id = $3"
    ))
    .bind(account_id.as_str())
    .bind(webhook_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The attempts of a delivery, first to last, at most `limit` (the latest ones).
pub async fn attempts(
    conn: &mut Conn,
    account_id: &AccountId,
    delivery_id: &str,
    limit: i64,
) -> Result<Vec<Attempt>> {
    let mut rows: Vec<Attempt> = sqlx::query_as(
        "SELECT delivery_id, number, attempted_at, status_code, latency_ms, error_kind, error, response_excerpt
         FROM webhook_attempts WHERE account_id = $1 AND delivery_id = $2
         ORDER BY number DESC LIMIT $3",
    )
    .bind(account_id.as_str())
    .bind(delivery_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.reverse();
    Ok(rows)
}

/// Deliveries waiting for an attempt (due now or later; parked ones not counted): the
/// delivery backlog.
pub async fn backlog(conn: &mut Conn) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE due_at IS NOT NULL")
            .fetch_one(conn)
            .await?,
    )
}

/// Voids the leases a dead process held: every one when `holder` is None (the one process
/// of a SQLite database), else those held under that name. The deliveries are attempted
/// again at once (at least once; receivers drop duplicates by `webhook-id`).
pub async fn take_back(db: impl Into<crate::Db<'_>>, holder: Option<&str>) -> Result<u64> {
    let mut db = db.into();
    match holder {
        None => {
            db.execute(
                "UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL WHERE lease_until IS NOT NULL",
                &[],
            )
            .await
        }
        Some(holder) => {
            db.execute(
                "UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL
                 WHERE lease_holder = $1 AND lease_until IS NOT NULL",
                &[crate::Arg::from(holder)],
            )
            .await
        }
    }
}
