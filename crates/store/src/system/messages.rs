//! `messages` across tenants: for the server's own work and the operator only.

use crate::messages::{COLUMNS, Message, StatusChange};
use crate::{Arg, Batch, Conn, CrossTenant, Db, Result, rows};

/// Carrier-side lookups (workers, delivery reports): the carrier names messages, not tenants.
pub async fn by_id(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    id: &str,
) -> Result<Option<Message>> {
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
    _scope: &impl CrossTenant,
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

/// Carrier-side lookup of many messages; missing ids are simply absent.
pub async fn by_ids(
    _scope: &impl CrossTenant,
    db: impl Into<Db<'_>>,
    ids: &[String],
) -> Result<Vec<Message>> {
    let mut db = db.into();
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE id IN ({})",
            rows::list(chunk.len(), 1)
        );
        let args: Vec<Arg> = chunk.iter().map(Arg::from).collect();
        for row in db.fetch(&sql, &args).await? {
            found.push(Message::from_row(&row)?);
        }
    }
    Ok(found)
}

/// [`by_ids`] inside a write transaction, the rows locked until it ends, in id order (so two
/// batches never wait on each other in a cycle). On PostgreSQL two reports for one message
/// (a receipt and the hand-off's `sent`) otherwise both read the old status, and the
/// second's compare-and-set finds nothing to change: the receipt would be lost.
pub async fn lock_by_ids(
    _scope: &impl CrossTenant,
    db: impl Into<Db<'_>>,
    ids: &[String],
) -> Result<Vec<Message>> {
    let mut db = db.into();
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let lock = db.engine().for_no_key_update();
    let mut found = Vec::with_capacity(sorted.len());
    for chunk in sorted.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE id IN ({}) ORDER BY id{lock}",
            rows::list(chunk.len(), 1)
        );
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        for row in db.fetch(&sql, &args).await? {
            found.push(Message::from_row(&row)?);
        }
    }
    Ok(found)
}

/// Queued outbound messages of the given MIDs not yet handed to the carrier (kill-switch).
/// Each of them still has its outbox row, so the search starts there: the outbox holds the
/// dispatch backlog, the messages table every message ever sent.
pub async fn cancellable(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    mid_id: Option<&str>,
    account_id: Option<&str>,
) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE id IN (SELECT ref_id FROM outbox)
           AND status = 'queued' AND handed_at IS NULL AND direction = 'outbound'
           AND ($1 IS NULL OR mid_id = $1) AND ($2 IS NULL OR account_id = $2)"
    ))
    .bind(mid_id)
    .bind(account_id)
    .fetch_all(conn)
    .await?)
}

/// Moves the status `from` → `to` with its timestamps; false when it was no longer `from`.
pub async fn transition(
    _scope: &impl CrossTenant,
    db: impl Into<Db<'_>>,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
    error: Option<&str>,
) -> Result<bool> {
    let changed = db
        .into()
        .execute(
            "UPDATE messages SET status = $3, updated_at = $4, error = COALESCE($5, error),
                sent_at = CASE WHEN $3 = 'sent' OR ($3 = 'delivered' AND sent_at IS NULL) THEN $4 ELSE sent_at END,
                delivered_at = CASE WHEN $3 = 'delivered' THEN $4 ELSE delivered_at END
             WHERE id = $1 AND status = $2",
            &[
                Arg::from(id),
                Arg::from(from),
                Arg::from(to),
                Arg::from(now),
                Arg::from(error),
            ],
        )
        .await?;
    Ok(changed == 1)
}

pub async fn count_retry(
    _scope: &impl CrossTenant,
    db: impl Into<Db<'_>>,
    id: &str,
    now: i64,
    error: &str,
) -> Result<()> {
    db.into()
        .execute(
            "UPDATE messages SET retry_count = retry_count + 1, error = $3, updated_at = $2 WHERE id = $1",
            &[Arg::from(id), Arg::from(now), Arg::from(error)],
        )
        .await?;
    Ok(())
}

/// Records the hand-off to the carrier and its reference.
pub async fn handed_off(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    id: &str,
    telco_ref: &str,
    now: i64,
) -> Result<()> {
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

/// Applies one status change to the messages that still have `expected`, as statements of
/// a batch.
pub fn push_change_status(
    _scope: &impl CrossTenant,
    batch: &mut Batch,
    ids: &[&str],
    c: &StatusChange<'_>,
) {
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "UPDATE messages SET status = $2, updated_at = $3, error = COALESCE($4, error),
                    sent_at = CASE WHEN $5 = 1 THEN COALESCE(sent_at, $3) ELSE sent_at END,
                    delivered_at = CASE WHEN $6 = 1 THEN $3 ELSE delivered_at END
             WHERE status = $1 AND id IN ({})",
            rows::list(chunk.len(), 7)
        );
        let mut args = vec![
            Arg::from(c.expected),
            Arg::from(c.status),
            Arg::from(c.now),
            Arg::from(c.error),
            Arg::from(i64::from(c.stamp_sent)),
            Arg::from(i64::from(c.stamp_delivered)),
        ];
        args.extend(chunk.iter().map(|id| Arg::from(*id)));
        batch.push(sql, args);
    }
}

/// [`handed_off`] for many messages at once, `(id, telco_ref)` pairs, as statements of a
/// batch.
pub fn push_handed_off_many(
    _scope: &impl CrossTenant,
    batch: &mut Batch,
    handed: &[(String, String)],
    now: i64,
) {
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
        let mut args = vec![Arg::from(now)];
        for (id, telco_ref) in chunk {
            args.extend([Arg::from(id), Arg::from(telco_ref)]);
        }
        batch.push(sql, args);
    }
}
