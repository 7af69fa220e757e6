//! `/docs`: documentation for people, generated around the live route list.

use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;

use super::{STYLE, escape};

pub const AUTH_LEVELS: [(&str, &str, &str); 4] = [
    (
        "Customer (level 1)",
        "Authorization: Bearer amik_live_<48 hex>",
        "Contracting, MID administration (limits, rotation, inbound and voice config), the audit log.",
    ),
    (
        "Agent (level 2)",
        "Authorization: Bearer amiagt_live_<64 hex>",
        "The `/v1/agent/*` routes of the one mobile identity the token is bound to.",
    ),
    (
        "Admin",
        "Authorization: Bearer <operator key>",
        "`/v1/admin/*`: accounts, number inventory, global audit log. Every call is audited.",
    ),
    (
        "Telco",
        "X-Telco-Key: <key>",
        "`/v1/_telco/*` carrier callbacks.",
    ),
];

/// Stable error codes a client may branch on.
pub const ERRORS: [(&str, &str); 23] = [
    (
        "400",
        "invalid_json, unknown_field, json_too_deep, duplicate_key, invalid_query, unknown_parameter, invalid_limit, invalid_cursor",
    ),
    (
        "400",
        "invalid_<field> (e.g. invalid_billing_email, invalid_inbound_sip_uri, invalid_voice_url with detail, invalid_rate_per_second)",
    ),
    (
        "400",
        "missing_fields (with fields: [...]), missing_name, unsupported_country, currency_mismatch (with offer_currency)",
    ),
    (
        "400",
        "invalid_idempotency_key, invalid_numbers, invalid_range, invalid_capabilities",
    ),
    (
        "401",
        "unauthorized (customer key), invalid_agent_token, unauthorized_admin, invalid_telco_key",
    ),
    (
        "403",
        "account_suspended, mock_sign_disabled, kill_switch (with scope: stop, do not retry), capability_not_contracted",
    ),
    (
        "404",
        "<thing>_not_found: the same body for a missing id and another account's id",
    ),
    ("404", "unknown_route: no such route"),
    ("405", "method_not_allowed"),
    ("408", "request_timeout"),
    (
        "409",
        "invalid_state (with expected and actual), invalid_transition, already_terminal",
    ),
    (
        "409",
        "offer_not_acceptable, offer_not_accepted, already_signed, contract_expired, contract_not_pending",
    ),
    (
        "409",
        "contract_not_signed, no_number_available, mobile_identity_not_active",
    ),
    ("409", "no_inbound_sip_uri, invalid_call_transition"),
    (
        "409",
        "number_not_available, account_not_active, account_already_<status>, customer_mismatch",
    ),
    (
        "409",
        "idempotency_key_reused, idempotency_key_in_flight, idempotency_response_too_large",
    ),
    ("413", "payload_too_large"),
    ("415", "unsupported_media_type"),
    (
        "429",
        "rate_per_second, monthly_budget, country_not_allowed, sms_per_hour, sms_per_day",
    ),
    ("429", "calls_per_hour, calls_per_day"),
    (
        "429",
        "sms_per_destination_per_hour, sms_per_destination_per_day",
    ),
    (
        "429",
        "calls_per_destination_per_hour, calls_per_destination_per_day",
    ),
    ("500", "internal_error: nothing internal is ever shown"),
];

pub struct Op {
    pub method: &'static str,
    pub path: String,
    pub summary: String,
    pub auth: &'static str,
}

impl Op {
    pub fn anchor(&self) -> String {
        format!(
            "{}-{}",
            self.method.to_lowercase(),
            self.path.replace(['/', '{', '}'], "-")
        )
    }
}

fn describe(op: &Operation) -> (String, &'static str) {
    let summary = op
        .summary
        .clone()
        .or_else(|| op.description.clone())
        .map(|s| s.lines().next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| {
            op.operation_id
                .clone()
                .unwrap_or_default()
                .replace('_', " ")
        });
    let scheme = op
        .security
        .as_ref()
        .and_then(|reqs| reqs.first())
        .and_then(|r| serde_json::to_value(r).ok())
        .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()));
    let auth = match scheme.as_deref() {
        Some("bearerAuth") => "customer key",
        Some("agentBearer") => "agent token",
        Some("adminKey") => "admin key",
        Some("telcoKey") => "telco key",
        _ => "public",
    };
    (summary, auth)
}

