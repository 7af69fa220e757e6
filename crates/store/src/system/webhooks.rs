//! `webhooks` across tenants: for the server's own work and the operator only.

use crate::webhooks::Subscription;
use crate::{Arg, Conn, CrossTenant, Db, Engine, Result, rows};

/// Active → disabled (the worker's decision: 410, or too many failures in a row); false
/// when it was not active.
pub async fn disable(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE webhooks SET status = 'disabled', disabled_reason = $2, disabled_at = $3, updated_at = $3
         WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One more failed delivery in a row; the new count, None when the webhook is gone.
pub async fn count_failure(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    id: &str,
    now: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, updated_at = $2
         WHERE id = $1 RETURNING consecutive_failures",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// A delivered delivery ends the run of failures.
pub async fn reset_failures(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE webhooks SET consecutive_failures = 0, updated_at = $2
         WHERE id = $1 AND consecutive_failures <> 0",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The active webhooks of these accounts, both scopes.
pub async fn subscriptions(
    _scope: &impl CrossTenant,
    db: impl Into<Db<'_>>,
    account_ids: &[&str],
) -> Result<Vec<Subscription>> {
    let mut db = db.into();
    let mut out = Vec::new();
    for chunk in account_ids.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT id, account_id, mid_id, events FROM webhooks
             WHERE status = 'active' AND account_id IN ({})",
            rows::list(chunk.len(), 1)
        );
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        for row in db.fetch(&sql, &args).await? {
            out.push(Subscription {
                id: row.get(0)?,
                account_id: row.get(1)?,
                mid_id: row.get(2)?,
                events: row.get(3)?,
            });
        }
    }
    Ok(out)
}

/// Accounts with at least one active webhook (the fan-out of a global kill-switch).
pub async fn accounts_with_active(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT account_id FROM webhooks WHERE status = 'active'")
            .fetch_all(conn)
            .await?,
    )
}

/// The status of each of these webhooks that still exists, the rows locked in id order
/// until the transaction ends. Whoever changes a webhook and its deliveries takes the
/// webhook first, so two recorders (or a recorder and the customer) cannot deadlock.
pub async fn lock_statuses(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    engine: Engine,
    ids: &[&str],
) -> Result<Vec<(String, String)>> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    for chunk in sorted.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT id, status FROM webhooks WHERE id IN ({}) ORDER BY id{}",
            rows::list(chunk.len(), 1),
            engine.for_no_key_update()
        );
        let mut q = sqlx::query_as(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}
