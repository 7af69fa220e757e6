//! SIM requests, offers, customer data and contracts: the rows behind the six contracting steps.

use crate::AccountId;
use crate::page::{self, Page, PageRequest};
use crate::{Conn, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SimRequest {
    pub id: String,
    pub account_id: String,
    pub status: String,
    pub country: String,
    pub sim_type: String,
    /// JSON array.
    pub capabilities: String,
    /// JSON object `{name, purpose}`.
    pub agent: String,
    /// JSON object.
    pub commercial_constraints: String,
    pub reason: Option<String>,
    pub offer_id: Option<String>,
    pub customer_id: Option<String>,
    pub contract_id: Option<String>,
    pub mid_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const SIMREQ_COLUMNS: &str = "id, account_id, status, country, sim_type, capabilities, agent, commercial_constraints, reason, offer_id, customer_id, contract_id, mid_id, created_at, updated_at";

pub async fn insert_sim_request(conn: &mut Conn, r: &SimRequest) -> Result<()> {
    sqlx::query(
        "INSERT INTO sim_requests (id, account_id, status, country, sim_type, capabilities, agent,
                                   commercial_constraints, reason, offer_id, customer_id, contract_id,
                                   mid_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&r.id)
    .bind(&r.account_id)
    .bind(&r.status)
    .bind(&r.country)
    .bind(&r.sim_type)
    .bind(&r.capabilities)
    .bind(&r.agent)
    .bind(&r.commercial_constraints)
    .bind(&r.reason)
    .bind(&r.offer_id)
    .bind(&r.customer_id)
    .bind(&r.contract_id)
    .bind(&r.mid_id)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn sim_request(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
) -> Result<Option<SimRequest>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SIMREQ_COLUMNS} FROM sim_requests WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn list_sim_requests(
    conn: &mut Conn,
    account_id: &AccountId,
    req: &PageRequest,
) -> Result<Page<SimRequest>> {
    let rows: Vec<SimRequest> = sqlx::query_as(&format!(
        "SELECT {SIMREQ_COLUMNS} FROM sim_requests WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    ))
    .bind(account_id.as_str())
    .bind(page::cursor_bound(req))
    .bind(req.limit + 1)
    .fetch_all(conn)
    .await?;
    Ok(page::finish(rows, req.limit, |r| &r.id))
}

/// Compare-and-set of the status; false when the request was no longer in `from`.
pub async fn transition_sim_request(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    from: &str,
    to: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sim_requests SET status = $4, reason = COALESCE($5, reason), updated_at = $6
         WHERE account_id = $1 AND id = $2 AND status = $3",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records which offer, customer, contract or MID belongs to the request.
pub async fn link_sim_request(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    column: SimRequestLink,
    value: &str,
) -> Result<()> {
    let col = match column {
        SimRequestLink::Offer => "offer_id",
        SimRequestLink::Customer => "customer_id",
        SimRequestLink::Contract => "contract_id",
        SimRequestLink::Mid => "mid_id",
    };
    sqlx::query(&format!(
        "UPDATE sim_requests SET {col} = $3 WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum SimRequestLink {
    Offer,
    Customer,
    Contract,
    Mid,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Offer {
    pub id: String,
    pub account_id: String,
    pub sim_request_id: String,
    pub status: String,
    pub country: String,
    pub sim_type: String,
    pub capabilities: String,
    pub monthly_price: i64,
    pub setup_fee: i64,
    pub currency: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub accepted_at: Option<i64>,
}

const OFFER_COLUMNS: &str = "id, account_id, sim_request_id, status, country, sim_type, capabilities, monthly_price, setup_fee, currency, expires_at, created_at, accepted_at";

pub async fn insert_offer(conn: &mut Conn, o: &Offer) -> Result<()> {
    sqlx::query(
        "INSERT INTO offers (id, account_id, sim_request_id, status, country, sim_type, capabilities,
                             monthly_price, setup_fee, currency, expires_at, created_at, accepted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&o.id)
    .bind(&o.account_id)
    .bind(&o.sim_request_id)
    .bind(&o.status)
    .bind(&o.country)
    .bind(&o.sim_type)
    .bind(&o.capabilities)
    .bind(o.monthly_price)
    .bind(o.setup_fee)
    .bind(&o.currency)
    .bind(o.expires_at)
    .bind(o.created_at)
    .bind(o.accepted_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn offer(conn: &mut Conn, account_id: &AccountId, id: &str) -> Result<Option<Offer>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OFFER_COLUMNS} FROM offers WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_offer_status(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    from: &str,
    to: &str,
    accepted_at: Option<i64>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE offers SET status = $4, accepted_at = COALESCE($5, accepted_at)
         WHERE account_id = $1 AND id = $2 AND status = $3",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(accepted_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Customer {
    pub id: String,
    pub account_id: String,
    pub sim_request_id: Option<String>,
    pub legal_name: String,
    pub tax_id: String,
    pub billing_email: String,
    pub address: String,
    pub representative_name: String,
    pub representative_phone: Option<String>,
    pub created_at: i64,
}

const CUSTOMER_COLUMNS: &str = "id, account_id, sim_request_id, legal_name, tax_id, billing_email, address, representative_name, representative_phone, created_at";

pub async fn insert_customer(conn: &mut Conn, c: &Customer) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers (id, account_id, sim_request_id, legal_name, tax_id, billing_email, address,
                                representative_name, representative_phone, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&c.id)
    .bind(&c.account_id)
    .bind(&c.sim_request_id)
    .bind(&c.legal_name)
    .bind(&c.tax_id)
    .bind(&c.billing_email)
    .bind(&c.address)
    .bind(&c.representative_name)
    .bind(&c.representative_phone)
    .bind(c.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn customer(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
) -> Result<Option<Customer>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Contract {
    pub id: String,
    pub account_id: String,
    pub sim_request_id: String,
    pub offer_id: String,
    pub customer_id: String,
    pub status: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub signed_at: Option<i64>,
    pub signature_method: Option<String>,
}

const CONTRACT_COLUMNS: &str = "id, account_id, sim_request_id, offer_id, customer_id, status, created_at, expires_at, signed_at, signature_method";

pub async fn insert_contract(
    conn: &mut Conn,
    c: &Contract,
    signing_token_hash: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO contracts (id, account_id, sim_request_id, offer_id, customer_id, status,
                                signing_token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&c.id)
    .bind(&c.account_id)
    .bind(&c.sim_request_id)
    .bind(&c.offer_id)
    .bind(&c.customer_id)
    .bind(&c.status)
    .bind(signing_token_hash)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn contract(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
) -> Result<Option<Contract>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id.as_str())
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The public signing page knows no account: the contract id and the token's hash together
/// are the capability. Both must match.
pub async fn contract_by_signing_token(
    conn: &mut Conn,
    id: &str,
    token_hash: &str,
) -> Result<Option<Contract>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE id = $1 AND signing_token_hash = $2"
    ))
    .bind(id)
    .bind(token_hash)
    .fetch_optional(conn)
    .await?)
}

pub async fn set_contract_status(
    conn: &mut Conn,
    account_id: &AccountId,
    id: &str,
    from: &str,
    to: &str,
    signed: Option<(i64, &str)>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE contracts SET status = $4, signed_at = COALESCE($5, signed_at),
                              signature_method = COALESCE($6, signature_method)
         WHERE account_id = $1 AND id = $2 AND status = $3",
    )
    .bind(account_id.as_str())
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(signed.map(|s| s.0))
    .bind(signed.map(|s| s.1))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
