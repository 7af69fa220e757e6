//! Kill-switches (PROTOCOL §7): read in the same transaction as every send, so an engaged
//! switch is effective on the next request of any replica.

use crate::AccountId;
use crate::db::Row;
use crate::{Arg, Conn, Db, Result, rows};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KillSwitch {
    pub id: String,
    pub scope: String,
    pub target_id: Option<String>,
    pub account_id: Option<String>,
    pub reason: String,
    pub engaged_by: String,
    pub engaged_at: i64,
    pub released_at: Option<i64>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

const COLUMNS: &str = "id, scope, target_id, account_id, reason, engaged_by, engaged_at, released_at, released_by, release_reason";

pub async fn insert(conn: &mut Conn, k: &KillSwitch) -> Result<()> {
    sqlx::query(
        "INSERT INTO kill_switches (id, scope, target_id, account_id, reason, engaged_by, engaged_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&k.id)
    .bind(&k.scope)
    .bind(&k.target_id)
    .bind(&k.account_id)
    .bind(&k.reason)
    .bind(&k.engaged_by)
    .bind(k.engaged_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The engaged switch covering this MID, broadest scope first.
pub async fn covering(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
) -> Result<Option<KillSwitch>> {
    let engaged = engaged_over(conn, &[account_id.as_str()], &[mid_id]).await?;
    Ok(broadest_covering(&engaged, account_id.as_str(), mid_id).cloned())
}

/// Every engaged switch that covers any of these accounts or MIDs (and the global one).
pub async fn engaged_over(
    db: impl Into<Db<'_>>,
    account_ids: &[&str],
    mid_ids: &[&str],
) -> Result<Vec<KillSwitch>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM kill_switches
         WHERE released_at IS NULL
           AND (scope = 'global' OR (scope = 'account' AND target_id IN ({}))
                OR (scope = 'mid' AND target_id IN ({})))",
        rows::list(account_ids.len().max(1), 1),
        rows::list(mid_ids.len().max(1), 1 + account_ids.len().max(1)),
    );
    let args: Vec<Arg> = pad(account_ids)
        .into_iter()
        .chain(pad(mid_ids))
        .map(Arg::from)
        .collect();
    db.into()
        .fetch(&sql, &args)
        .await?
        .iter()
        .map(KillSwitch::from_row)
        .collect()
}

impl KillSwitch {
    /// A row of `SELECT {COLUMNS}`.
    fn from_row(row: &Row) -> Result<KillSwitch> {
        Ok(KillSwitch {
            id: row.get(0)?,
            scope: row.get(1)?,
            target_id: row.get(2)?,
            account_id: row.get(3)?,
            reason: row.get(4)?,
            engaged_by: row.get(5)?,
            engaged_at: row.get(6)?,
            released_at: row.get(7)?,
            released_by: row.get(8)?,
            release_reason: row.get(9)?,
        })
    }
}

/// An empty `IN ()` is not SQL; a list of one empty string matches nothing.
fn pad<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    if ids.is_empty() {
        vec![""]
    } else {
        ids.to_vec()
    }
}

/// Of `engaged`, the switch covering this MID, broadest scope first.
pub fn broadest_covering<'a>(
    engaged: &'a [KillSwitch],
    account_id: &str,
    mid_id: &str,
) -> Option<&'a KillSwitch> {
    let covers = |k: &&KillSwitch, scope: &str, target: Option<&str>| {
        k.scope == scope && (target.is_none() || k.target_id.as_deref() == target)
    };
    engaged
        .iter()
        .find(|k| covers(k, "global", None))
        .or_else(|| {
            engaged
                .iter()
                .find(|k| covers(k, "account", Some(account_id)))
        })
        .or_else(|| engaged.iter().find(|k| covers(k, "mid", Some(mid_id))))
}

pub async fn active(conn: &mut Conn) -> Result<Vec<KillSwitch>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM kill_switches WHERE released_at IS NULL ORDER BY engaged_at DESC"
    ))
    .fetch_all(conn)
    .await?)
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<KillSwitch>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM kill_switches WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The engaged mid-scope switch of one MID, if any (customer suspend/resume).
pub async fn active_for_mid(conn: &mut Conn, mid_id: &str) -> Result<Option<KillSwitch>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM kill_switches WHERE released_at IS NULL AND scope = 'mid' AND target_id = $1 LIMIT 1"
    ))
    .bind(mid_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn release(conn: &mut Conn, id: &str, by: &str, reason: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE kill_switches SET released_at = $2, released_by = $3, release_reason = $4
         WHERE id = $1 AND released_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
