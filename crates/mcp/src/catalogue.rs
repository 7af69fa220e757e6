//! The `ami.*` tool set as data: each tool's name, the credential it needs, the use cases it
//! calls and its description. The tool router (`tools.rs`) takes its descriptions from here and
//! a test checks that the router serves exactly these names, so the list cannot drift.

/// The credential a tool needs (PROTOCOL §1), sent as `Authorization: Bearer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A customer key (`amik_live_…`).
    Customer,
    /// An agent token (`amiagt_live_…`), bound to one mobile identity.
    Agent,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Customer => "customer",
            Level::Agent => "agent",
        }
    }
}

/// One tool of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct ToolInfo {
    /// The MCP tool name, `ami.<name>`.
    pub name: &'static str,
    pub level: Level,
    /// The use cases it calls, as `Services::<fn>`, in order. Every one of them is also reached
    /// by a REST route: MCP and REST share the use cases and hold no business rule of their own.
    pub calls: &'static [&'static str],
    pub description: &'static str,
}

pub(crate) mod describe {
    pub const SEARCH_SIM_OPTIONS: &str = "List the countries where an AMI mobile identity can be contracted, with their SIM types, capabilities (sms, voice) and prices. Customer key.";
    pub const REQUEST_SIM_OFFER: &str = "Start contracting a phone number: creates a SIM request and returns it with its offer (price, setup fee, expiry). An offer above max_monthly_price is rejected at once. Customer key.";
    pub const ACCEPT_OFFER: &str =
        "Accept an offer; required before customer data and the contract. Customer key.";
    pub const SUBMIT_CUSTOMER_DATA: &str = "Submit the legal customer data (legal_name, tax_id, billing_email, address, representative_name, optional representative_phone) for an accepted offer, flat or inside `customer`. Returns the request and the customer record, whose id the contract needs. Customer key.";
    pub const CREATE_CONTRACT: &str = "Create the contract for an accepted offer and its customer record. Returns signature_url, the page where the customer's representative signs. Customer key.";
    pub const GET_CONTRACT_STATUS: &str =
        "Read a contract: status signature_pending, signed, expired or cancelled. Customer key.";
    pub const CONFIRM_SIGNATURE_STATUS: &str = "Check whether a contract has been signed (status `signed`), so the identity can be activated. Same result as ami.get_contract_status. Customer key.";
    pub const ACTIVATE_SIM_IDENTITY: &str = "Activate the mobile identity of a signed contract: assigns a phone number and returns it with the agent token, shown this once. Customer key.";
    pub const GET_IDENTITY_STATUS: &str = "Read a mobile identity: phone number, status (active, suspended, released), capabilities, inbound SIP URI. Never returns a token. Customer key.";
    pub const CANCEL_REQUEST: &str = "Cancel a SIM request before it is active, with an optional reason; an activated identity's tokens are revoked. Customer key.";
    pub const SEND_SMS: &str = "Send an SMS from this agent's own number to an E.164 destination. Every limit (rate, hourly and daily counts, per-destination counts, monthly budget, allowed countries) is checked before anything reaches the network; a refusal names its reason and, where waiting helps, retry_after seconds. A `kill_switch` refusal means stop, not retry. Optional max_price_eur caps what the message may cost (`over_max_price` when it would cost more; nothing is sent). Agent token.";
    pub const CHECK_POLICY: &str = "Ask, without sending anything, what an SMS (channel `sms`, with its body) or a call (channel `call`) to a destination would get right now: verdict `allow`, or `refuse` with the exact refusal the send would answer (status and body: the limit `reason` and `retry_after`, the kill-switch `scope`, `over_max_price`); the counters of the current hour, day and month; the estimated cost. Agent token.";
    pub const PREVIEW_SMS: &str = "Preview an SMS without sending it: encoding (GSM-7 or UCS-2), units, segments (the parts it is charged as), the characters that force UCS-2, a GSM-7 alternative when replacing curly quotes, dashes or the ellipsis makes one, and the cost to this destination. Pass max_price_eur to ami.send_sms to cap what a send may cost. Agent token.";
    pub const LIST_SMS: &str = "List this agent's SMS, newest first, optionally only `outbound` or `inbound`; page with `limit` (1-200) and `cursor` (the previous page's next_cursor). Agent token.";
    pub const PLACE_CALL: &str = "Place a phone call from this agent's number to an E.164 destination; once answered, its audio is bridged to callback_sip_uri (sip: or sips:), where the agent's own voice engine runs. Limits are checked first, like SMS. Agent token.";
    pub const LIST_CALLS: &str = "List this agent's calls, newest first, optionally only `outbound` or `inbound`; page with `limit` and `cursor`. Agent token.";
    pub const GET_CALL: &str = "Read one call: status (initiated, ringing, in_progress, completed, failed, no_answer, busy, cancelled), duration, hang-up cause, cost. Agent token.";
    pub const HANGUP_CALL: &str = "Hang up a call: before the answer it becomes cancelled, after it completed (hangup_by_agent). A call that already ended is returned unchanged. Agent token.";
    pub const SET_INBOUND_SIP_URI: &str = "Set where inbound calls to a mobile identity are forwarded (a sip: or sips: URI); null or an empty string clears it and inbound calls are refused. Customer key.";
    pub const GET_LIMITS: &str =
        "Read the spending and rate limits of a mobile identity. Customer key.";
    pub const UPDATE_LIMITS: &str = "Change some limits of a mobile identity; fields left out keep their value. A bad value is refused with invalid_<field> and nothing changes. Customer key.";
    pub const GET_USAGE: &str = "Usage of a mobile identity against its limits: counts this hour and day, spend this month, remaining budget, prices, percentage of each limit consumed. Customer key.";
    pub const GET_MY_USAGE: &str = "This agent's own usage against its limits: counts this hour and day, spend and remaining budget this month. Agent token.";
    pub const ROTATE_AGENT_TOKEN: &str = "Issue a new agent token for a mobile identity and revoke every previous one at once. The new token is shown this once. Customer key.";
    pub const LIST_EVENTS: &str = "The account's audit log, newest first: contracting steps, tokens issued and rotated, SMS and calls sent or blocked, limits changed. Filter by action, entity_type, entity_id, mid, since, until (RFC 3339); page with limit (1-1000) and cursor. Customer key.";
    pub const CREATE_WEBHOOK: &str = "Register a webhook: url (https or http, checked against private and internal addresses) and events (names or \"*\"; default all: sms.inbound, sms.delivered, sms.failed, call.inbound, call.completed, call.failed, mid.suspended, mid.resumed, limit.blocked; account webhooks also kyc.submitted, kyc.verified, kyc.rejected). With mobile_identity_id it hears that MID (at most 10 per MID), without it the whole account. Returns the signing secret, shown this once. Customer key.";
    pub const LIST_WEBHOOKS: &str = "List the webhooks of a mobile identity (mobile_identity_id) or of the account (without it), with their status and secret prefix only. Customer key.";
    pub const DELETE_WEBHOOK: &str = "Delete a webhook (webhook_id, with the mobile_identity_id it was registered on, or without for an account webhook): its secret and pending deliveries go with it. Customer key.";
    pub const PROVISION_NUMBER: &str = "Sandbox servers: run the whole contracting flow in one call (request, offer acceptance, customer data, contract, programmatic signature, activation) and return the new mobile identity with its phone number and its agent token, shown this once. Customer data is optional: sandbox placeholders are used when it is left out. Customer key.";
}

