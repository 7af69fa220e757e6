//! `mids` across tenants: for the server's own work and the operator only.

use crate::mids::{AgentPrincipal, COLUMNS, Mid};
use crate::{Arg, Conn, CrossTenant, Db, Result};

/// Operator lookups (kill-switch targets): the admin addresses any MID.
pub async fn by_id(_scope: &impl CrossTenant, conn: &mut Conn, id: &str) -> Result<Option<Mid>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mobile_identities WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Carrier-side lookup (inbound traffic): the live MID holding this number, if any. At most
/// one MID per number is not released (unique partial index `mobile_identities_live_number`).
pub async fn by_phone_number(
    _scope: &impl CrossTenant,
    conn: &mut Conn,
    phone_number: &str,
) -> Result<Option<Mid>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mobile_identities WHERE phone_number = $1 AND status <> 'released'"
    ))
    .bind(phone_number)
    .fetch_optional(conn)
    .await?)
}

pub async fn agent_by_token_hash(
    _scope: &impl CrossTenant,
    db: impl Into<Db<'_>>,
    token_hash: &str,
) -> Result<Option<AgentPrincipal>> {
    let rows = db
        .into()
        .fetch(
            "SELECT t.id, t.token_prefix, t.created_at, a.id, a.status, m.id, m.status
             FROM agent_tokens t
             JOIN mobile_identities m ON m.id = t.mid_id AND m.account_id = t.account_id
             JOIN accounts a ON a.id = t.account_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
            &[Arg::from(token_hash)],
        )
        .await?;
    rows.first()
        .map(|row| {
            Ok(AgentPrincipal {
                token_id: row.get(0)?,
                token_prefix: row.get(1)?,
                token_created_at: row.get(2)?,
                account_id: row.get(3)?,
                account_status: row.get(4)?,
                mid_id: row.get(5)?,
                mid_status: row.get(6)?,
            })
        })
        .transpose()
}
