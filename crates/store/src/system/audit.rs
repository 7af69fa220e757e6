//! `audit` across tenants: for the server's own work and the operator only.

use crate::audit::{COLUMNS, Event, Filter};
use crate::page::{Page, PageRequest};
use crate::{Conn, CrossTenant, Result};

/// The chains present, for verification.
pub async fn chains(_scope: &impl CrossTenant, conn: &mut Conn) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT chain_id FROM audit_heads ORDER BY chain_id")
            .fetch_all(conn)
            .await?,
    )
}

/// One chain in order, `batch` events after `after_seq`.
pub async fn chain_batch(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    chain: &str,
    after_seq: i64,
    batch: i64,
) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE chain_id = $1 AND chain_seq > $2 ORDER BY chain_seq LIMIT $3"
    ))
    .bind(chain)
    .bind(after_seq)
    .bind(batch)
    .fetch_all(conn)
    .await?)
}

/// The recorded head of a chain: detects events removed from its end.
pub async fn head(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    chain: &str,
) -> Result<Option<(i64, String)>> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE chain_id = $1")
            .bind(chain)
            .fetch_optional(conn)
            .await?,
    )
}

/// Every tenant's events and the operator's, in the global order (the operator's view).
pub async fn list_all(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    f: &Filter,
    req: &PageRequest,
) -> Result<Page<Event>> {
    crate::audit::list_in(conn, None, f, req).await
}
