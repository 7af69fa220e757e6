//! KYC checks across tenants: the operator's review queue and the retention purge.

use crate::kyc::{COLUMNS, KycCheck};
use crate::page::{self, Page, PageRequest};
use crate::{Conn, CrossTenant, Result};

/// Every account's checks, newest first, optionally of one status.
pub async fn list(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    status: Option<&str>,
    req: &PageRequest,
) -> Result<Page<KycCheck>> {
    let rows: Vec<KycCheck> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM kyc_checks WHERE id < $1 AND ($2 IS NULL OR status = $2)
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(page::cursor_bound(req))
    .bind(status)
    .bind(req.limit + 1)
    .fetch_all(conn)
    .await?;
    Ok(page::finish(rows, req.limit, |k| &k.id))
}

pub async fn get(_scope: &impl CrossTenant, conn: &mut Conn, id: &str) -> Result<Option<KycCheck>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM kyc_checks WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Deletes the documents (and the document number) of every check decided at or before
/// `decided_before` and not yet purged; returns the checks purged now, as (id, account).
pub async fn purge(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    decided_before: i64,
    now: i64,
) -> Result<Vec<(String, String)>> {
    let due: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, account_id FROM kyc_checks
         WHERE purged_at IS NULL AND decided_at IS NOT NULL AND decided_at <= $1 ORDER BY id",
    )
    .bind(decided_before)
    .fetch_all(&mut *conn)
    .await?;
    for (id, _) in &due {
        sqlx::query("DELETE FROM kyc_documents WHERE kyc_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE kyc_checks SET document_number = NULL, purged_at = $2, updated_at = $2
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(due)
}
