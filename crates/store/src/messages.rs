//! SMS records, outbound and inbound.

use crate::page::{self, Page, PageRequest};
use crate::{Conn, Result, rows};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    pub id: String,
    pub account_id: String,
    pub mid_id: String,
    pub direction: String,
    pub from_number: String,
    pub to_number: String,
    pub body: String,
    pub segments: i64,
    pub encoding: String,
    pub cost: i64,
    pub status: String,
    pub created_at: i64,
    pub handed_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub telco_ref: Option<String>,
    pub retry_count: i64,
    pub error: Option<String>,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, account_id, mid_id, direction, from_number, to_number, body, segments, encoding, cost, status, created_at, handed_at, sent_at, delivered_at, telco_ref, retry_count, error, updated_at";

pub async fn insert(conn: &mut Conn, m: &Message) -> Result<()> {
    insert_many(conn, std::slice::from_ref(m)).await
}

/// Many messages in as few statements as the batch needs.
pub async fn insert_many(conn: &mut Conn, all: &[Message]) -> Result<()> {
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}) VALUES {}",
            rows::values(chunk.len(), 19, 1)
        );
        let mut q = sqlx::query(&sql);
        for m in chunk {
            q = q
                .bind(&m.id)
                .bind(&m.account_id)
                .bind(&m.mid_id)
                .bind(&m.direction)
                .bind(&m.from_number)
                .bind(&m.to_number)
                .bind(&m.body)
                .bind(m.segments)
                .bind(&m.encoding)
                .bind(m.cost)
                .bind(&m.status)
                .bind(m.created_at)
                .bind(m.handed_at)
                .bind(m.sent_at)
                .bind(m.delivered_at)
                .bind(&m.telco_ref)
                .bind(m.retry_count)
                .bind(&m.error)
                .bind(m.updated_at);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// One message of one MID of one account.
pub async fn get(
    conn: &mut Conn,
    account_id: &str,
    mid_id: &str,
    id: &str,
) -> Result<Option<Message>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE account_id = $1 AND mid_id = $2 AND id = $3"
    ))
    .bind(account_id)
    .bind(mid_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Carrier-side lookups (workers, delivery reports): the carrier names messages, not tenants.
pub async fn by_id(conn: &mut Conn, id: &str) -> Result<Option<Message>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM messages WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// An inbound message of this MID already recorded under the carrier's reference: a carrier
/// that repeats a callback gets the first record back instead of a second message.
pub async fn inbound_by_telco_ref(
    conn: &mut Conn,
    mid_id: &str,
    telco_ref: &str,
) -> Result<Option<Message>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE telco_ref = $1 AND mid_id = $2 AND direction = 'inbound'
         ORDER BY id LIMIT 1"
    ))
    .bind(telco_ref)
    .bind(mid_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(
    conn: &mut Conn,
    account_id: &str,
    mid_id: &str,
    direction: Option<&str>,
    req: &PageRequest,
) -> Result<Page<Message>> {
    let rows: Vec<Message> = match direction {
        Some(d) => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM messages WHERE mid_id = $1 AND account_id = $2 AND direction = $3 AND id < $4
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(mid_id)
        .bind(account_id)
        .bind(d)
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?,
        None => sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM messages WHERE mid_id = $1 AND account_id = $2 AND id < $3
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(mid_id)
        .bind(account_id)
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?,
    };
    Ok(page::finish(rows, req.limit, |m| &m.id))
}

/// Moves the status `from` → `to` with its timestamps; false when it was no longer `from`.
pub async fn transition(
    conn: &mut Conn,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
    error: Option<&str>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE messages SET status = $3, updated_at = $4, error = COALESCE($5, error),
                sent_at = CASE WHEN $3 = 'sent' OR ($3 = 'delivered' AND sent_at IS NULL) THEN $4 ELSE sent_at END,
                delivered_at = CASE WHEN $3 = 'delivered' THEN $4 ELSE delivered_at END
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A status change shared by many messages of one batch of delivery reports.
pub struct StatusChange<'a> {
    pub expected: &'a str,
    pub status: &'a str,
    pub error: Option<&'a str>,
    /// Stamp `sent_at` (where it is still empty) and `delivered_at` with `now`.
    pub stamp_sent: bool,
    pub stamp_delivered: bool,
    pub now: i64,
}

/// Applies one status change to the messages that still have `expected`; returns how many.
pub async fn change_status(conn: &mut Conn, ids: &[&str], c: &StatusChange<'_>) -> Result<u64> {
    let mut changed = 0;
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "UPDATE messages SET status = $2, updated_at = $3, error = COALESCE($4, error),
                    sent_at = CASE WHEN $5 = 1 THEN COALESCE(sent_at, $3) ELSE sent_at END,
                    delivered_at = CASE WHEN $6 = 1 THEN $3 ELSE delivered_at END
             WHERE status = $1 AND id IN ({})",
            rows::list(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql)
            .bind(c.expected)
            .bind(c.status)
            .bind(c.now)
            .bind(c.error)
            .bind(i64::from(c.stamp_sent))
            .bind(i64::from(c.stamp_delivered));
        for id in chunk {
            q = q.bind(*id);
        }
        changed += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// Records the hand-off to the carrier and its reference.
pub async fn handed_off(conn: &mut Conn, id: &str, telco_ref: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET handed_at = $2, telco_ref = $3, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(telco_ref)
    .execute(conn)
    .await?;
    Ok(())
}

/// [`handed_off`] for many messages at once: `(id, telco_ref)` pairs.
pub async fn handed_off_many(conn: &mut Conn, handed: &[(String, String)], now: i64) -> Result<()> {
    for chunk in handed.chunks(rows::CHUNK) {
        let cases: String = (0..chunk.len())
            .map(|i| format!(" WHEN ${} THEN ${}", 2 + 2 * i, 3 + 2 * i))
            .collect();
        let ids: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", 2 + 2 * i))
            .collect();
        let sql = format!(
            "UPDATE messages SET handed_at = $1, updated_at = $1, telco_ref = CASE id{cases} END
             WHERE id IN ({})",
            ids.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now);
        for (id, telco_ref) in chunk {
            q = q.bind(id).bind(telco_ref);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Carrier-side lookup of many messages; missing ids are simply absent.
pub async fn by_ids(conn: &mut Conn, ids: &[String]) -> Result<Vec<Message>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE id IN ({})",
            rows::list(chunk.len(), 1)
        );
        let mut q = sqlx::query_as(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        found.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

pub async fn count_retry(conn: &mut Conn, id: &str, now: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE messages SET retry_count = retry_count + 1, error = $3, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// Queued outbound messages of the given MIDs not yet handed to the carrier (kill-switch).
pub async fn cancellable(
    conn: &mut Conn,
    mid_id: Option<&str>,
    account_id: Option<&str>,
) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE status = 'queued' AND handed_at IS NULL AND direction = 'outbound'
           AND ($1 IS NULL OR mid_id = $1) AND ($2 IS NULL OR account_id = $2)"
    ))
    .bind(mid_id)
    .bind(account_id)
    .fetch_all(conn)
    .await?)
}
