//! Customer accounts and their API key hashes.

use crate::{AccountId, Conn, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub billing_email: Option<String>,
    pub status: String,
    pub key_prefix: String,
    pub created_at: i64,
    pub key_rotated_at: Option<i64>,
    pub suspended_at: Option<i64>,
    pub suspend_reason: Option<String>,
}

pub(crate) const COLUMNS: &str = "id, name, billing_email, status, key_prefix, created_at, key_rotated_at, suspended_at, suspend_reason";

pub struct NewAccount<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub billing_email: Option<&'a str>,
    pub key_hash: &'a str,
    pub key_prefix: &'a str,
    pub now: i64,
}

pub async fn insert(conn: &mut Conn, a: &NewAccount<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (id, name, billing_email, status, key_hash, key_prefix, created_at)
         VALUES ($1, $2, $3, 'active', $4, $5, $6)",
    )
    .bind(a.id)
    .bind(a.name)
    .bind(a.billing_email)
    .bind(a.key_hash)
    .bind(a.key_prefix)
    .bind(a.now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Operator lookups: the admin is the one actor that sees every account.
pub async fn get(conn: &mut Conn, id: &AccountId) -> Result<Option<Account>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn set_key(
    conn: &mut Conn,
    id: &AccountId,
    key_hash: &str,
    key_prefix: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE accounts SET key_hash = $2, key_prefix = $3, key_rotated_at = $4 WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(key_hash)
    .bind(key_prefix)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves `from` → `to` status; false when the account was not in `from`.
pub async fn set_status(
    conn: &mut Conn,
    id: &AccountId,
    from: &str,
    to: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let suspended_at = (to == "suspended").then_some(now);
    let r = sqlx::query(
        "UPDATE accounts SET status = $3, suspended_at = $4, suspend_reason = $5
         WHERE id = $1 AND status = $2",
    )
    .bind(id.as_str())
    .bind(from)
    .bind(to)
    .bind(suspended_at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