use Level::{Agent, Customer};

const fn tool(
    name: &'static str,
    level: Level,
    calls: &'static [&'static str],
    description: &'static str,
) -> ToolInfo {
    ToolInfo {
        name,
        level,
        calls,
        description,
    }
}

static CATALOGUE: &[ToolInfo] = &[
    tool(
        "ami.search_sim_options",
        Customer,
        &["Services::sim_options"],
        describe::SEARCH_SIM_OPTIONS,
    ),
    tool(
        "ami.request_sim_offer",
        Customer,
        &["Services::create_sim_request"],
        describe::REQUEST_SIM_OFFER,
    ),
    tool(
        "ami.accept_offer",
        Customer,
        &["Services::accept_offer"],
        describe::ACCEPT_OFFER,
    ),
    tool(
        "ami.submit_customer_data",
        Customer,
        &["Services::submit_customer_data"],
        describe::SUBMIT_CUSTOMER_DATA,
    ),
    tool(
        "ami.create_contract",
        Customer,
        &["Services::create_contract"],
        describe::CREATE_CONTRACT,
    ),
    tool(
        "ami.get_contract_status",
        Customer,
        &["Services::get_contract"],
        describe::GET_CONTRACT_STATUS,
    ),
    tool(
        "ami.confirm_signature_status",
        Customer,
        &["Services::get_contract"],
        describe::CONFIRM_SIGNATURE_STATUS,
    ),
    tool(
        "ami.activate_sim_identity",
        Customer,
        &["Services::activate"],
        describe::ACTIVATE_SIM_IDENTITY,
    ),
    tool(
        "ami.get_identity_status",
        Customer,
        &["Services::get_mid"],
        describe::GET_IDENTITY_STATUS,
    ),
    tool(
        "ami.cancel_request",
        Customer,
        &["Services::cancel_sim_request"],
        describe::CANCEL_REQUEST,
    ),
    tool(
        "ami.send_sms",
        Agent,
        &["Services::send_sms"],
        describe::SEND_SMS,
    ),
    tool(
        "ami.preview_sms",
        Agent,
        &["Services::preview_sms"],
        describe::PREVIEW_SMS,
    ),
    tool(
        "ami.check_policy",
        Agent,
        &["Services::check_policy"],
        describe::CHECK_POLICY,
    ),
    tool(
        "ami.list_sms",
        Agent,
        &["Services::list_sms"],
        describe::LIST_SMS,
    ),
    tool(
        "ami.place_call",
        Agent,
        &["Services::place_call"],
        describe::PLACE_CALL,
    ),
    tool(
        "ami.list_calls",
        Agent,
        &["Services::list_calls"],
        describe::LIST_CALLS,
    ),
    tool(
        "ami.get_call",
        Agent,
        &["Services::get_call"],
        describe::GET_CALL,
    ),
    tool(
        "ami.hangup_call",
        Agent,
        &["Services::hang_up_call"],
        describe::HANGUP_CALL,
    ),
    tool(
        "ami.set_inbound_sip_uri",
        Customer,
        &["Services::set_inbound_config"],
        describe::SET_INBOUND_SIP_URI,
    ),
    tool(
        "ami.get_limits",
        Customer,
        &["Services::get_limits"],
        describe::GET_LIMITS,
    ),
    tool(
        "ami.update_limits",
        Customer,
        &["Services::update_limits"],
        describe::UPDATE_LIMITS,
    ),
    tool(
        "ami.get_usage",
        Customer,
        &["Services::mid_usage"],
        describe::GET_USAGE,
    ),
    tool(
        "ami.get_my_usage",
        Agent,
        &["Services::agent_usage"],
        describe::GET_MY_USAGE,
    ),
    tool(
        "ami.rotate_agent_token",
        Customer,
        &["Services::rotate_agent_token"],
        describe::ROTATE_AGENT_TOKEN,
    ),
    tool(
        "ami.list_events",
        Customer,
        &["Services::list_events"],
        describe::LIST_EVENTS,
    ),
    tool(
        "ami.create_webhook",
        Customer,
        &["Services::register_webhook"],
        describe::CREATE_WEBHOOK,
    ),
    tool(
        "ami.list_webhooks",
        Customer,
        &["Services::list_webhooks"],
        describe::LIST_WEBHOOKS,
    ),
    tool(
        "ami.delete_webhook",
        Customer,
        &["Services::delete_webhook"],
        describe::DELETE_WEBHOOK,
    ),
    tool(
        "ami.provision_number",
        Customer,
        &[
            "Services::create_sim_request",
            "Services::accept_offer",
            "Services::submit_customer_data",
            "Services::create_contract",
            "Services::mock_sign",
            "Services::activate",
        ],
        describe::PROVISION_NUMBER,
    ),
];

/// Every tool this server offers, over HTTP and stdio alike.
pub fn catalogue() -> &'static [ToolInfo] {
    CATALOGUE
}

/// The catalogue entry of a tool name.
pub fn find(name: &str) -> Option<&'static ToolInfo> {
    CATALOGUE.iter().find(|t| t.name == name)
}
