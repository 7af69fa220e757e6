//! Who is calling. Each credential level resolves to its own caller type; a credential of one
//! level never resolves at another (PROTOCOL §1). Services take these types, so the tenant
//! always comes from the credential, never from the request.

use ami_core::secret;
use ami_store::{accounts, mids, settings};

use crate::{Error, Result, Services};

/// An authenticated customer (level 1).
#[derive(Debug, Clone)]
pub struct CustomerCaller {
    pub account_id: String,
}

/// An authenticated agent (level 2), bound to one MID.
#[derive(Debug, Clone)]
pub struct AgentCaller {
    pub account_id: String,
    pub mid_id: String,
    pub mid_status: String,
    pub token_prefix: String,
    pub token_created_at: i64,
}

/// The operator.
#[derive(Debug, Clone)]
pub struct AdminCaller;

/// Who an audit event names.
#[derive(Debug, Clone)]
pub enum Actor {
    Admin,
    Customer(String),
    Agent { mid_id: String },
    Telco,
    System,
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Admin => "admin",
            Actor::Customer(_) => "customer",
            Actor::Agent { .. } => "agent",
            Actor::Telco => "telco",
            Actor::System => "system",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Actor::Admin => "admin",
            Actor::Customer(account) => account,
            Actor::Agent { mid_id } => mid_id,
            Actor::Telco => "telco",
            Actor::System => "system",
        }
    }
}

impl CustomerCaller {
    pub fn actor(&self) -> Actor {
        Actor::Customer(self.account_id.clone())
    }
}

fn suspended() -> Error {
    Error::refused(403, "account_suspended", "the account is suspended")
}

impl Services {
    pub async fn authenticate_customer(&self, bearer: Option<&str>) -> Result<CustomerCaller> {
        let refused = || Error::unauthorized("unauthorized");
        // Any shape is looked up (the single-tenant `AMI_API_KEY` may predate the key format),
        // except the other levels' own formats.
        let key = bearer
            .filter(|k| !k.is_empty() && k.len() <= 256 && !secret::is_agent_token(k))
            .ok_or_else(refused)?;
        let hash = secret::hash(key);
        let mut conn = self.store.reader().await?;
        let account = accounts::by_key_hash(&mut conn, &hash)
            .await?
            .ok_or_else(refused)?;
        if account.status != "active" {
            return Err(suspended());
        }
        Ok(CustomerCaller {
            account_id: account.id,
        })
    }

    pub async fn authenticate_agent(&self, bearer: Option<&str>) -> Result<AgentCaller> {
        let refused = || Error::unauthorized("invalid_agent_token");
        let token = bearer
            .filter(|t| secret::is_agent_token(t))
            .ok_or_else(refused)?;
        let hash = secret::hash(token);
        let mut conn = self.store.read_conn().await?;
        let p = mids::agent_by_token_hash(&mut conn, &hash)
            .await?
            .ok_or_else(refused)?;
        if p.account_status != "active" {
            return Err(suspended());
        }
        Ok(AgentCaller {
            account_id: p.account_id,
            mid_id: p.mid_id,
            mid_status: p.mid_status,
            token_prefix: p.token_prefix,
            token_created_at: p.token_created_at,
        })
    }

    /// Whether a request's credential, of whatever level, still authenticates: the check a
    /// stored response must pass before it is replayed.
    pub async fn authenticate_any(&self, bearer: Option<&str>) -> Result<()> {
        if self.authenticate_admin(bearer).is_ok() {
            return Ok(());
        }
        match bearer {
            Some(b) if secret::is_agent_token(b) => self.authenticate_agent(bearer).await.map(drop),
            _ => self.authenticate_customer(bearer).await.map(drop),
        }
    }

    pub fn authenticate_admin(&self, bearer: Option<&str>) -> Result<AdminCaller> {
        let given = secret::hash(bearer.unwrap_or_default());
        if bearer.is_some() && secret::ct_eq(given.as_bytes(), self.admin_key_hash.as_bytes()) {
            Ok(AdminCaller)
        } else {
            Err(Error::unauthorized("unauthorized_admin"))
        }
    }
}

/// The operator key in force. A configured key wins (its hash is recorded); otherwise the
/// stored hash is used; on a first start without either, a key is generated and returned
/// so the caller can print it once.
pub async fn bootstrap_admin_key(
    store: &ami_store::Store,
    configured: Option<&str>,
) -> Result<(String, Option<String>)> {
    let mut tx = store.begin().await?;
    let result = match configured.filter(|k| !k.is_empty()) {
        Some(key) => {
            let hash = secret::hash(key);
            settings::set(&mut tx, settings::ADMIN_KEY_HASH, &hash).await?;
            (hash, None)
        }
        None => match settings::get(&mut tx, settings::ADMIN_KEY_HASH).await? {
            Some(hash) => (hash, None),
            None => {
                let key = secret::new_admin_key();
                let hash =
                    settings::get_or_insert(&mut tx, settings::ADMIN_KEY_HASH, &secret::hash(&key))
                        .await?;
                let fresh = (hash == secret::hash(&key)).then_some(key);
                (hash, fresh)
            }
        },
    };
    ami_store::commit(tx).await?;
    Ok(result)
}
