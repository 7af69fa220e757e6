//! What the route annotations alone do not say, added to the OpenAPI document from the same
//! facts the layers act on, so that the document cannot drift from them:
//! - the credential refusals of each route's level (`auth::route_level`): 401 with the
//!   level's code, 403 `account_suspended` for customer and agent credentials, 503
//!   `telco_inbound_disabled` on telco routes, and the one security scheme that level takes;
//! - on authenticated POSTs, the `Idempotency-Key` header and its refusals (400, 409, 413);
//! - on routes reading a JSON body, the body refusals (400, 413, 415), and the body marked
//!   optional when `{}` would do (an empty body is read as `{}`);
//! - on routes taking query parameters, their refusals (400); on routes taking an id, 404;
//! - `POST /mcp`, served by the MCP transport beside the annotated routes.
//!
//! Every refusal carries the PROTOCOL §2 body (`ErrorBody`) and names its codes.

use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

use crate::http::auth::{self, Level};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const ERROR_BODY: &str = "#/components/schemas/ErrorBody";

/// The document of the routes, completed: what `GET /openapi.json` serves. Completed as
/// JSON, as some of what it states (a rule across fields beside an object's properties) has
/// no place in the typed model.
pub fn complete(doc: &OpenApi) -> Value {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    complete_value(&mut value);
    value
}

fn complete_value(doc: &mut Value) {
    // The schemas first: whether a body is required depends on them.
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(mcp_schemas());
        schemas.insert("LimitsPatch".into(), limits_patch());
        if let Some(customer_data) = schemas.get_mut("CustomerDataInput") {
            // The customer's fields come nested under `customer` or flat, never neither
            // (`missing_fields`): a rule across fields that the derive cannot state.
            customer_data["anyOf"] = json!([
                { "required": ["customer"] },
                { "required": ["legal_name", "tax_id", "billing_email", "address", "representative_name"] }
            ]);
        }
    }
    let schemas = doc["components"]["schemas"].clone();
    if let Some(paths) = doc["paths"].as_object_mut() {
        // The limits patch is read as free JSON by the handler; its fields are those of
        // `ami_core::limits`.
        if let Some(patch) = paths
            .get_mut("/v1/mobile-identities/{id}/limits")
            .and_then(|item| item.get_mut("post"))
            .and_then(|op| op.get_mut("requestBody"))
        {
            patch["content"] = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/LimitsPatch" } } });
        }
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    complete_operation(path, method, op, &schemas);
                }
            }
        }
        paths.insert(ami_mcp::MCP_PATH.to_owned(), mcp_item());
    }
}

