//! `/llms.txt` (llmstxt.org format), generated from the live OpenAPI document.

use utoipa::openapi::OpenApi;

use super::docs::{AUTH_LEVELS, operations};

pub fn render(api: &OpenApi) -> String {
    let mut out = String::from(
        "# AMI\n\n\
         > AMI (Agent Mobile Identity) lets an AI agent obtain its own phone number with SMS and voice, \
         autonomously, programmatically and auditably. A human customer contracts the number; the agent \
         operates it with a token scoped to that one number.\n\n\
         Connect over REST (JSON, `Authorization: Bearer <credential>`) or over MCP (streamable HTTP at \
         `/mcp`, the same bearer credentials; `ami mcp --stdio` for desktop agents). The OpenAPI 3.1 document at \
         `/openapi.json` describes every route with request and response schemas. Errors are \
         `{\"error\": \"<stable_code>\", \"message\": \"...\"}`, over MCP as the tool result with `isError: true`; \
         mutating POSTs accept an `Idempotency-Key` header.\n\n\
         Contracting may include the identity check (KYC) of the customer's representative: \
         `POST /v1/sim-requests/{id}/kyc/initiate` returns a `verification_url` for a person (not an agent) to open; \
         with `kyc_required` on the server, `POST /v1/contracts` answers 409 `kyc_required` / `kyc_not_verified` \
         until the operator verified it.\n\n\
         ## Credentials\n\n",
    );
    for (level, format, covers) in AUTH_LEVELS {
        out.push_str(&format!("- {level}: `{format}`. {covers}\n"));
    }
    out.push_str("\n## MCP tools\n\nStart with `ami.provision_number` (customer key): it contracts a number and returns its agent token.\n\n");
    for tool in ami_mcp::catalogue() {
        let level = match tool.level {
            ami_mcp::Level::Customer => "customer key",
            ami_mcp::Level::Agent => "agent token",
        };
        out.push_str(&format!(
            "- `{}` ({level}): {}\n",
            tool.name, tool.description
        ));
    }
    out.push_str("\n## Docs\n\n- [OpenAPI document](/openapi.json): every route, schema and error\n- [Documentation](/docs): quick start, credentials, errors\n- [Webhook verification](/docs#webhooks): both signature schemes and their test vectors\n\n## Endpoints\n\n");
    for op in operations(api) {
        out.push_str(&format!(
            "- [{} {}](/docs#{}): {} ({})\n",
            op.method,
            op.path,
            op.anchor(),
            op.summary,
            op.auth
        ));
    }
    out
}
