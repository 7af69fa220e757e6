//! `calls` across tenants: for the server's own work and the operator only.

use crate::calls::{COLUMNS, Call, LIVE};
use crate::{Conn, CrossTenant, Engine, Result};

/// Carrier-side lookups (workers, call status events): the carrier names calls, not tenants.
pub async fn by_id(_scope: &impl CrossTenant, conn: &mut Conn, id: &str) -> Result<Option<Call>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM calls WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// [`by_id`], locked until the transaction ends.
pub async fn lock(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    engine: Engine,
    id: &str,
) -> Result<Option<Call>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls WHERE id = $1{}",
        engine.for_update()
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The call the carrier knows under this reference (the newest, should a carrier reuse one).
pub async fn by_telco_ref(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    telco_ref: &str,
) -> Result<Option<Call>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls WHERE telco_ref = $1 ORDER BY id DESC LIMIT 1"
    ))
    .bind(telco_ref)
    .fetch_optional(conn)
    .await?)
}

/// Calls not yet ended of one MID, of one account, or of the whole service (both filters
/// None), locked until the transaction ends (kill-switch). Oldest first.
pub async fn live(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    engine: Engine,
    mid_id: Option<&str>,
    account_id: Option<&str>,
) -> Result<Vec<Call>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls
         WHERE {LIVE} AND ($1 IS NULL OR mid_id = $1) AND ($2 IS NULL OR account_id = $2)
         ORDER BY id{}",
        engine.for_update()
    ))
    .bind(mid_id)
    .bind(account_id)
    .fetch_all(conn)
    .await?)
}

/// The inbound call a carrier already announced under this reference for this MID.
pub async fn inbound_by_telco_ref(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    mid_id: &str,
    telco_ref: &str,
) -> Result<Option<Call>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls
         WHERE telco_ref = $1 AND mid_id = $2 AND direction = 'inbound'
         ORDER BY id LIMIT 1"
    ))
    .bind(telco_ref)
    .bind(mid_id)
    .fetch_optional(conn)
    .await?)
}

/// Writes back every mutable column of a call read under [`lock`] or [`lock_scoped`].
pub async fn save(_scope: &impl CrossTenant, conn: &mut Conn, c: &Call) -> Result<()> {
    sqlx::query(
        "UPDATE calls SET status = $2, handed_at = $3, started_at = $4, answered_at = $5, ended_at = $6,
                duration_sec = $7, hangup_cause = $8, telco_ref = $9, retry_count = $10, cost = $11, updated_at = $12
         WHERE id = $1",
    )
    .bind(&c.id)
    .bind(&c.status)
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
