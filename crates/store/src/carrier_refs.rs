//! The messages behind carrier references, for carriers whose delivery receipts name only
//! their own reference (SMPP's `message_id`), and the receipts that arrived before their
//! reference was recorded. The hand-off and an early receipt write the same row, so
//! whichever commits second finds what the first left: no receipt is lost to the race
//! between `submit_sm_resp` and the hand-off's commit.

use std::collections::HashMap;

use crate::{Arg, Db, Result};

/// A receipt that waited for its reference, now that the reference names a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Early {
    pub telco_ref: String,
    pub msg_id: String,
    pub status: String,
    pub error: Option<String>,
}

/// Rows written per statement.
const CHUNK: usize = 100;

/// Records which message each `(telco_ref, msg_id)` names; returns the receipts that were
/// already waiting for those references.
pub async fn bind_many(
    db: impl Into<Db<'_>>,
    pairs: &[(String, String)],
    now: i64,
) -> Result<Vec<Early>> {
    let mut db = db.into();
    let mut early = Vec::new();
    for chunk in pairs.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let args: Vec<Arg> = chunk
            .iter()
            .flat_map(|(telco_ref, msg_id)| {
                [Arg::from(telco_ref), Arg::from(msg_id), Arg::from(now)]
            })
            .collect();
        let rows = db
            .fetch(
                &format!(
                    "INSERT INTO carrier_refs (telco_ref, msg_id, created_at) VALUES {}
                     ON CONFLICT (telco_ref) DO UPDATE SET msg_id = excluded.msg_id
                     RETURNING telco_ref, msg_id, early_status, early_error",
                    values.join(", ")
                ),
                &args,
            )
            .await?;
        for row in rows {
            if let Some(status) = row.get::<Option<String>>(2)? {
                early.push(Early {
                    telco_ref: row.get(0)?,
                    msg_id: row.get::<Option<String>>(1)?.unwrap_or_default(),
                    status,
                    error: row.get(3)?,
                });
            }
        }
    }
    Ok(early)
}

/// The messages the references name, by reference; unknown references are left out.
pub async fn messages(
    db: impl Into<Db<'_>>,
    telco_refs: &[&str],
) -> Result<HashMap<String, String>> {
    let mut db = db.into();
    let mut found = HashMap::new();
    for chunk in telco_refs.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let args: Vec<Arg> = chunk.iter().map(|r| Arg::from(*r)).collect();
        let rows = db
            .fetch(
                &format!(
                    "SELECT telco_ref, msg_id FROM carrier_refs
                     WHERE msg_id IS NOT NULL AND telco_ref IN ({})",
                    marks.join(", ")
                ),
                &args,
            )
            .await?;
        for row in rows {
            found.insert(row.get(0)?, row.get(1)?);
        }
    }
    Ok(found)
}

/// Keeps a receipt for a reference no hand-off has recorded yet. Returns the message when a
/// hand-off recorded it meanwhile: the caller applies the receipt itself, then settles it.
pub async fn hold(
    db: impl Into<Db<'_>>,
    telco_ref: &str,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> Result<Option<String>> {
    let row = db
        .into()
        .fetch_one(
            "INSERT INTO carrier_refs (telco_ref, early_status, early_error, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (telco_ref) DO UPDATE
                SET early_status = excluded.early_status, early_error = excluded.early_error
             RETURNING msg_id",
            &[
                Arg::from(telco_ref),
                Arg::from(status),
                Arg::from(error),
                Arg::from(now),
            ],
        )
        .await?;
    row.get(0)
}

/// Waiting receipts whose message is known now (a crash between a hand-off's commit and
/// the receipt's application leaves them), oldest first.
pub async fn ripe(db: impl Into<Db<'_>>, limit: i64) -> Result<Vec<Early>> {
    let rows = db
        .into()
        .fetch(
            "SELECT telco_ref, msg_id, early_status, early_error FROM carrier_refs
             WHERE early_status IS NOT NULL AND msg_id IS NOT NULL
             ORDER BY created_at LIMIT $1",
            &[Arg::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Early {
                telco_ref: row.get(0)?,
                msg_id: row.get(1)?,
                status: row.get(2)?,
                error: row.get(3)?,
            })
        })
        .collect()
}

/// The receipts of `telco_refs` are applied: nothing waits for them any more.
pub async fn settle(db: impl Into<Db<'_>>, telco_refs: &[&str]) -> Result<()> {
    let mut db = db.into();
    for chunk in telco_refs.chunks(CHUNK) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let args: Vec<Arg> = chunk.iter().map(|r| Arg::from(*r)).collect();
        db.execute(
            &format!(
                "UPDATE carrier_refs SET early_status = NULL, early_error = NULL
                 WHERE telco_ref IN ({})",
                marks.join(", ")
            ),
            &args,
        )
        .await?;
    }
    Ok(())
}

/// Drops receipts that waited since before `before` for a reference no hand-off recorded:
/// they were for messages that are not ours, or whose hand-off was never recorded (an
/// outcome that became `unknown`). Returns how many.
pub async fn forget_orphans(db: impl Into<Db<'_>>, before: i64) -> Result<u64> {
    db.into()
        .execute(
            "DELETE FROM carrier_refs
             WHERE early_status IS NOT NULL AND msg_id IS NULL AND created_at < $1",
            &[Arg::from(before)],
        )
        .await
}
