//! What the wire shows of each resource. Secrets appear only in the `Created*`/`Rotated*`
//! views, which exist exactly once per credential.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use ami_core::time::rfc3339;
use ami_store::{accounts, audit, contracting, mids, numbers};

fn ts(ms: i64) -> String {
    rfc3339(ms)
}

fn json_or_null(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub billing_email: Option<String>,
    pub api_key_prefix: String,
    pub created_at: String,
    pub suspended_at: Option<String>,
}

impl From<accounts::Account> for AccountView {
    fn from(a: accounts::Account) -> Self {
        Self {
            id: a.id,
            name: a.name,
            status: a.status,
            billing_email: a.billing_email,
            api_key_prefix: a.key_prefix,
            created_at: ts(a.created_at),
            suspended_at: a.suspended_at.map(ts),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccount {
    pub id: String,
    pub name: String,
    /// Shown once; only its hash is kept.
    pub api_key: String,
    pub api_key_hint: String,
    pub billing_email: Option<String>,
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub id: String,
    pub api_key: String,
    pub api_key_hint: String,
    pub rotated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountStatus {
    pub id: String,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimRequestView {
    pub id: String,
    pub account_id: String,
    pub status: String,
    pub country: String,
    pub sim_type: String,
    pub capabilities: Vec<String>,
    #[schema(value_type = Object)]
    pub agent: Value,
    #[schema(value_type = Object)]
    pub commercial_constraints: Value,
    /// Why the request reached its status, when the transition gave a reason (a cancel's
    /// own `reason`, a failure's cause): the protocol's name for it.
    pub status_reason: Option<String>,
    /// The same value as `status_reason`, under the name earlier versions of this server used.
    pub reason: Option<String>,
    pub offer_id: Option<String>,
    pub customer_id: Option<String>,
    pub contract_id: Option<String>,
    pub mobile_identity_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn string_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

impl From<contracting::SimRequest> for SimRequestView {
    fn from(r: contracting::SimRequest) -> Self {
        Self {
            capabilities: string_list(&r.capabilities),
            agent: json_or_null(&r.agent),
            commercial_constraints: json_or_null(&r.commercial_constraints),
            id: r.id,
            account_id: r.account_id,
            status: r.status,
            country: r.country,
            sim_type: r.sim_type,
            status_reason: r.reason.clone(),
            reason: r.reason,
            offer_id: r.offer_id,
            customer_id: r.customer_id,
            contract_id: r.contract_id,
            mobile_identity_id: r.mid_id,
            created_at: ts(r.created_at),
            updated_at: ts(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub id: String,
    pub sim_request_id: String,
    /// `offer_created`, `offer_accepted`, `expired` or `cancelled`.
    pub status: String,
    pub country: String,
    pub sim_type: String,
    pub capabilities: Vec<String>,
    #[schema(value_type = f64)]
    pub monthly_price: Value,
    #[schema(value_type = f64)]
    pub setup_fee: Value,
    pub currency: String,
    pub requires_contract: bool,
    pub requires_customer_data: bool,
    pub expires_at: String,
    pub created_at: String,
    pub accepted_at: Option<String>,
    pub account_id: String,
}

impl OfferView {
    /// An offer past its expiry reads as `expired` even before anything rewrites the row.
    pub fn at(o: contracting::Offer, now: i64) -> Self {
        let status = if o.status == "offer_created" && now >= o.expires_at {
            "expired".to_owned()
        } else {
            o.status
        };
        Self {
            capabilities: string_list(&o.capabilities),
            id: o.id,
            sim_request_id: o.sim_request_id,
            status,
            country: o.country,
            sim_type: o.sim_type,
            monthly_price: ami_core::money::to_json(o.monthly_price),
            setup_fee: ami_core::money::to_json(o.setup_fee),
            currency: o.currency,
            requires_contract: true,
            requires_customer_data: true,
            expires_at: ts(o.expires_at),
            created_at: ts(o.created_at),
            accepted_at: o.accepted_at.map(ts),
            account_id: o.account_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimRequestCreated {
    pub sim_request: SimRequestView,
    pub offer: OfferView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub account_id: String,
    pub sim_request_id: Option<String>,
    pub legal_name: String,
    pub tax_id: String,
    pub billing_email: String,
    pub address: String,
    pub representative_name: String,
    pub representative_phone: Option<String>,
    pub created_at: String,
}

impl From<contracting::Customer> for CustomerView {
    fn from(c: contracting::Customer) -> Self {
        Self {
            id: c.id,
            account_id: c.account_id,
            sim_request_id: c.sim_request_id,
            legal_name: c.legal_name,
            tax_id: c.tax_id,
            billing_email: c.billing_email,
            address: c.address,
            representative_name: c.representative_name,
            representative_phone: c.representative_phone,
            created_at: ts(c.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDataSubmitted {
    pub sim_request: SimRequestView,
    pub customer: CustomerView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractView {
    pub id: String,
    /// `signature_pending`, `signed`, `expired` or `cancelled`.
    pub status: String,
    pub offer_id: String,
    pub customer_id: String,
    pub sim_request_id: String,
    /// The signing page link with its token, for the owning customer.
    pub signature_url: Option<String>,
    /// The token of the signing page, for the owning customer to hand to the representative.
    pub signing_token: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub signed_at: Option<String>,
    pub account_id: String,
}

impl ContractView {
    /// `signing` is the link and the token, shown only to the owning customer.
    pub fn at(c: contracting::Contract, now: i64, signing: Option<(String, String)>) -> Self {
        let status = if c.status == "signature_pending" && now >= c.expires_at {
            "expired".to_owned()
        } else {
            c.status
        };
        let (signature_url, signing_token) = signing.unzip();
        Self {
            id: c.id,
            status,
            offer_id: c.offer_id,
            signature_url,
            signing_token,
            customer_id: c.customer_id,
            sim_request_id: c.sim_request_id,
            created_at: ts(c.created_at),
            expires_at: ts(c.expires_at),
            signed_at: c.signed_at.map(ts),
            account_id: c.account_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MidView {
    pub id: String,
    pub account_id: String,
    pub phone_number: String,
    pub country: String,
    pub capabilities: Vec<String>,
    /// `active`, `suspended` or `released`.
    pub status: String,
    pub inbound_sip_uri: Option<String>,
    pub sim_request_id: Option<String>,
    pub contract_id: Option<String>,
    pub created_at: String,
    pub released_at: Option<String>,
}

impl From<mids::Mid> for MidView {
    fn from(m: mids::Mid) -> Self {
        Self {
            capabilities: string_list(&m.capabilities),
            id: m.id,
            account_id: m.account_id,
            phone_number: m.phone_number,
            country: m.country,
            status: m.status,
            inbound_sip_uri: m.inbound_sip_uri,
            sim_request_id: m.sim_request_id,
            contract_id: m.contract_id,
            created_at: ts(m.created_at),
            released_at: m.released_at.map(ts),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MidList {
    pub mobile_identities: Vec<MidView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivatedMid {
    #[serde(flatten)]
    pub mid: MidView,
    pub mobile_identity_id: String,
    /// Shown once; only its hash is kept.
    pub agent_token: String,
    pub agent_token_hint: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedToken {
    pub mid: String,
    pub agent_token: String,
    pub agent_token_hint: String,
    pub revoked_previous: u64,
    pub rotated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundConfig {
    pub mid: String,
    pub inbound_sip_uri: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    pub mid: String,
    #[schema(value_type = Object)]
    pub limits: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSelf {
    pub mobile_identity_id: String,
    pub customer_id: String,
    pub phone_number: String,
    pub capabilities: Vec<String>,
    pub token_prefix: String,
    pub token_created_at: String,
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Actor {
    /// `customer`, `agent`, `admin`, `telco` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub at: String,
    pub action: String,
    pub actor: Actor,
    pub account_id: Option<String>,
    pub entity_type: String,
    pub entity_id: String,
    pub mid: Option<String>,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<audit::Event> for EventView {
    fn from(e: audit::Event) -> Self {
        Self {
            data: json_or_null(&e.data),
            id: e.id,
            at: ts(e.at),
            action: e.action,
            actor: Actor {
                kind: e.actor_type,
                id: e.actor_id,
            },
            account_id: e.account_id,
            entity_type: e.entity_type,
            entity_id: e.entity_id,
            mid: e.mid,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
    pub count: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NumberView {
    pub id: String,
    pub phone_number: String,
    pub country: String,
    /// `available`, `assigned`, `quarantined` or `disabled`.
    pub status: String,
    pub mid_id: Option<String>,
    pub quarantined_until: Option<String>,
    pub created_at: String,
    /// `operator` (loaded here), `sandbox` (the sandbox's fictional pool) or `demo`.
    pub source: String,
    /// What the number carries; null: everything its country offers.
    pub capabilities: Option<Vec<String>>,
}

impl From<numbers::Number> for NumberView {
    fn from(n: numbers::Number) -> Self {
        let source = match n.pool.as_str() {
            "main" => "operator",
            other => other,
        };
        Self {
            source: source.to_owned(),
            capabilities: n.capabilities.as_deref().map(string_list),
            id: n.id,
            phone_number: n.phone_number,
            country: n.country,
            status: n.status,
            mid_id: n.mid_id,
            quarantined_until: n.quarantined_until.map(ts),
            created_at: ts(n.created_at),
        }
    }
}

/// How many numbers are in each status (for the list's country filter, whatever its status
/// filter).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct NumberCounts {
    pub available: i64,
    pub assigned: i64,
    pub quarantined: i64,
    pub disabled: i64,
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NumberList {
    pub numbers: Vec<NumberView>,
    pub count: usize,
    pub next_cursor: Option<String>,
    pub counts: NumberCounts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NumbersLoaded {
    /// The country given, when one was.
    pub country: Option<String>,
    /// How many numbers the request gave (`count` under the name earlier versions used).
    pub requested: usize,
    /// How many numbers the request gave.
    pub count: usize,
    /// New numbers now in the inventory.
    pub added: u64,
    /// Numbers the inventory already held, left as they were.
    pub skipped: u64,
    /// The entries that are not a valid number (of the country, when one was given) of a
    /// country in the catalogue, as given (long ones cut): nothing was stored for them.
    pub invalid: Vec<String>,
}
