//! Per-MID usage counters. `lock` takes the MID's row for the rest of the transaction, so the
//! policy check and the reservation it allows are one atomic step on both engines.

use ami_core::policy::{DestinationUsage, Kind, Usage};

use std::collections::HashMap;

use crate::{Conn, Engine, Result, rows};

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
pub async fn lock(
    conn: &mut Conn,
    engine: Engine,
    account_id: &str,
    mid_id: &str,
) -> Result<Usage> {
    sqlx::query("INSERT INTO mid_usage (mid_id, account_id) VALUES ($1, $2) ON CONFLICT (mid_id) DO NOTHING")
        .bind(mid_id)
        .bind(account_id)
        .execute(&mut *conn)
        .await?;
    let row: UsageRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mid_usage WHERE mid_id = $1 AND account_id = $2{}",
        engine.for_update()
    ))
    .bind(mid_id)
    .bind(account_id)
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// The counters without a lock, for snapshots.
pub async fn read(conn: &mut Conn, account_id: &str, mid_id: &str) -> Result<Usage> {
    let row: Option<UsageRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mid_usage WHERE mid_id = $1 AND account_id = $2"
    ))
    .bind(mid_id)
    .bind(account_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Usage::from).unwrap_or_default())
}

pub async fn save(conn: &mut Conn, account_id: &str, mid_id: &str, u: &Usage) -> Result<()> {
    sqlx::query(
        "UPDATE mid_usage SET tat_ms = $3, hour_start = $4, sms_hour = $5, calls_hour = $6, day_start = $7,
                sms_day = $8, calls_day = $9, month_start = $10, spend_month = $11, call_seconds_month = $12
         WHERE mid_id = $1 AND account_id = $2",
    )
    .bind(mid_id)
    .bind(account_id)
    .bind(u.tat_ms)
    .bind(u.hour_start)
    .bind(u.sms_hour)
    .bind(u.calls_hour)
    .bind(u.day_start)
    .bind(u.sms_day)
    .bind(u.calls_day)
    .bind(u.month_start)
    .bind(u.spend_month)
    .bind(u.call_seconds_month)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counters of one destination; read under the MID's lock, so no second lock is needed.
pub async fn destination(
    conn: &mut Conn,
    mid_id: &str,
    kind: Kind,
    destination: &str,
) -> Result<DestinationUsage> {
    let mut found = destinations(conn, mid_id, kind, &[destination]).await?;
    Ok(found.remove(destination).unwrap_or_default())
}

/// Counters of many destinations of one MID; destinations never used are absent.
pub async fn destinations(
    conn: &mut Conn,
    mid_id: &str,
    kind: Kind,
    destinations: &[&str],
) -> Result<HashMap<String, DestinationUsage>> {
    let mut found = HashMap::with_capacity(destinations.len());
    for chunk in destinations.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT destination, hour_start, hour_count, day_start, day_count FROM destination_usage
             WHERE mid_id = $1 AND kind = $2 AND destination IN ({})",
            rows::list(chunk.len(), 3)
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64, i64, i64)>(&sql)
            .bind(mid_id)
            .bind(kind_str(kind));
        for d in chunk {
            q = q.bind(*d);
        }
        for (destination, hour_start, hour_count, day_start, day_count) in
            q.fetch_all(&mut *conn).await?
        {
            let usage = DestinationUsage {
                hour_start,
                hour_count,
                day_start,
                day_count,
            };
            found.insert(destination, usage);
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
    save_destinations(conn, mid_id, kind, &[(destination, d.clone())]).await
}

/// Writes the counters of many destinations of one MID.
pub async fn save_destinations(
    conn: &mut Conn,
    mid_id: &str,
    kind: Kind,
    all: &[(&str, DestinationUsage)],
) -> Result<()> {
    for chunk in all.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO destination_usage (mid_id, kind, destination, hour_start, hour_count, day_start, day_count)
             VALUES {}
             ON CONFLICT (mid_id, kind, destination) DO UPDATE SET hour_start = excluded.hour_start,
                 hour_count = excluded.hour_count, day_start = excluded.day_start, day_count = excluded.day_count",
            rows::values(chunk.len(), 7, 1)
        );
        let mut q = sqlx::query(&sql);
        for (destination, d) in chunk {
            q = q
                .bind(mid_id)
                .bind(kind_str(kind))
                .bind(*destination)
                .bind(d.hour_start)
                .bind(d.hour_count)
                .bind(d.day_start)
                .bind(d.day_count);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
