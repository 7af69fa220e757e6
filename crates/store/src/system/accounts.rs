//! `accounts` across tenants: for the server's own work and the operator only.

use crate::accounts::{Account, COLUMNS};
use crate::page::{self, Page, PageRequest};
use crate::{Conn, CrossTenant, Result};

/// The account a customer key belongs to, by the key's hash (unique index).
pub async fn by_key_hash(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    key_hash: &str,
) -> Result<Option<Account>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE key_hash = $1"
    ))
    .bind(key_hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn list(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    req: &PageRequest,
) -> Result<Page<Account>> {
    let rows: Vec<Account> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE id < $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(page::cursor_bound(req))
    .bind(req.limit + 1)
    .fetch_all(conn)
    .await?;
    Ok(page::finish(rows, req.limit, |a| &a.id))
}
