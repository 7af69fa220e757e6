//! Per-MID usage counters. `lock` takes the MID's row for the rest of the transaction, so the
//! policy check and the reservation it allows are one atomic step on both engines.

use crate::AccountId;
use ami_core::policy::{DestinationUsage, Kind, Usage};

use std::collections::HashMap;

use crate::db::Row;
use crate::{Arg, Batch, Conn, Db, Engine, Result, rows};

fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Sms => "sms",
        Kind::Call => "call",
    }
}

#[derive(sqlx::FromRow)]
struct UsageRow {
    tat_ms: i64,
    hour_start: i64,
    sms_hour: i64,
    calls_hour: i64,
    day_start: i64,
    sms_day: i64,
    calls_day: i64,
    month_start: i64,
    spend_month: i64,
    call_seconds_month: i64,
}

impl From<UsageRow> for Usage {
    fn from(r: UsageRow) -> Self {
        Usage {
            tat_ms: r.tat_ms,
            hour_start: r.hour_start,
            sms_hour: r.sms_hour,
            calls_hour: r.calls_hour,
            day_start: r.day_start,
            sms_day: r.sms_day,
            calls_day: r.calls_day,
            month_start: r.month_start,
            spend_month: r.spend_month,
            call_seconds_month: r.call_seconds_month,
        }
    }
}

const COLUMNS: &str = "tat_ms, hour_start, sms_hour, calls_hour, day_start, sms_day, calls_day, month_start, spend_month, call_seconds_month";

/// The MID's counters, locked until the transaction ends (created on first use).
pub async fn lock(db: impl Into<Db<'_>>, account_id: &AccountId, mid_id: &str) -> Result<Usage> {
    let mut all = lock_many(db, &[(account_id, mid_id)]).await?;
    Ok(all.remove(mid_id).unwrap_or_default())
}

/// [`lock`] for many `(account_id, mid_id)` pairs of existing MIDs, keyed by MID. A MID of
/// another account is left out.
///
/// One statement per chunk creates the missing rows and returns every row, locked: the rows
/// are taken in MID order, so two transactions locking overlapping sets cannot deadlock. A
/// SQLite write transaction already holds the database's one write lock (BEGIN IMMEDIATE),
/// so there a plain read comes first, and the statement runs only when a row is missing.
pub async fn lock_many(
    db: impl Into<Db<'_>>,
    pairs: &[(&AccountId, &str)],
) -> Result<HashMap<String, Usage>> {
    let mut db = db.into();
    let mut sorted = pairs.to_vec();
    sorted.sort_by_key(|&(_, mid)| mid);
    sorted.dedup();
    let mut by_mid = sorted.clone();
    // One row may be touched once per statement.
    by_mid.dedup_by_key(|&mut (_, mid)| mid);
    let mut found = HashMap::with_capacity(sorted.len());
    for chunk in by_mid.chunks(rows::CHUNK) {
        let mut rows = Vec::new();
        if db.engine() == Engine::Sqlite {
            let sql = format!(
                "SELECT mid_id, account_id, {COLUMNS} FROM mid_usage WHERE mid_id IN ({})",
                rows::list(chunk.len(), 1)
            );
            let args: Vec<Arg> = chunk.iter().map(|(_, mid_id)| Arg::from(*mid_id)).collect();
            rows = db.fetch(&sql, &args).await?;
        }
        if rows.len() < chunk.len() {
            // The no-op update is what locks an existing row and makes RETURNING include it.
            let sql = format!(
                "INSERT INTO mid_usage (mid_id, account_id) VALUES {}
                 ON CONFLICT (mid_id) DO UPDATE SET account_id = mid_usage.account_id
                 RETURNING mid_id, account_id, {COLUMNS}",
                rows::values(chunk.len(), 2, 1)
            );
            let args: Vec<Arg> = chunk
                .iter()
                .flat_map(|(account_id, mid_id)| [Arg::from(*mid_id), Arg::from(*account_id)])
                .collect();
            rows = db.fetch(&sql, &args).await?;
        }
        for row in rows {
            let (mid_id, account_id): (String, String) = (row.get(0)?, row.get(1)?);
            if sorted
                .iter()
                .any(|(a, m)| a.as_str() == account_id && *m == mid_id)
            {
                found.insert(mid_id, usage_at(&row, 2)?);
            }
        }
    }
    Ok(found)
}

/// The counters of `COLUMNS` in a row, from column `first` on.
fn usage_at(row: &Row, first: usize) -> Result<Usage> {
    Ok(Usage {
        tat_ms: row.get(first)?,
        hour_start: row.get(first + 1)?,
        sms_hour: row.get(first + 2)?,
        calls_hour: row.get(first + 3)?,
        day_start: row.get(first + 4)?,
        sms_day: row.get(first + 5)?,
        calls_day: row.get(first + 6)?,
        month_start: row.get(first + 7)?,
        spend_month: row.get(first + 8)?,
        call_seconds_month: row.get(first + 9)?,
    })
}

/// The counters without a lock, for snapshots.
pub async fn read(conn: &mut Conn, account_id: &AccountId, mid_id: &str) -> Result<Usage> {
    let row: Option<UsageRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mid_usage WHERE mid_id = $1 AND account_id = $2"
    ))
    .bind(mid_id)
    .bind(account_id.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Usage::from).unwrap_or_default())
}

pub async fn save(
    db: impl Into<Db<'_>>,
    account_id: &AccountId,
    mid_id: &str,
    u: &Usage,
) -> Result<()> {
    save_many(db, &[(account_id, mid_id, u.clone())]).await
}

