//! The voice configuration of a mobile identity: where the agent takes its calls, and the
//! secret that signs what the server sends there.
//!
//! Every function takes the account and puts it in the WHERE clause (for the upserts, in the
//! conflict condition), so another account's MID is a plain miss.

use std::fmt;

use crate::AccountId;
use crate::{Conn, Result};

#[derive(Clone, sqlx::FromRow)]
pub struct VoiceConfig {
    pub mid_id: String,
    pub account_id: String,
    pub voice_url: Option<String>,
    /// Sealed (`crate::sealed`, `VOICE_SIGNING_SECRET`): the services seal it before a
    /// write and open it after a read; it signs every call set-up (PROTOCOL §10).
    pub signing_secret: Option<String>,
    pub signing_secret_prefix: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Never prints the secret, so a stray `{:?}` cannot leak it into a log.
impl fmt::Debug for VoiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoiceConfig")
            .field("mid_id", &self.mid_id)
            .field("account_id", &self.account_id)
            .field("voice_url", &self.voice_url)
            .field("signing_secret_prefix", &self.signing_secret_prefix)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A secret to store (already sealed), with its display prefix.
#[derive(Clone, Copy)]
pub struct NewSecret<'a> {
    pub secret: &'a str,
    pub prefix: &'a str,
}

const COLUMNS: &str =
    "mid_id, account_id, voice_url, signing_secret, signing_secret_prefix, created_at, updated_at";

pub async fn get(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
) -> Result<Option<VoiceConfig>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM voice_configs WHERE account_id = $1 AND mid_id = $2"
    ))
    .bind(account_id.as_str())
    .bind(mid_id)
    .fetch_optional(conn)
    .await?)
}

/// Sets (or, with `None`, clears) the voice URL. A secret already stored is kept; `secret`
/// is stored only when there is none yet, so the caller can tell whether its secret was
/// taken by comparing it with the one returned. `None` when the MID's row belongs to
/// another account.
pub async fn set_url(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    voice_url: Option<&str>,
    secret: Option<NewSecret<'_>>,
    now: i64,
) -> Result<Option<VoiceConfig>> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO voice_configs ({COLUMNS}) VALUES ($2, $1, $3, $4, $5, $6, $6)
         ON CONFLICT (mid_id) DO UPDATE SET voice_url = excluded.voice_url,
             signing_secret = COALESCE(voice_configs.signing_secret, excluded.signing_secret),
             signing_secret_prefix = CASE WHEN voice_configs.signing_secret IS NULL
                 THEN excluded.signing_secret_prefix ELSE voice_configs.signing_secret_prefix END,
             updated_at = excluded.updated_at
         WHERE voice_configs.account_id = excluded.account_id
         RETURNING {COLUMNS}"
    ))
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(voice_url)
    .bind(secret.map(|s| s.secret))
    .bind(secret.map(|s| s.prefix))
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// Replaces the signing secret (the old one is gone at once); the URL is kept. `None` when
/// the MID's row belongs to another account.
pub async fn replace_secret(
    conn: &mut Conn,
    account_id: &AccountId,
    mid_id: &str,
    secret: NewSecret<'_>,
    now: i64,
) -> Result<Option<VoiceConfig>> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO voice_configs ({COLUMNS}) VALUES ($2, $1, NULL, $3, $4, $5, $5)
         ON CONFLICT (mid_id) DO UPDATE SET signing_secret = excluded.signing_secret,
             signing_secret_prefix = excluded.signing_secret_prefix,
             updated_at = excluded.updated_at
         WHERE voice_configs.account_id = excluded.account_id
         RETURNING {COLUMNS}"
    ))
    .bind(account_id.as_str())
    .bind(mid_id)
    .bind(secret.secret)
    .bind(secret.prefix)
    .bind(now)
    .fetch_optional(conn)
    .await?)
}
