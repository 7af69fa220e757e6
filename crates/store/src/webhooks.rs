//! Webhook endpoints of an account or of one of its MIDs.
//!
//! Every tenant read takes the account id and the exact scope: a MID's webhook is not found
//! through the account's scope nor through another MID, so a wrong scope is a plain miss.

use crate::AccountId;
use crate::page::{self, Page, PageRequest};
use crate::{Conn, Engine, Result};

pub const ACTIVE: &str = "active";
pub const DISABLED: &str = "disabled";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Webhook {
    pub id: String,
    pub account_id: String,
    /// None for an account-scoped webhook.
    pub mid_id: Option<String>,
    pub url: String,
    /// JSON array of event names.
    pub events: String,
    /// Sealed (`crate::sealed`, `WEBHOOK_SECRET`); opened only to sign a delivery.
    pub secret: String,
    pub secret_prefix: String,
    pub status: String,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub consecutive_failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, account_id, mid_id, url, events, secret, secret_prefix, status, disabled_reason, disabled_at, consecutive_failures, created_at, updated_at";

/// Where a webhook listens: one MID, or every MID of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Mid(&'a str),
    Account,
}

impl Scope<'_> {
    /// The condition on `mid_id`; a MID scope binds its id as `$n`.
    fn clause(self, n: usize) -> String {
        match self {
            Scope::Mid(_) => format!("mid_id = ${n}"),
            Scope::Account => "mid_id IS NULL".to_owned(),
        }
    }

    fn mid(self) -> Option<String> {
        match self {
            Scope::Mid(id) => Some(id.to_owned()),
            Scope::Account => None,
        }
    }
}

/// What the fan-out of an event needs to know about an active webhook.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub account_id: String,
    pub mid_id: Option<String>,
    pub events: String,
}

pub async fn insert(conn: &mut Conn, w: &Webhook) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO webhooks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&w.id)
    .bind(&w.account_id)
    .bind(&w.mid_id)
    .bind(&w.url)
    .bind(&w.events)
    .bind(&w.secret)
    .bind(&w.secret_prefix)
    .bind(&w.status)
    .bind(&w.disabled_reason)
    .bind(w.disabled_at)
    .bind(w.consecutive_failures)
    .bind(w.created_at)
    .bind(w.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the scope's owner row (the MID, or the account) until the transaction ends, so
/// that counting a scope's webhooks and adding one is a single step; false when the owner
/// does not exist in this account.
pub async fn lock_scope(
    conn: &mut Conn,
    engine: Engine,
    account_id: &AccountId,
    scope: Scope<'_>,
) -> Result<bool> {
    let lock = engine.for_no_key_update();
    let found: Option<String> = match scope {
        Scope::Mid(mid) => {
            sqlx::query_scalar(&format!(
                "SELECT id FROM mobile_identities WHERE account_id = $1 AND id = $2{lock}"
            ))
            .bind(account_id.as_str())
            .bind(mid)
            .fetch_optional(conn)
            .await?
        }
        Scope::Account => {
            sqlx::query_scalar(&format!("SELECT id FROM accounts WHERE id = $1{lock}"))
                .bind(account_id.as_str())
                .fetch_optional(conn)
                .await?
        }
    };
    Ok(found.is_some())
}

/// Webhooks of a scope, whatever their status.
pub async fn count(conn: &mut Conn, account_id: &AccountId, scope: Scope<'_>) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM webhooks WHERE account_id = $1 AND {}",
        scope.clause(2)
    );
    let q = sqlx::query_scalar(&sql).bind(account_id.as_str());
    let q = match scope.mid() {
        Some(mid) => q.bind(mid),
        None => q,
    };
    Ok(q.fetch_one(conn).await?)
}

/// A scope's webhooks, newest first.
pub async fn list(
    conn: &mut Conn,
    account_id: &AccountId,
    scope: Scope<'_>,
    req: &PageRequest,
) -> Result<Page<Webhook>> {
    let mid = scope.mid();
    let n = if mid.is_some() { 3 } else { 2 };
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE account_id = $1 AND {} AND id < ${n}
         ORDER BY id DESC LIMIT ${}",
        scope.clause(2),
        n + 1
    );
    let mut q = sqlx::query_as(&sql).bind(account_id.as_str());
    if let Some(mid) = mid {
        q = q.bind(mid);
    }
    let rows: Vec<Webhook> = q
        .bind(page::cursor_bound(req))
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?;
    Ok(page::finish(rows, req.limit, |w| &w.id))
}

/// One webhook of this account and exactly this scope.
pub async fn get(
    conn: &mut Conn,
    account_id: &AccountId,
    scope: Scope<'_>,
    id: &str,
) -> Result<Option<Webhook>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE account_id = $1 AND id = $2 AND {}",
        scope.clause(3)
    );
    let mut q = sqlx::query_as(&sql).bind(account_id.as_str()).bind(id);
    if let Some(mid) = scope.mid() {
        q = q.bind(mid);
    }
    Ok(q.fetch_optional(conn).await?)
}

/// Removes a webhook with its deliveries and their attempts (and with them its secret).
pub async fn delete(
    conn: &mut Conn,
    account_id: &AccountId,
    scope: Scope<'_>,
    id: &str,
) -> Result<bool> {
    let sql = format!(
        "DELETE FROM webhooks WHERE account_id = $1 AND id = $2 AND {}",
        scope.clause(3)
    );
    let mut q = sqlx::query(&sql).bind(account_id.as_str()).bind(id);
    if let Some(mid) = scope.mid() {
        q = q.bind(mid);
    }
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

/// Disabled → active, with a clean failure count; false when it was not disabled.
pub async fn enable(
    conn: &mut Conn,
    account_id: &AccountId,
    scope: Scope<'_>,
    id: &str,
    now: i64,
) -> Result<bool> {
    let sql = format!(
        "UPDATE webhooks SET status = 'active', disabled_reason = NULL, disabled_at = NULL,
                consecutive_failures = 0, updated_at = $3
         WHERE account_id = $1 AND id = $2 AND status = 'disabled' AND {}",
        scope.clause(4)
    );
    let mut q = sqlx::query(&sql)
        .bind(account_id.as_str())
        .bind(id)
        .bind(now);
    if let Some(mid) = scope.mid() {
        q = q.bind(mid);
    }
    Ok(q.execute(conn).await?.rows_affected() == 1)
}