fn complete_operation(path: &str, method: &str, op: &mut Value, schemas: &Value) {
    let level = (path != auth::METRICS_ROUTE).then(|| auth::route_level(path, true));
    let authenticated = match level {
        Some(Level::Customer) => {
            credential(op, "bearerAuth", "unauthorized");
            refusal(op, 403, &["account_suspended"]);
            true
        }
        Some(Level::Agent) => {
            credential(op, "agentBearer", "invalid_agent_token");
            refusal(op, 403, &["account_suspended"]);
            true
        }
        Some(Level::Admin) => {
            credential(op, "adminKey", "unauthorized_admin");
            true
        }
        Some(Level::Telco) => {
            credential(op, "telcoKey", "invalid_telco_key");
            refusal(op, 503, &["telco_inbound_disabled"]);
            true
        }
        Some(Level::Public) | None => false,
    };
    if authenticated && method == "post" {
        idempotency_key(op);
    }
    if let Some(body) = op.get_mut("requestBody") {
        let needs_fields = body["content"]
            .as_object()
            .into_iter()
            .flat_map(|c| c.values())
            .any(|media| has_required(&media["schema"], schemas));
        body["required"] = Value::Bool(needs_fields);
        // The JSON body layer's refusals; the one form (the KYC page) documents its own.
        let json_body = body["content"].get("application/json").is_some();
        if json_body {
            refusal(
                op,
                400,
                &[
                    "invalid_json",
                    "unknown_field",
                    "duplicate_key",
                    "json_too_deep",
                    "invalid_body",
                ],
            );
            refusal(op, 413, &["payload_too_large"]);
            refusal(op, 415, &["unsupported_media_type"]);
        }
    }
    let params: Vec<(String, String)> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["in"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
        .collect();
    let query: Vec<&str> = params
        .iter()
        .filter(|(place, _)| place == "query")
        .map(|(_, name)| name.as_str())
        .collect();
    let parameters = op.get_mut("parameters").and_then(Value::as_array_mut);
    for param in parameters.into_iter().flatten() {
        if param["in"] == "query" && param["name"] == "limit" {
            // Any integer is taken, beyond 64 bits too: it is clamped (PROTOCOL §0).
            param["schema"] = json!({ "type": "integer" });
        }
    }
    if !query.is_empty() {
        let mut codes = if path.starts_with("/v1/sign/") {
            vec!["invalid_request".to_owned()]
        } else {
            vec!["invalid_query".to_owned(), "unknown_parameter".to_owned()]
        };
        codes.extend(
            query
                .iter()
                .filter(|name| **name != "t")
                .map(|name| format!("invalid_{name}")),
        );
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        refusal(op, 400, &codes);
    }
    if params.iter().any(|(place, _)| place == "path") && op["responses"].get("404").is_none() {
        refusal(
            op,
            404,
            &["`<thing>_not_found`, for an unknown id and another account's alike"],
        );
    }
}

/// The route's one security scheme and its 401.
fn credential(op: &mut Value, scheme: &str, code: &str) {
    op["security"] = json!([{ scheme: [] }]);
    refusal(op, 401, &[code]);
}

/// `Idempotency-Key` (PROTOCOL §0) and what the idempotency layer answers.
fn idempotency_key(op: &mut Value) {
    let header = json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "The same key with the same request within 24 h replays the stored response (header `Idempotent-Replayed: true`); with another request it is refused 409 `idempotency_key_reused`.",
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }
    });
    match op.get_mut("parameters").and_then(Value::as_array_mut) {
        Some(params) => params.push(header),
        None => op["parameters"] = json!([header]),
    }
    refusal(op, 400, &["invalid_idempotency_key"]);
    refusal(
        op,
        409,
        &[
            "idempotency_key_reused",
            "idempotency_key_in_flight",
            "idempotency_response_too_large",
        ],
    );
    refusal(op, 413, &["payload_too_large"]);
}

/// Documents `status` with the §2 body, naming `codes` in its description. A status the
/// route already documents keeps its description and gains the codes it does not name.
fn refusal(op: &mut Value, status: u16, codes: &[&str]) {
    let responses = &mut op["responses"];
    if !responses.is_object() {
        *responses = Value::Object(Map::new());
    }
    let response = responses
        .as_object_mut()
        .map(|r| r.entry(status.to_string()).or_insert_with(|| json!({})));
    let Some(response) = response else { return };
    let described = response["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let missing: Vec<&str> = codes
        .iter()
        .copied()
        .filter(|code| !described.contains(code))
        .collect();
    if !missing.is_empty() {
        response["description"] = Value::String(if described.is_empty() {
            missing.join(", ")
        } else {
            format!("{described}; {}", missing.join(", "))
        });
    }
    let content = &mut response["content"];
    if !content.is_object() {
        *content = json!({});
    }
    if let Some(content) = content.as_object_mut()
        && !content.contains_key("application/json")
        && !content.contains_key("text/html")
    {
        content.insert(
            "application/json".into(),
            json!({ "schema": { "$ref": ERROR_BODY } }),
        );
    }
}

/// Whether a schema (or the one its `$ref` names) has required properties: a body that
/// needs fields cannot be left out.
fn has_required(schema: &Value, schemas: &Value) -> bool {
    let schema = match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            &schemas[name]
        }
        None => schema,
    };
    schema["required"].as_array().is_some_and(|r| !r.is_empty())
        || schema["anyOf"].is_array()
        || schema["oneOf"].is_array()
}

