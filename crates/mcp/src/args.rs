//! Tool arguments: JSON-schema'd (schemars) and converted into the very input types the REST
//! handlers hand to the use cases. Ids that REST takes from the path are fields here.
//!
//! Every struct refuses unknown fields (`additionalProperties: false`), as REST bodies do.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use ami_services::calls::PlaceCall;
use ami_services::contracting::{
    ActivateInput, AgentInfo, CancelInput, CommercialConstraints, CustomerDataInput,
    CustomerFields, NewContract, NewSimRequest,
};
use ami_services::mids::InboundConfigInput;
use ami_services::policy_check::PolicyCheck;
use ami_services::sms::SendSms;
use ami_services::sms_preview::PreviewSms;

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Only the optional agent token, for agent tools without other arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentArgs {
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSimOfferArgs {
    /// ISO country code from ami.search_sim_options; default `ES`.
    pub country: Option<String>,
    /// `eSIM` (default) or `physical`.
    pub sim_type: Option<String>,
    /// Subset of `["sms", "voice"]`; default both.
    pub capabilities: Option<Vec<String>>,
    /// The name of the agent the number is for.
    pub agent_name: Option<String>,
    /// What the agent will use the number for.
    pub purpose: Option<String>,
    /// Highest acceptable monthly price; a dearer offer is rejected at once.
    pub max_monthly_price: Option<f64>,
    /// ISO 4217 code of max_monthly_price; default: the offer's own currency. There are no
    /// exchange rates: another currency than the offer's is refused (currency_mismatch).
    pub currency: Option<String>,
}

impl From<RequestSimOfferArgs> for NewSimRequest {
    fn from(a: RequestSimOfferArgs) -> Self {
        let agent = (a.agent_name.is_some() || a.purpose.is_some()).then_some(AgentInfo {
            name: a.agent_name,
            purpose: a.purpose,
        });
        let constraints = (a.max_monthly_price.is_some() || a.currency.is_some()).then_some(
            CommercialConstraints {
                max_monthly_price: a.max_monthly_price,
                currency: a.currency,
            },
        );
        NewSimRequest {
            country: a.country,
            sim_type: a.sim_type,
            capabilities: a.capabilities,
            agent,
            commercial_constraints: constraints,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferIdArgs {
    /// `offer_…`, from ami.request_sim_offer.
    pub offer_id: String,
}

/// The legal customer data of a SIM request.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerArgs {
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub billing_email: Option<String>,
    pub address: Option<String>,
    pub representative_name: Option<String>,
    /// E.164.
    pub representative_phone: Option<String>,
}

impl From<CustomerArgs> for CustomerFields {
    fn from(c: CustomerArgs) -> Self {
        CustomerFields {
            legal_name: c.legal_name,
            tax_id: c.tax_id,
            billing_email: c.billing_email,
            address: c.address,
            representative_name: c.representative_name,
            representative_phone: c.representative_phone,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitCustomerDataArgs {
    /// `simreq_…`, from ami.request_sim_offer.
    pub sim_request_id: String,
    /// The customer data as one object; or give the same fields flat.
    pub customer: Option<CustomerArgs>,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub billing_email: Option<String>,
    pub address: Option<String>,
    pub representative_name: Option<String>,
    /// E.164.
    pub representative_phone: Option<String>,
}

impl SubmitCustomerDataArgs {
    pub fn split(self) -> (String, CustomerDataInput) {
        let input = CustomerDataInput {
            customer: self.customer.map(CustomerFields::from),
            legal_name: self.legal_name,
            tax_id: self.tax_id,
            billing_email: self.billing_email,
            address: self.address,
            representative_name: self.representative_name,
            representative_phone: self.representative_phone,
        };
        (self.sim_request_id, input)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContractArgs {
    /// The accepted offer, `offer_…`.
    pub offer_id: String,
    /// The customer record, `customer_…`, from ami.submit_customer_data.
    pub customer_id: String,
}

impl From<CreateContractArgs> for NewContract {
    fn from(a: CreateContractArgs) -> Self {
        NewContract {
            offer_id: Some(a.offer_id),
            customer_id: Some(a.customer_id),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractIdArgs {
    /// `contract_…`, from ami.create_contract.
    pub contract_id: String,
}

impl From<ContractIdArgs> for ActivateInput {
    fn from(a: ContractIdArgs) -> Self {
        ActivateInput {
            contract_id: Some(a.contract_id),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MidArgs {
    /// `mid_…`, from ami.activate_sim_identity.
    pub mobile_identity_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequestArgs {
    /// `simreq_…`.
    pub sim_request_id: String,
    /// Why; default `cancelled_by_client`.
    pub reason: Option<String>,
}

impl CancelRequestArgs {
    pub fn split(self) -> (String, CancelInput) {
        (
            self.sim_request_id,
            CancelInput {
                reason: self.reason,
            },
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSmsArgs {
    /// Destination, E.164 (e.g. `+34600111222`); spaces, hyphens, dots and parentheses are
    /// removed first.
    pub to: String,
    /// The text, at most 1000 characters; long texts are sent in several segments.
    pub body: String,
    /// The most this message may cost, in EUR; a dearer one is refused (`over_max_price`).
    pub max_price_eur: Option<f64>,
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

impl From<SendSmsArgs> for SendSms {
    fn from(a: SendSmsArgs) -> Self {
        SendSms {
            to: Some(a.to),
            body: Some(a.body),
            max_price_eur: a.max_price_eur,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewSmsArgs {
    /// Destination, E.164: it decides the price.
    pub to: String,
    /// The text to preview.
    pub body: String,
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

impl From<PreviewSmsArgs> for PreviewSms {
    fn from(a: PreviewSmsArgs) -> Self {
        PreviewSms {
            to: Some(a.to),
            body: Some(a.body),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckPolicyArgs {
    /// `sms` or `call`.
    pub channel: String,
    /// Destination, E.164, as the send or call would name it.
    pub to: String,
    /// The SMS text (channel `sms`): it decides the cost.
    pub body: Option<String>,
    /// As on ami.send_sms (channel `sms`): the most the message may cost, in EUR.
    pub max_price_eur: Option<f64>,
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

impl From<CheckPolicyArgs> for PolicyCheck {
    fn from(a: CheckPolicyArgs) -> Self {
        PolicyCheck {
            channel: Some(a.channel),
            to: Some(a.to),
            body: a.body,
            max_price_eur: a.max_price_eur,
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// 1 to 200, default 20.
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<i64>,
    /// `outbound` or `inbound`; both when left out.
    pub direction: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCallArgs {
    /// Destination, E.164.
    pub to: String,
    /// Where the answered call's audio is bridged: `sip:user@host[:port]` or `sips:…`.
    pub callback_sip_uri: String,
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

impl From<PlaceCallArgs> for PlaceCall {
    fn from(a: PlaceCallArgs) -> Self {
        PlaceCall {
            to: Some(a.to),
            callback_sip_uri: Some(a.callback_sip_uri),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallIdArgs {
    /// `call_…`, from ami.place_call or ami.list_calls.
    pub call_id: String,
    /// The agent token (`amiagt_live_…`), instead of the `Authorization` header; when both
    /// are given they must be the same token.
    #[allow(dead_code)] // Declared for the schema; `tools::AgentToken` reads it first.
    pub agent_token: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundSipUriArgs {
    /// `mid_…`.
    pub mobile_identity_id: String,
    /// `sip:user@host[:port][;params]` or `sips:…`; null or "" clears it.
    pub inbound_sip_uri: Option<String>,
}

impl InboundSipUriArgs {
    pub fn split(self) -> (String, InboundConfigInput) {
        (
            self.mobile_identity_id,
            InboundConfigInput {
                inbound_sip_uri: self.inbound_sip_uri,
            },
        )
    }
}

/// The schema of a limits patch. The patch itself goes to the use case as given, so its
/// validation and refusals (`invalid_<field>`, `unknown_field`) are exactly the REST ones.
fn limits_patch_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use ami_core::limits::{
        MAX_BUDGET_EUR, MAX_COUNT, MAX_PREFIXES, MAX_RATE_BURST, MAX_RATE_PER_SECOND,
    };
    let count = |what: &str| json!({"type": "integer", "minimum": 0, "maximum": MAX_COUNT, "description": what});
    let schema = json!({
        "type": "object",
        "description": "Any subset of the limit fields; the others keep their value.",
        "additionalProperties": false,
        "properties": {
            "rate_per_second": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RATE_PER_SECOND,
                "description": "Sustained SMS + calls per second, after the burst."},
            "rate_burst": {"type": "integer", "minimum": 1, "maximum": MAX_RATE_BURST,
                "description": "SMS + calls that pass at once before rate_per_second applies."},
            "sms_per_hour": count("SMS per UTC hour."),
            "sms_per_day": count("SMS per UTC day."),
            "calls_per_hour": count("Calls per UTC hour."),
            "calls_per_day": count("Calls per UTC day."),
            "sms_per_destination_per_hour": count("SMS to one recipient per UTC hour."),
            "sms_per_destination_per_day": count("SMS to one recipient per UTC day."),
            "calls_per_destination_per_hour": count("Calls to one recipient per UTC hour."),
            "calls_per_destination_per_day": count("Calls to one recipient per UTC day."),
            "monthly_budget_eur": {"type": "number", "minimum": 0, "maximum": MAX_BUDGET_EUR,
                "description": "Hard spending cap for the calendar month (UTC), in EUR."},
            "allowed_country_prefixes": {"type": "array", "maxItems": MAX_PREFIXES,
                "items": {"type": "string", "pattern": "^\\+[1-9][0-9]{0,2}$"},
                "description": "Allowed destination country calling codes, e.g. [\"+34\"]; an empty list blocks every destination."},
        },
    });
    schemars::Schema::try_from(schema).unwrap_or_default()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLimitsArgs {
    /// `mid_…`.
    pub mobile_identity_id: String,
    /// The limits to change; the others keep their value.
    #[schemars(schema_with = "limits_patch_schema")]
    pub limits: Value,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEventsArgs {
    /// e.g. `sms_queued`, `sms_blocked`, `agent_token_rotated`.
    pub action: Option<String>,
    /// e.g. `sim_request`, `mobile_identity`, `sms`, `call`.
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Events of one mobile identity, `mid_…`.
    pub mid: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<String>,
    /// RFC 3339; events at or before.
    pub until: Option<String>,
    /// 1 to 1000, default 100.
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionNumberArgs {
    /// ISO country code from ami.search_sim_options; default `ES`.
    pub country: Option<String>,
    /// Subset of `["sms", "voice"]`; default both.
    pub capabilities: Option<Vec<String>>,
    /// The name of the agent the number is for.
    pub agent_name: Option<String>,
    /// What the agent will use the number for.
    pub purpose: Option<String>,
    /// The legal customer data; sandbox placeholders when left out.
    pub customer: Option<CustomerArgs>,
}

impl ProvisionNumberArgs {
    pub fn split(self) -> (NewSimRequest, CustomerDataInput) {
        let request = RequestSimOfferArgs {
            country: self.country,
            capabilities: self.capabilities,
            agent_name: self.agent_name,
            purpose: self.purpose,
            ..Default::default()
        }
        .into();
        let customer = self.customer.unwrap_or_else(|| CustomerArgs {
            legal_name: Some("Sandbox Customer".into()),
            tax_id: Some("SANDBOX-0000".into()),
            billing_email: Some("sandbox@example.org".into()),
            address: Some("1 Sandbox Street".into()),
            representative_name: Some("Sandbox Representative".into()),
            representative_phone: None,
        });
        let data = CustomerDataInput {
            customer: Some(customer.into()),
            ..Default::default()
        };
        (request, data)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookArgs {
    /// `mid_…`; leave out for a webhook of the whole account.
    pub mobile_identity_id: Option<String>,
    /// Where deliveries are POSTed: http or https, at most 2048 characters.
    pub url: String,
    /// Event names, or `["*"]` (the default) for all.
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListWebhooksArgs {
    /// `mid_…`; leave out for the account's webhooks.
    pub mobile_identity_id: Option<String>,
    /// 1 to 200, default 20.
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWebhookArgs {
    /// `mid_…` the webhook was registered on; leave out for an account webhook.
    pub mobile_identity_id: Option<String>,
    /// `wh_…`.
    pub webhook_id: String,
}
