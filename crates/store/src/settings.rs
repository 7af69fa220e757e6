//! Server-wide settings kept in the database (e.g. the admin key hash).

use crate::{Conn, Result};

pub const ADMIN_KEY_HASH: &str = "admin_key_hash";

pub async fn get(conn: &mut Conn, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await?,
    )
}

/// Inserts the value unless one is already set; returns the value in force.
pub async fn get_or_insert(conn: &mut Conn, key: &str, value: &str) -> Result<String> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(get(conn, key).await?.unwrap_or_else(|| value.to_owned()))
}

pub async fn set(conn: &mut Conn, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
