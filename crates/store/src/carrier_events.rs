//! Carrier events that could not be applied, even alone: parked with their error for the
//! operator. The network was told they arrived, so they are never dropped; an operator
//! retries one once its cause is mended.

use crate::{Arg, Db, Result};

#[derive(Debug, Clone)]
pub struct Parked {
    pub id: String,
    pub kind: String,
    /// The event as JSON, as it arrived.
    pub payload: String,
    pub error: String,
    pub parked_at: i64,
    pub retried_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

pub async fn park(
    db: impl Into<Db<'_>>,
    kind: &str,
    payload: &str,
    error: &str,
    now: i64,
) -> Result<String> {
    let id = ami_core::id::new_id_at("cev", now);
    db.into()
        .execute(
            "INSERT INTO carrier_events_parked (id, kind, payload, error, parked_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                Arg::from(&id),
                Arg::from(kind),
                Arg::from(payload),
                Arg::from(error),
                Arg::from(now),
            ],
        )
        .await?;
    Ok(id)
}

fn parked(row: &crate::db::Row) -> Result<Parked> {
    Ok(Parked {
        id: row.get(0)?,
        kind: row.get(1)?,
        payload: row.get(2)?,
        error: row.get(3)?,
        parked_at: row.get(4)?,
        retried_at: row.get(5)?,
        resolved_at: row.get(6)?,
    })
}

const COLUMNS: &str = "id, kind, payload, error, parked_at, retried_at, resolved_at";

/// The events still parked, oldest first, after the id `after`.
pub async fn open(db: impl Into<Db<'_>>, after: Option<&str>, limit: i64) -> Result<Vec<Parked>> {
    db.into()
        .fetch(
            &format!(
                "SELECT {COLUMNS} FROM carrier_events_parked
                 WHERE resolved_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
            ),
            &[Arg::from(after.unwrap_or("")), Arg::from(limit)],
        )
        .await?
        .iter()
        .map(parked)
        .collect()
}

/// One event still parked.
pub async fn get_open(db: impl Into<Db<'_>>, id: &str) -> Result<Option<Parked>> {
    Ok(get(db, id).await?.filter(|p| p.resolved_at.is_none()))
}

/// One event parked now or before.
pub async fn get(db: impl Into<Db<'_>>, id: &str) -> Result<Option<Parked>> {
    db.into()
        .fetch(
            &format!("SELECT {COLUMNS} FROM carrier_events_parked WHERE id = $1"),
            &[Arg::from(id)],
        )
        .await?
        .iter()
        .map(parked)
        .next()
        .transpose()
}

/// How many events are parked.
pub async fn count_open(db: impl Into<Db<'_>>) -> Result<i64> {
    db.into()
        .fetch_one(
            "SELECT COUNT(*) FROM carrier_events_parked WHERE resolved_at IS NULL",
            &[],
        )
        .await?
        .get(0)
}

/// A retry applied the event: it leaves the list.
pub async fn resolve(db: impl Into<Db<'_>>, id: &str, now: i64) -> Result<bool> {
    Ok(db
        .into()
        .execute(
            "UPDATE carrier_events_parked SET resolved_at = $2, retried_at = $2 WHERE id = $1 AND resolved_at IS NULL",
            &[Arg::from(id), Arg::from(now)],
        )
        .await?
        == 1)
}

/// A retry failed again: the event stays, with the new error.
pub async fn retry_failed(db: impl Into<Db<'_>>, id: &str, error: &str, now: i64) -> Result<()> {
    db.into()
        .execute(
            "UPDATE carrier_events_parked SET error = $2, retried_at = $3 WHERE id = $1",
            &[Arg::from(id), Arg::from(error), Arg::from(now)],
        )
        .await?;
    Ok(())
}
