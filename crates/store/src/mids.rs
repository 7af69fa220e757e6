//! Mobile identities and the agent tokens bound to them.

use crate::AccountId;
use crate::db::Row;
use crate::page::{self, Page, PageRequest};
use crate::{Arg, Conn, Db, Result, rows};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Mid {
    pub id: String,
    pub account_id: String,
    pub sim_request_id: Option<String>,
    pub contract_id: Option<String>,
    pub number_id: String,
    pub phone_number: String,
    pub country: String,
    pub capabilities: String,
    pub status: String,
    pub inbound_sip_uri: Option<String>,
    /// JSON, the wire form of `ami_core::limits::Limits`.
    pub limits: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub released_at: Option<i64>,
}

pub(crate) const COLUMNS: &str = "id, account_id, sim_request_id, contract_id, number_id, phone_number, country, capabilities, status, inbound_sip_uri, limits, created_at, updated_at, released_at";

pub async fn insert(conn: &mut Conn, m: &Mid) -> Result<()> {
    sqlx::query(
        "INSERT INTO mobile_identities (id, account_id, sim_request_id, contract_id, number_id, phone_number,
                                        country, capabilities, status, inbound_sip_uri, limits, created_at,
                                        updated_at, released_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&m.id)
    .bind(&m.account_id)
    .bind(&m.sim_request_id)
    .bind(&m.contract_id)
    .bind(&m.number_id)
    .bind(&m.phone_number)
    .bind(&m.country)
    .bind(&m.capabilities)
    .bind(&m.status)
    .bind(&m.inbound_sip_uri)
    .bind(&m.limits)
    .bind(m.created_at)
    .bind(m.updated_at)
    .bind(m.released_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, account_id: &AccountId, id: &str) -> Result<Option<Mid>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mobile_identities WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// [`get`] for many `(account_id, mid_id)` pairs; a pair that does not match is absent.
pub async fn get_many(db: impl Into<Db<'_>>, pairs: &[(&AccountId, &str)]) -> Result<Vec<Mid>> {
    let mut db = db.into();
    let mut found = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT {COLUMNS} FROM mobile_identities WHERE account_id IN ({}) AND id IN ({})",
            rows::list(chunk.len(), 1),
            rows::list(chunk.len(), 1 + chunk.len())
        );
        let args: Vec<Arg> = chunk
            .iter()
            .map(|p| Arg::from(p.0.as_str()))
            .chain(chunk.iter().map(|p| Arg::from(p.1)))
            .collect();
        for row in db.fetch(&sql, &args).await? {
            let m = Mid::from_row(&row)?;
            if chunk
                .iter()
                .any(|(a, id)| a.as_str() == m.account_id && *id == m.id)
            {
                found.push(m);
            }
        }
    }
    Ok(found)
}

impl Mid {
    /// A row of `SELECT {COLUMNS}`.
    pub(crate) fn from_row(row: &Row) -> Result<Mid> {
        Ok(Mid {
            id: row.get(0)?,
            account_id: row.get(1)?,
            sim_request_id: row.get(2)?,
            contract_id: row.get(3)?,
            number_id: row.get(4)?,
            phone_number: row.get(5)?,
            country: row.get(6)?,
            capabilities: row.get(7)?,
            status: row.get(8)?,
            inbound_sip_uri: row.get(9)?,
            limits: row.get(10)?,
            created_at: row.get(11)?,
            updated_at: row.get(12)?,
            released_at: row.get(13)?,
        })
    }
}

pub async fn list(conn: &mut Conn, account_id: &AccountId, req: &PageRequest) -> Result<Page<Mid>> {
    let rows: Vec<Mid> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mobile_identities WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    ))
    .bind(account_id.as_str())
    .bind(page::cursor_bound(req))
    .bind(req.limit + 1)
    .fetch_all(conn)
    .await?;
    Ok(page::finish(rows, req.limit, |m| &m.id))
}

pub async fn set_inbound_sip_uri(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    uri: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE mobile_identities SET inbound_sip_uri = $3, updated_at = $4
         WHERE account_id = $1 AND id = $2 AND status <> 'released'",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(uri)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_limits(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    limits: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE mobile_identities SET limits = $3, updated_at = $4
         WHERE account_id = $1 AND id = $2 AND status <> 'released'",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(limits)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_status(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<bool> {
    let released_at = (to == "released").then_some(now);
    let r = sqlx::query(
        "UPDATE mobile_identities SET status = $4, updated_at = $5, released_at = COALESCE($6, released_at)
         WHERE account_id = $1 AND id = $2 AND status = $3",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .bind(released_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentToken {
    pub id: String,
    pub account_id: String,
    pub mid_id: String,
    pub token_prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub async fn insert_token(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    token_hash: &str,
    token_prefix: &str,
    now: i64,
) -> Result<String> {
    let id = ami_core::id::new_id_at("tok", now);
    sqlx::query(
        "INSERT INTO agent_tokens (id, account_id, mid_id, token_hash, token_prefix, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(token_hash)
    .bind(token_prefix)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Revokes every live token of the MID; returns how many.
pub async fn revoke_tokens(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    now: i64,
) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE agent_tokens SET revoked_at = $3 WHERE account_id = $1 AND mid_id = $2 AND revoked_at IS NULL",
    )
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Everything an agent request needs to know about its caller, in one indexed read.
#[derive(Debug, Clone)]
pub struct AgentPrincipal {
    pub token_id: String,
    pub token_prefix: String,
    pub token_created_at: i64,
    pub account_id: String,
    pub account_status: String,
    pub mid_id: String,
    pub mid_status: String,
}

/// Every stored agent token of an account (hashes excluded), for inspections in tests.
pub async fn tokens_of_mid(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
) -> Result<Vec<AgentToken>> {
    Ok(sqlx::query_as(
        "SELECT id, account_id, mid_id, token_prefix, created_at, revoked_at FROM agent_tokens
         WHERE account_id = $1 AND mid_id = $2 ORDER BY id",
    )
    .bind(account_id.as_str())
    .bind(mid_id)
    .fetch_all(conn)
    .await?)
}

pub async fn ids_of_account(conn: &mut Conn, account_id: &AccountId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM mobile_identities WHERE account_id = $1 AND status <> 'released'",
    )
    .bind(account_id.as_str())
    .fetch_all(conn)
    .await?)
}

/// The account's MIDs not released whose id (a creation time) sorts before `before`, oldest
/// first.
pub async fn live_before(
    conn: &mut Conn,
    account_id: &AccountId,
    before: &str,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM mobile_identities
         WHERE account_id = $1 AND id < $2 AND status <> 'released' ORDER BY id LIMIT $3",
    )
    .bind(account_id.as_str())
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