/// `POST /mcp`: one JSON-RPC 2.0 message of the Model Context Protocol (streamable HTTP,
/// stateless, JSON answers). Refusals of the transport are JSON-RPC error objects; those of
/// the credential check before it are §2 bodies.
fn mcp_item() -> Value {
    let rpc_error = json!({ "$ref": "#/components/schemas/JsonRpcError" });
    let either = json!({ "anyOf": [rpc_error, { "$ref": ERROR_BODY }] });
    let refusal = |description: &str, schema: &Value| json!({ "description": description, "content": { "application/json": { "schema": schema } } });
    json!({
        "post": {
            "tags": ["discovery"],
            "summary": "The MCP endpoint: the tools of the API for agents, over JSON-RPC 2.0.",
            "description": "Discovery (`initialize`, `tools/list`) is public; each tool call takes the bearer credential of its level (customer key or agent token). The client must accept `application/json` and `text/event-stream`. Without a credential the body must declare a length of at most 64 KiB.",
            "operationId": "mcp",
            "security": [{}, { "bearerAuth": [] }, { "agentBearer": [] }],
            "requestBody": {
                "required": true,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/JsonRpcRequest" } } }
            },
            "responses": {
                "200": refusal("the JSON-RPC response (a tool's own failure is a result with `isError`)", &json!({ "$ref": "#/components/schemas/JsonRpcResponse" })),
                "202": { "description": "a notification or response, accepted without an answer" },
                "400": refusal("-32700 parse error, -32600 invalid request, -32000 unreadable body", &rpc_error),
                "401": refusal("unauthorized: the credential given does not hold", &json!({ "$ref": ERROR_BODY })),
                "403": refusal("-32000: the Host or Origin header is not allowed", &rpc_error),
                "406": refusal("-32000: the client does not accept application/json and text/event-stream", &rpc_error),
                "413": refusal("payload_too_large, or -32000 beyond the body cap", &either),
                "415": refusal("-32000: Content-Type is not application/json", &rpc_error)
            }
        }
    })
}

/// A partial patch of a MID's §6 limits: any subset of the fields, each within its range.
fn limits_patch() -> Value {
    use ami_core::limits::{
        COUNT_FIELDS, MAX_BUDGET_EUR, MAX_COUNT, MAX_PREFIXES, MAX_RATE_BURST, MAX_RATE_PER_SECOND,
    };
    let mut properties = Map::new();
    for field in COUNT_FIELDS {
        properties.insert(
            field.to_owned(),
            json!({ "type": "integer", "minimum": 0, "maximum": MAX_COUNT }),
        );
    }
    properties.insert(
        "rate_per_second".into(),
        json!({ "type": "number", "exclusiveMinimum": 0, "maximum": MAX_RATE_PER_SECOND }),
    );
    properties.insert(
        "rate_burst".into(),
        json!({ "type": "integer", "minimum": 1, "maximum": MAX_RATE_BURST, "description": "Operations the token bucket holds: a burst of this many (never fewer than one second's worth of rate_per_second) passes at once, then rate_per_second applies" }),
    );
    properties.insert(
        "monthly_budget_eur".into(),
        json!({ "type": "number", "minimum": 0, "maximum": MAX_BUDGET_EUR, "description": "EUR, at most six decimals (micro-euros)" }),
    );
    properties.insert(
        "allowed_country_prefixes".into(),
        json!({
            "type": "array",
            "maxItems": MAX_PREFIXES,
            "items": { "type": "string", "pattern": "^\\+[1-9][0-9]{0,2}$" },
            "description": "Country calling codes; an empty list blocks every destination"
        }),
    );
    json!({
        "type": "object",
        "description": "Any subset of the limit fields; all are checked before any changes (`invalid_<field>`, `unknown_field`).",
        "properties": properties,
        "additionalProperties": false
    })
}

fn mcp_schemas() -> Map<String, Value> {
    let id = json!({ "oneOf": [{ "type": "string" }, { "type": "integer" }, { "type": "null" }] });
    let mut schemas = Map::new();
    schemas.insert(
        "JsonRpcRequest".into(),
        json!({
            "type": "object",
            "description": "A JSON-RPC 2.0 request (with `id`) or notification (without).",
            "required": ["jsonrpc", "method"],
            "properties": {
                "jsonrpc": { "type": "string", "enum": ["2.0"] },
                "id": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
                "method": { "type": "string", "description": "`initialize`, `tools/list`, `tools/call`, …" },
                "params": { "type": "object" }
            }
        }),
    );
    schemas.insert(
        "JsonRpcResponse".into(),
        json!({
            "type": "object",
            "required": ["jsonrpc"],
            "properties": {
                "jsonrpc": { "type": "string", "enum": ["2.0"] },
                "id": id,
                "result": { "type": "object" },
                "error": { "$ref": "#/components/schemas/JsonRpcErrorObject" }
            }
        }),
    );
    schemas.insert(
        "JsonRpcError".into(),
        json!({
            "type": "object",
            "required": ["jsonrpc", "error"],
            "properties": {
                "jsonrpc": { "type": "string", "enum": ["2.0"] },
                "id": id,
                "error": { "$ref": "#/components/schemas/JsonRpcErrorObject" }
            }
        }),
    );
    schemas.insert(
        "JsonRpcErrorObject".into(),
        json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "integer" },
                "message": { "type": "string" },
                "data": {}
            }
        }),
    );
    schemas
}
