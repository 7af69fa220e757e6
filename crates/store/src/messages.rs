//! SMS records, outbound and inbound.

use crate::AccountId;
use crate::db::Row;
use crate::page::{self, Page, PageRequest};
use crate::{Arg, Batch, Conn, Result, rows};

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

pub(crate) const COLUMNS: &str = "id, account_id, mid_id, direction, from_number, to_number, body, segments, encoding, cost, status, created_at, handed_at, sent_at, delivered_at, telco_ref, retry_count, error, updated_at";

pub async fn insert(conn: &mut Conn, m: &Message) -> Result<()> {
    insert_many(conn, std::slice::from_ref(m)).await
}

/// Many messages in as few statements as the batch needs.
pub async fn insert_many(conn: &mut Conn, all: &[Message]) -> Result<()> {
    let mut batch = Batch::default();
    push_insert_many(&mut batch, all.iter());
    batch.run(conn).await
}

/// [`insert_many`] as statements of a batch.
pub fn push_insert_many<'m>(batch: &mut Batch, all: impl Iterator<Item = &'m Message>) {
    let all: Vec<&Message> = all.collect();
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO messages ({COLUMNS}) VALUES {}",
            rows::values(chunk.len(), 19, 1)
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * 19);
        for m in chunk {
            args.extend([
                Arg::from(&m.id),
                Arg::from(&m.account_id),
                Arg::from(&m.mid_id),
                Arg::from(&m.direction),
                Arg::from(&m.from_number),
                Arg::from(&m.to_number),
                Arg::from(&m.body),
                Arg::from(m.segments),
                Arg::from(&m.encoding),
                Arg::from(m.cost),
                Arg::from(&m.status),
                Arg::from(m.created_at),
                Arg::from(m.handed_at),
                Arg::from(m.sent_at),
                Arg::from(m.delivered_at),
                Arg::from(&m.telco_ref),
                Arg::from(m.retry_count),
                Arg::from(&m.error),
                Arg::from(m.updated_at),
            ]);
        }
        batch.push(sql, args);
    }
}

/// One message of one MID of one account.
pub async fn get(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    id: &str,
) -> Result<Option<Message>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages WHERE account_id = $1 AND mid_id = $2 AND id = $3"
    ))
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    direction: Option<&str>,
    req: &PageRequest,
) -> Result<Page<Message>> {
    let sql = match direction {
        Some("inbound") => newest_of("inbound"),
        Some("outbound") => newest_of("outbound"),
        Some(_) => return Ok(page::finish(Vec::new(), req.limit, |m: &Message| &m.id)),
        // Each direction's newest from its own run of messages_mid_direction, then merged:
        // a page costs two short index walks whatever the mix of directions.
        None => format!(
            "SELECT {COLUMNS} FROM ({}) AS inbound UNION ALL SELECT {COLUMNS} FROM ({}) AS outbound
             ORDER BY id DESC LIMIT $4",
            newest_of("inbound"),
            newest_of("outbound"),
        ),
    };
    let rows: Vec<Message> = sqlx::query_as(&sql)
        .bind(mid_id)
        .bind(account_id.as_str())
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?;
    Ok(page::finish(rows, req.limit, |m| &m.id))
}

/// A page of one direction's messages, newest first: `$1` MID, `$2` account, `$3` the
/// cursor, `$4` how many.
fn newest_of(direction: &'static str) -> String {
    format!(
        "SELECT {COLUMNS} FROM messages WHERE mid_id = $1 AND account_id = $2 AND direction = '{direction}' AND id < $3
         ORDER BY id DESC LIMIT $4"
    )
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

impl StatusChange<'_> {
    /// The same change: one statement can apply both.
    pub fn same_as(&self, other: &StatusChange<'_>) -> bool {
        (
            self.expected,
            self.status,
            self.error,
            self.stamp_sent,
            self.stamp_delivered,
        ) == (
            other.expected,
            other.status,
            other.error,
            other.stamp_sent,
            other.stamp_delivered,
        )
    }
}

impl Message {
    /// A row of `SELECT {COLUMNS}`.
    pub(crate) fn from_row(row: &Row) -> Result<Message> {
        Ok(Message {
            id: row.get(0)?,
            account_id: row.get(1)?,
            mid_id: row.get(2)?,
            direction: row.get(3)?,
            from_number: row.get(4)?,
            to_number: row.get(5)?,
            body: row.get(6)?,
            segments: row.get(7)?,
            encoding: row.get(8)?,
            cost: row.get(9)?,
            status: row.get(10)?,
            created_at: row.get(11)?,
            handed_at: row.get(12)?,
            sent_at: row.get(13)?,
            delivered_at: row.get(14)?,
            telco_ref: row.get(15)?,
            retry_count: row.get(16)?,
            error: row.get(17)?,
            updated_at: row.get(18)?,
        })
    }
}
