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
pub const ERRORS: [(&str, &str); 27] = [
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
        "customer_data_missing, kyc_required, kyc_not_verified (with status), kyc_already_submitted, kyc_not_submitted",
    ),
    ("410", "kyc_link_expired"),
    (
        "409",
        "number_not_available, account_not_active, account_already_<status>, customer_mismatch",
    ),
    (
        "409",
        "idempotency_key_reused, idempotency_key_in_flight, idempotency_response_too_large",
    ),
    (
        "413",
        "payload_too_large, document_too_large (with field and max_bytes)",
    ),
    ("415", "unsupported_media_type"),
    (
        "415",
        "unsupported_document_type (with field and accepted: image/jpeg, image/png, application/pdf)",
    ),
    (
        "422",
        "destination_not_routable, over_max_price (with cost_eur and max_price_eur)",
    ),
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
         <h2 id=\"kyc\">Identity check of the representative (KYC)</h2>\
         <p>After the customer data, <code>POST /v1/sim-requests/{{id}}/kyc/initiate</code> starts the check (201 \
         <code>{{kyc_id, status: \"pending\", verification_url, expires_at, notification}}</code>; 200 with <code>already_existed</code> \
         and a fresh link when one is pending; 409 <code>customer_data_missing</code> before the customer data). The customer hands \
         <code>verification_url</code> to the representative: it is shown only in that response and its token is stored hashed. \
         At <code>/kyc/{{token}}</code> the representative enters their identity and uploads the ID document's front and back \
         (JPEG, PNG or PDF, judged by the file's first bytes, each at most <code>kyc_max_document_bytes</code>), once. \
         <code>GET /v1/sim-requests/{{id}}/kyc</code> shows the state: <code>pending</code>, <code>submitted</code>, <code>verified</code> \
         or <code>rejected</code> (with the reason; a rejected or expired check can be started again). The operator reviews at \
         <code>GET /v1/admin/kyc</code> and decides with <code>POST /v1/admin/kyc/{{id}}/verify</code> or <code>/reject {{reason}}</code>. \
         The documents are kept in the database (the SQLite file is owner-only) and deleted <code>kyc_retention_days</code> after the decision, \
         by an hourly sweep or at once with <code>POST /v1/admin/kyc/purge</code>. With <code>kyc_required = true</code>, \
         <code>POST /v1/contracts</code> answers 409 <code>kyc_required</code> (no check yet) or <code>kyc_not_verified</code> until it is verified. \
         Account webhooks hear <code>kyc.submitted</code>, <code>kyc.verified</code> and <code>kyc.rejected</code>.</p>\
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
         <h2 id=\"agent-safety\">Before sending: policy check and preview</h2><p><code>POST /v1/agent/policy/check</code> \
         (<code>{{\"channel\": \"sms\" or \"call\", \"to\", \"body\"}}</code>, MCP <code>ami.check_policy</code>) answers what a send or call made now \
         would get without reserving or sending anything: <code>verdict</code> <code>allow</code> or <code>refuse</code> with the exact status and body the send \
         would answer (reason, <code>retry_after</code>, kill-switch scope), the counters of the current hour, day and month, and the estimated cost. \
         It runs the send's own decision under the same lock, so a check and a send at the same instant agree. Each check is audited \
         <code>policy_checked</code>. <code>POST /v1/agent/sms/preview</code> (MCP <code>ami.preview_sms</code>) shows the encoding (GSM-7 or UCS-2), \
         the parts, the characters that force UCS-2, a GSM-7 alternative when curly quotes, dashes or the ellipsis are the only cause, and the cost, \
         which is what the send is charged. A send may carry <code>max_price_eur</code>: a message that would cost more is refused \
         <code>422 over_max_price</code> (audited <code>sms_blocked</code>, nothing reserved or sent).</p>\
         <h2 id=\"webhooks\">Webhooks and how to verify them</h2>\
         <p>Register with <code>POST /v1/mobile-identities/{{id}}/webhooks</code> (or <code>/v1/account/webhooks</code>): \
         <code>{{\"url\": ..., \"events\": [\"*\"]}}</code>; the secret (<code>whsec_</code> + base64 of 32 random bytes) is shown once. \
         Events: <code>sms.inbound</code>, <code>sms.delivered</code>, <code>sms.failed</code>, <code>call.inbound</code>, <code>call.completed</code>, \
         <code>call.failed</code>, <code>mid.suspended</code>, <code>mid.resumed</code>, <code>limit.blocked</code>, and for account webhooks only \
         <code>kyc.submitted</code>, <code>kyc.verified</code>, <code>kyc.rejected</code> (with <code>account_id</code> instead of <code>mid</code>). Every attempt carries two signatures \
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