/// Writes the counters of many MIDs (rows [`lock_many`] created and locked).
pub async fn save_many(db: impl Into<Db<'_>>, all: &[(&AccountId, &str, Usage)]) -> Result<()> {
    let mut batch = Batch::default();
    push_save_many(&mut batch, all);
    batch.run(db).await
}

/// [`save_many`] as statements of a batch.
pub fn push_save_many(batch: &mut Batch, all: &[(&AccountId, &str, Usage)]) {
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO mid_usage (account_id, mid_id, {COLUMNS}) VALUES {}
             ON CONFLICT (mid_id) DO UPDATE SET tat_ms = excluded.tat_ms, hour_start = excluded.hour_start,
                 sms_hour = excluded.sms_hour, calls_hour = excluded.calls_hour, day_start = excluded.day_start,
                 sms_day = excluded.sms_day, calls_day = excluded.calls_day, month_start = excluded.month_start,
                 spend_month = excluded.spend_month, call_seconds_month = excluded.call_seconds_month
             WHERE mid_usage.account_id = excluded.account_id",
            rows::values(chunk.len(), 12, 1)
        );
        let mut args = Vec::with_capacity(chunk.len() * 12);
        for (account_id, mid_id, u) in chunk {
            args.extend([
                Arg::from(*account_id),
                Arg::from(*mid_id),
                Arg::from(u.tat_ms),
                Arg::from(u.hour_start),
                Arg::from(u.sms_hour),
                Arg::from(u.calls_hour),
                Arg::from(u.day_start),
                Arg::from(u.sms_day),
                Arg::from(u.calls_day),
                Arg::from(u.month_start),
                Arg::from(u.spend_month),
                Arg::from(u.call_seconds_month),
            ]);
        }
        batch.push(sql, args);
    }
}

/// Counters of one destination; read under the MID's lock, so no second lock is needed.
pub async fn destination(
    conn: &mut Conn,
    mid_id: &str,
    kind: Kind,
    destination: &str,
) -> Result<DestinationUsage> {
    let mut found = destinations(conn, kind, &[(mid_id, destination)]).await?;
    Ok(found
        .remove(&(mid_id.to_owned(), destination.to_owned()))
        .unwrap_or_default())
}

/// Counters of many `(mid_id, destination)` pairs, read under their MIDs' locks; pairs never
/// used are absent.
pub async fn destinations(
    db: impl Into<Db<'_>>,
    kind: Kind,
    pairs: &[(&str, &str)],
) -> Result<HashMap<(String, String), DestinationUsage>> {
    let mut db = db.into();
    let mut found = HashMap::with_capacity(pairs.len());
    for chunk in pairs.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT mid_id, destination, hour_start, hour_count, day_start, day_count FROM destination_usage
             WHERE kind = $1 AND mid_id IN ({}) AND destination IN ({})",
            rows::list(chunk.len(), 2),
            rows::list(chunk.len(), 2 + chunk.len())
        );
        let args: Vec<Arg> = std::iter::once(Arg::from(kind_str(kind)))
            .chain(chunk.iter().map(|p| Arg::from(p.0)))
            .chain(chunk.iter().map(|p| Arg::from(p.1)))
            .collect();
        for row in db.fetch(&sql, &args).await? {
            let (mid_id, destination): (String, String) = (row.get(0)?, row.get(1)?);
            if chunk.contains(&(mid_id.as_str(), destination.as_str())) {
                let usage = DestinationUsage {
                    hour_start: row.get(2)?,
                    hour_count: row.get(3)?,
                    day_start: row.get(4)?,
                    day_count: row.get(5)?,
                };
                found.insert((mid_id, destination), usage);
            }
        }
    }
    Ok(found)
}

pub async fn save_destination(
    conn: &mut Conn,
    mid_id: &str,
    kind: Kind,
    destination: &str,
    d: &DestinationUsage,
) -> Result<()> {
    save_destinations(conn, kind, &[(mid_id, destination, d.clone())]).await
}

/// Writes the counters of many `(mid_id, destination)` pairs, each pair at most once.
pub async fn save_destinations(
    conn: &mut Conn,
    kind: Kind,
    all: &[(&str, &str, DestinationUsage)],
) -> Result<()> {
    let mut batch = Batch::default();
    push_save_destinations(&mut batch, kind, all);
    batch.run(conn).await
}

/// [`save_destinations`] as statements of a batch.
pub fn push_save_destinations(
    batch: &mut Batch,
    kind: Kind,
    all: &[(&str, &str, DestinationUsage)],
) {
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO destination_usage (mid_id, kind, destination, hour_start, hour_count, day_start, day_count)
             VALUES {}
             ON CONFLICT (mid_id, kind, destination) DO UPDATE SET hour_start = excluded.hour_start,
                 hour_count = excluded.hour_count, day_start = excluded.day_start, day_count = excluded.day_count",
            rows::values(chunk.len(), 7, 1)
        );
        let mut args = Vec::with_capacity(chunk.len() * 7);
        for (mid_id, destination, d) in chunk {
            args.extend([
                Arg::from(*mid_id),
                Arg::from(kind_str(kind)),
                Arg::from(*destination),
                Arg::from(d.hour_start),
                Arg::from(d.hour_count),
                Arg::from(d.day_start),
                Arg::from(d.day_count),
            ]);
        }
        batch.push(sql, args);
    }
}