/// Every operation of the document, in path order.
pub fn operations(api: &OpenApi) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in &api.paths.paths {
        let methods: [(&'static str, &Option<Operation>); 4] = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, op) in methods {
            if let Some(op) = op {
                let (summary, auth) = describe(op);
                ops.push(Op {
                    method,
                    path: path.clone(),
                    summary,
                    auth,
                });
            }
        }
    }
    ops
}

pub fn render(api: &OpenApi) -> String {
    let mut rows = String::new();
    for op in operations(api) {
        rows.push_str(&format!(
            "<tr id=\"{}\"><td><code>{} {}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&op.anchor()),
            op.method,
            escape(&op.path),
            escape(&op.summary),
            op.auth
        ));
    }
    let auth: String = AUTH_LEVELS
        .iter()
        .map(|(l, f, c)| {
            format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                escape(l),
                escape(f),
                escape(c)
            )
        })
        .collect();
    let tools: String = ami_mcp::catalogue()
        .iter()
        .map(|t| {
            let level = match t.level {
                ami_mcp::Level::Customer => "customer key",
                ami_mcp::Level::Agent => "agent token",
            };
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{level}</td></tr>",
                escape(t.name),
                escape(t.description)
            )
        })
        .collect();
    let vectors: String = ami_webhooks::TEST_VECTORS
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "<h3>Vector {}</h3><table>\
                 <tr><td>secret</td><td><code>{}</code></td></tr>\
                 <tr><td><code>X-Ami-Webhook-Id</code></td><td><code>{}</code></td></tr>\
                 <tr><td><code>webhook-id</code></td><td><code>{}</code></td></tr>\
                 <tr><td>timestamp (both schemes)</td><td><code>{}</code></td></tr>\
                 <tr><td>body (exact bytes, UTF-8)</td><td><code>{}</code></td></tr>\
                 <tr><td><code>X-Ami-Signature</code></td><td><code>{}</code></td></tr>\
                 <tr><td><code>webhook-signature</code></td><td><code>{}</code></td></tr></table>",
                i + 1,
                escape(v.secret),
                escape(v.webhook_id),
                escape(v.message_id),
                v.timestamp,
                escape(&String::from_utf8_lossy(v.body)),
                escape(v.ami_signature),
                escape(v.webhook_signature)
            )
        })
        .collect();
    let errors: String = ERRORS
        .iter()
        .map(|(s, c)| format!("<tr><td>{s}</td><td>{}</td></tr>", escape(c)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>AMI documentation</title><style>{STYLE}</style></head><body>\
         <h1>AMI: Agent Mobile Identity</h1>\
         <p>AMI lets an AI agent obtain its own phone number with SMS and voice, autonomously, programmatically and auditably. \
         A human customer contracts the number; the agent operates it with a token scoped to that one number. \
         Every action is limited, audited and isolated per tenant.</p>\
         <h2>Quick start (REST)</h2><ol>\
         <li><code>POST /v1/sim-requests</code> with <code>{{\"country\":\"ES\"}}</code>: returns the request and its offer.</li>\
         <li><code>POST /v1/offers/{{id}}/accept</code>.</li>\
         <li><code>POST /v1/sim-requests/{{id}}/customer-data</code> with the legal customer data.</li>\
         <li><code>POST /v1/contracts</code> with <code>offer_id</code> and <code>customer_id</code>: returns <code>signature_url</code> for the representative.</li>\
         <li>The representative signs at that link (sandbox: <code>POST /v1/contracts/{{id}}/mock-sign</code>).</li>\
         <li><code>POST /v1/mobile-identities/activate</code> with <code>contract_id</code>: returns the number and the agent token, once.</li></ol>\
         <p>The agent then calls <code>GET /v1/agent/self</code> with its token. On a sandbox server <code>POST /v1/demo/quick</code> runs all six steps at once.</p>\
         <h2>Quick start (MCP)</h2><p>The same use cases are MCP tools at <code>/mcp</code> (streamable HTTP, stateless, JSON responses), \
         with the same <code>Authorization: Bearer</code> credentials. <code>ami.provision_number</code> with a customer key contracts a number \
         and returns its agent token; <code>ami.send_sms</code> with that token sends. A refusal is the tool result with <code>isError: true</code> \
         and the REST error body, so a 429 reason or a <code>kill_switch</code> reads the same. Desktop agents run <code>ami mcp --stdio</code> \
         (<code>AMI_API_URL</code> and <code>AMI_API_KEY</code> / <code>AMI_AGENT_TOKEN</code>).</p>\
         <table><tr><th>Tool</th><th>What it does</th><th>Credential</th></tr>{tools}</table>\
         <h2>Credentials</h2><table><tr><th>Level</th><th>Header</th><th>Covers</th></tr>{auth}</table>\
         <p>Keys and tokens are stored only as SHA-256 hashes: they are shown once and can only be rotated. \
         A credential of one level is refused (401) on the routes of every other level.</p>\
         <h2>Conventions</h2><ul><li>JSON in and out; errors are <code>{{\"error\": code, \"message\": text}}</code> with extra fields where useful.</li>\
         <li>Lists take <code>limit</code> (1 to 200, default 20) and <code>cursor</code>, and answer <code>count</code> and <code>next_cursor</code>, newest first.</li>\
         <li>Mutating POSTs accept <code>Idempotency-Key</code>: the same key and body within 24 h replays the stored response.</li>\
         <li>Every response carries <code>X-Request-Id</code>.</li></ul>\
         <h2>Limits</h2><p>Each mobile identity has its own limits (rate per second with a burst, 30 by default, of operations that pass at once; \
         SMS and calls per hour and day, per destination, monthly budget, destination countries), patched with <code>POST /v1/mobile-identities/{{id}}/limits</code>. \
         The check and the reservation are one atomic step: concurrent requests never overshoot. A limit that fires answers 429 \
         <code>{{\"error\": reason, \"reason\": reason, \"mid\": id, \"retry_after\": seconds or null}}</code> with <code>Retry-After</code> \
         where waiting helps; nothing reaches the carrier. Reasons: <code>rate_per_second</code>, <code>sms_per_hour</code>, <code>sms_per_day</code>, \
         <code>calls_per_hour</code>, <code>calls_per_day</code>, <code>sms_per_destination_per_hour</code>, <code>sms_per_destination_per_day</code>, \
         <code>calls_per_destination_per_hour</code>, <code>calls_per_destination_per_day</code>, <code>monthly_budget</code>, <code>country_not_allowed</code>. \
         A kill-switch answers 403 <code>kill_switch</code> instead: the agent must stop, not retry.</p>\
         <h2 id=\"webhooks\">Webhooks and how to verify them</h2>\
         <p>Register with <code>POST /v1/mobile-identities/{{id}}/webhooks</code> (or <code>/v1/account/webhooks</code>): \
         <code>{{\"url\": ..., \"events\": [\"*\"]}}</code>; the secret (<code>whsec_</code> + base64 of 32 random bytes) is shown once. \
         Events: <code>sms.inbound</code>, <code>sms.delivered</code>, <code>sms.failed</code>, <code>call.inbound</code>, <code>call.completed</code>, \
         <code>call.failed</code>, <code>mid.suspended</code>, <code>mid.resumed</code>, <code>limit.blocked</code>. Every attempt carries two signatures \
         over the exact bytes sent, each attempt with its own timestamp:</p><ul>\
         <li><code>X-Ami-Signature: sha256=</code> lowercase hex of HMAC-SHA256, key = the whole secret string as UTF-8, \
         message = <code>X-Ami-Timestamp</code> + <code>.</code> + body; with <code>X-Ami-Webhook-Id</code>.</li>\
         <li>Standard Webhooks: <code>webhook-signature: v1,</code> base64 of HMAC-SHA256, key = the base64 after <code>whsec_</code> decoded, \
         message = <code>webhook-id</code> + <code>.</code> + <code>webhook-timestamp</code> + <code>.</code> + body. Any Standard Webhooks library verifies it.</li></ul>\
         <p>Reject timestamps more than 5 minutes old or in the future, and compare in constant time. \
         <code>ami webhook verify</code> checks a captured delivery against its secret. Test vectors:</p>{vectors}\
         <h2>Errors</h2><table><tr><th>Status</th><th>Codes</th></tr>{errors}</table>\
         <h2>Endpoints</h2><p>The full schemas are in <a href=\"/openapi.json\">/openapi.json</a>.</p>\
         <table><tr><th>Route</th><th>What it does</th><th>Credential</th></tr>{rows}</table></body></html>"
    )
}
