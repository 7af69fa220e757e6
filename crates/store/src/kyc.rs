//! KYC checks of customers' representatives and their ID documents.
//!
//! Every function but [`by_token_hash`] takes the account and puts it in the WHERE clause;
//! what the operator and the purge do across tenants lives in `system::kyc`.

use std::fmt;

use crate::AccountId;
use crate::{Conn, Result};

#[derive(Clone, sqlx::FromRow)]
pub struct KycCheck {
    pub id: String,
    pub account_id: String,
    pub sim_request_id: String,
    pub status: String,
    pub full_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub reason: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
    pub purged_at: Option<i64>,
}

/// Never prints the identity data, so a stray `{:?}` cannot put it in a log.
impl fmt::Debug for KycCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KycCheck")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("sim_request_id", &self.sim_request_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

pub(crate) const COLUMNS: &str = "id, account_id, sim_request_id, status, full_name, date_of_birth, nationality, document_type, document_number, reason, expires_at, created_at, updated_at, submitted_at, decided_at, purged_at";

/// What the representative declares on the verification page.
pub struct Identity<'a> {
    pub full_name: &'a str,
    pub date_of_birth: &'a str,
    pub nationality: &'a str,
    pub document_type: &'a str,
    pub document_number: &'a str,
}

/// One image (or PDF) of the ID document, already checked.
pub struct NewDocument<'a> {
    pub side: &'a str,
    pub media_type: &'a str,
    pub sha256: &'a str,
    pub content: &'a [u8],
}

/// A stored document without its content.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DocumentMeta {
    pub side: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: i64,
}

pub async fn insert(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    sim_request_id: &str,
    token_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO kyc_checks (id, account_id, sim_request_id, token_hash, status, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6)",
    )
    .bind(id)
    .bind(account_id.as_str())
    .bind(sim_request_id)
    .bind(token_hash)
    .bind(expires_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest check of a SIM request.
pub async fn latest_for_request(
    conn: &mut Conn,
    account_id: &AccountId,
    sim_request_id: &str,
) -> Result<Option<KycCheck>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM kyc_checks WHERE account_id = $1 AND sim_request_id = $2
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(account_id.as_str())
    .bind(sim_request_id)
    .fetch_optional(conn)
    .await?)
}

pub async fn get(conn: &mut Conn, account_id: &AccountId, id: &str) -> Result<Option<KycCheck>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM kyc_checks WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The verification page knows no account: the token is the capability. The caller
/// compares the stored hash again in constant time.
pub async fn by_token_hash(
    conn: &mut Conn,
    token_hash: &str,
) -> Result<Option<(KycCheck, String)>> {
    let row: Option<KycWithHash> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, token_hash FROM kyc_checks WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.check, r.token_hash)))
}

#[derive(sqlx::FromRow)]
struct KycWithHash {
    #[sqlx(flatten)]
    check: KycCheck,
    token_hash: String,
}

/// A new link for a pending check (the old one stops working); false when it is no longer
/// pending.
pub async fn replace_token(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    token_hash: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE kyc_checks SET token_hash = $3, updated_at = $4
         WHERE account_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(token_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// pending → submitted with the declared identity, once: false when the check was no
/// longer pending or its link had expired (a concurrent submission won).
pub async fn record_submission(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    identity: &Identity<'_>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE kyc_checks SET status = 'submitted', full_name = $3, date_of_birth = $4,
             nationality = $5, document_type = $6, document_number = $7, submitted_at = $8,
             updated_at = $8
         WHERE account_id = $1 AND id = $2 AND status = 'pending' AND expires_at > $8",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(identity.full_name)
    .bind(identity.date_of_birth)
    .bind(identity.nationality)
    .bind(identity.document_type)
    .bind(identity.document_number)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn insert_document(
    conn: &mut Conn,
    account_id: &AccountId,
    kyc_id: &str,
    doc: &NewDocument<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO kyc_documents (kyc_id, side, account_id, media_type, size_bytes, sha256, content, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(kyc_id)
    .bind(doc.side)
    .bind(account_id.as_str())
    .bind(doc.media_type)
    .bind(doc.content.len() as i64)
    .bind(doc.sha256)
    .bind(doc.content)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// submitted → verified or rejected; false when it was not submitted.
pub async fn decide(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    to: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE kyc_checks SET status = $3, reason = $4, decided_at = $5, updated_at = $5
         WHERE account_id = $1 AND id = $2 AND status = 'submitted'",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(to)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The documents of a check, without their content.
pub async fn documents(
    conn: &mut Conn,
    account_id: &AccountId,
    kyc_id: &str,
) -> Result<Vec<DocumentMeta>> {
    Ok(sqlx::query_as(
        "SELECT side, media_type, size_bytes, sha256, created_at FROM kyc_documents
         WHERE account_id = $1 AND kyc_id = $2 ORDER BY side DESC",
    )
    .bind(account_id.as_str())
    .bind(kyc_id)
    .fetch_all(conn)
    .await?)
}

/// One document's media type and content.
pub async fn document_content(
    conn: &mut Conn,
    account_id: &AccountId,
    kyc_id: &str,
    side: &str,
) -> Result<Option<(String, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT media_type, content FROM kyc_documents
         WHERE account_id = $1 AND kyc_id = $2 AND side = $3",
    )
    .bind(account_id.as_str())
    .bind(kyc_id)
    .bind(side)
    .fetch_optional(conn)
    .await?)
}
