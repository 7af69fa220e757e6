//! Who is calling. Each credential level resolves to its own caller type; a credential of one
//! level never resolves at another (PROTOCOL §1). Services take these types, so the tenant
//! always comes from the credential, never from the request.

use ami_core::secret;
use ami_store::settings;
use ami_store::system::{accounts, mids};
use ami_store::{AccountId, MidId, Operator};

use crate::{Error, Result, Services};

/// An authenticated customer (level 1). Its [`AccountId`] can only come from
/// [`Services::authenticate_customer`]: the tenant of every use case it calls.
#[derive(Debug, Clone)]
pub struct CustomerCaller {
    pub account_id: AccountId,
}

/// An authenticated agent (level 2), bound to one MID. Its ids can only come from
/// [`Services::authenticate_agent`].
#[derive(Debug, Clone)]
pub struct AgentCaller {
    pub account_id: AccountId,
    pub mid_id: MidId,
    pub mid_status: String,
    pub token_prefix: String,
    pub token_created_at: i64,
}

/// The operator: the admin key matched ([`Services::authenticate_admin`]), or the console
/// ([`Services::console`]). It carries the [`Operator`] proof that the operator's own paths
/// need to name an account ([`AccountId::operator_chosen`]) or to act across tenants.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    operator: Operator,
}

impl AdminCaller {
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// The account an operator request names.
    pub fn chosen_account(&self, id: &str) -> AccountId {
        AccountId::operator_chosen(&self.operator, id)
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "authentication: the admin key matched, or the caller holds the console"
    )]
    fn authenticated() -> AdminCaller {
        AdminCaller {
            operator: ami_tenant::mint::operator(),
        }
    }
}

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
        Actor::Customer(self.account_id.to_string())
    }
}

/// The account of a credential that just authenticated: the one place a customer's or an
/// agent's [`AccountId`] is made.
#[expect(
    clippy::disallowed_methods,
    reason = "authentication: the credential's row names its account"
)]
fn principal_account(id: &str) -> AccountId {
    ami_tenant::mint::account_id(id)
}

/// The MID an agent token that just authenticated is bound to.
#[expect(
    clippy::disallowed_methods,
    reason = "authentication: the agent token's row names its MID"
)]
fn principal_mid(id: &str) -> MidId {
    ami_tenant::mint::mid_id(id)
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
        let account = accounts::by_key_hash(self.system(), &mut conn, &hash)
            .await?
            .ok_or_else(refused)?;
        if account.status != "active" {
            return Err(suspended());
        }
        Ok(CustomerCaller {
            account_id: principal_account(&account.id),
        })
    }

    pub async fn authenticate_agent(&self, bearer: Option<&str>) -> Result<AgentCaller> {
        let refused = || Error::unauthorized("invalid_agent_token");
        let token = bearer
            .filter(|t| secret::is_agent_token(t))
            .ok_or_else(refused)?;
        let hash = secret::hash(token);
        let mut conn = self.store.read_conn().await?;
        let p = mids::agent_by_token_hash(self.system(), &mut conn, &hash)
            .await?
            .ok_or_else(refused)?;
        if p.account_status != "active" {
            return Err(suspended());
        }
        Ok(AgentCaller {
            account_id: principal_account(&p.account_id),
            mid_id: principal_mid(&p.mid_id),
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

    /// Services for the console's one-shot commands (`ami admin ...`), with the operator
    /// principal: whoever runs them holds the database itself, so they act as the operator
    /// without the admin key.
    pub fn console(
        store: ami_store::Store,
        settings: crate::Settings,
        clock: std::sync::Arc<dyn crate::Clock>,
    ) -> (Services, AdminCaller) {
        (
            Services::new(store, settings, clock, String::new()),
            AdminCaller::authenticated(),
        )
    }

    pub fn authenticate_admin(&self, bearer: Option<&str>) -> Result<AdminCaller> {
        let given = secret::hash(bearer.unwrap_or_default());
        if bearer.is_some() && secret::ct_eq(given.as_bytes(), self.admin_key_hash.as_bytes()) {
            Ok(AdminCaller::authenticated())
        } else {
            Err(Error::unauthorized("unauthorized_admin"))
        }
    }
}

/// The operator key in force, and the key generated by this start if there is one. A
/// configured key wins (its hash is recorded); otherwise the stored hash is used; on a first
/// start without either, a key is generated and handed to `show`, and only then is its hash
/// stored: a start that fails before showing it stores nothing, so the next start generates
/// (and shows) one again.
pub async fn bootstrap_admin_key(
    store: &ami_store::Store,
    configured: Option<&str>,
    show: impl FnOnce(&str),
) -> Result<(String, Option<String>)> {
    if let Some(key) = configured.filter(|k| !k.is_empty()) {
        let hash = secret::hash(key);
        let mut tx = store.begin().await?;
        settings::set(&mut tx, settings::ADMIN_KEY_HASH, &hash).await?;
        ami_store::commit(tx).await?;
        return Ok((hash, None));
    }
    let mut conn = store.reader().await?;
    let stored = settings::get(&mut conn, settings::ADMIN_KEY_HASH).await?;
    drop(conn);
    if let Some(hash) = stored {
        return Ok((hash, None));
    }
    let key = secret::new_admin_key();
    show(&key);
    let mut tx = store.begin().await?;
    // Another server starting on the same database may have stored its own key meanwhile.
    let hash =
        settings::get_or_insert(&mut tx, settings::ADMIN_KEY_HASH, &secret::hash(&key)).await?;
    ami_store::commit(tx).await?;
    if hash == secret::hash(&key) {
        Ok((hash, Some(key)))
    } else {
        tracing::warn!(
            "the admin key shown was not stored: another server stored its own first, use that one"
        );
        Ok((hash, None))
    }
}
