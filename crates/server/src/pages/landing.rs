//! `GET /` (and `/index.html`): a short landing page pointing people and agents to the
//! documentation, and the icon browsers ask for.

use super::STYLE;

/// The landing page: what the server is and where to read on.
pub fn html() -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>AMI</title><link rel=\"icon\" href=\"/favicon.ico\" type=\"image/svg+xml\"><style>{STYLE}</style></head><body>\
         <h1>AMI: Agent Mobile Identity</h1>\
         <p>A phone number with SMS and voice for an AI agent, contracted by a person and operated by the agent \
         with a token scoped to that one number. Every action is limited, audited and isolated per tenant.</p>\
         <ul>\
         <li><a href=\"/docs\">Documentation</a>: the contracting steps, credentials, limits, webhooks and errors.</li>\
         <li><a href=\"/llms.txt\">llms.txt</a>: the index for agents (MCP and REST).</li>\
         <li><a href=\"/openapi.json\">openapi.json</a>: every route with its request and response schemas.</li>\
         </ul></body></html>"
    )
}

/// A small icon (SVG): browsers ask for `/favicon.ico` on every visit to a page.
pub const FAVICON_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1b1b1b\"/>\
<text x=\"8\" y=\"12\" font-family=\"sans-serif\" font-size=\"10\" text-anchor=\"middle\" fill=\"#fff\">A</text></svg>";
