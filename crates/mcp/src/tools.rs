//! The `ami.*` tools. Each one is thin, like a REST handler: it resolves the caller from the
//! credential, converts its arguments into the REST input type, calls one use case (the
//! contracting flow of `ami.provision_number` calls the same six in turn), and renders the
//! result as the JSON the REST route returns. A refusal is a tool result with `isError: true`
//! whose content is the REST error body, so an agent can act on its code.

use std::future::Future;
use std::sync::Arc;

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::{ToolCallContext, ToolRouter};
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use ami_services::auth::{AgentCaller, CustomerCaller};
use ami_services::demo::{DemoResult, DemoStep};
use ami_services::webhooks::Scope;
use ami_services::webhooks::registration::RegisterWebhook;
use ami_services::{Error, Services};
use ami_store::audit::Filter;
use ami_store::page::PageRequest;

use crate::args::*;
use crate::catalogue::describe;

/// Where a tool call's credential comes from.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// The `Authorization: Bearer` header of the HTTP request that carried the call.
    Http,
    /// Fixed for the whole process (stdio): one credential per level.
    Fixed {
        customer_key: Option<String>,
        agent_token: Option<String>,
    },
}

/// The MCP server: the tool router over the use cases.
#[derive(Clone)]
pub struct AmiMcp {
    services: Services,
    credentials: Credentials,
    tools: Arc<ToolRouter<AmiMcp>>,
}

const INSTRUCTIONS: &str = "AMI (Agent Mobile Identity) gives an AI agent its own phone number with SMS and voice. \
A customer key (Authorization: Bearer amik_live_...) contracts numbers: ami.provision_number does the whole flow on \
sandbox servers; otherwise ami.request_sim_offer, ami.accept_offer, ami.submit_customer_data, ami.create_contract, \
signature at signature_url, ami.activate_sim_identity. Activation returns an agent token (amiagt_live_...), shown once, \
which operates that one number: ami.preview_sms, ami.check_policy, ami.send_sms, ami.list_sms, ami.place_call, ami.list_calls, \
ami.get_call, ami.hangup_call, ami.get_my_usage (as Authorization: Bearer, or as their agent_token argument). Refusals come back as a tool error whose JSON has a stable `error` code; \
limit refusals carry `reason` and `retry_after`, and `kill_switch` means stop.";

impl AmiMcp {
    pub(crate) fn new(services: Services, credentials: Credentials) -> Self {
        Self {
            services,
            credentials,
            tools: Arc::new(Self::tool_router()),
        }
    }

    async fn customer(&self, bearer: &Bearer) -> Result<CustomerCaller, Error> {
        let key = match &self.credentials {
            Credentials::Http => bearer.0.as_deref(),
            Credentials::Fixed { customer_key, .. } => customer_key.as_deref(),
        };
        self.services.authenticate_customer(key).await
    }

    /// The agent of a call: its `agent_token` argument or the request's credential, which
    /// must then be the same token (compared in constant time).
    async fn agent(&self, bearer: &Bearer, given: &AgentToken) -> Result<AgentCaller, Error> {
        let carried = match &self.credentials {
            Credentials::Http => bearer.0.as_deref(),
            Credentials::Fixed { agent_token, .. } => agent_token.as_deref(),
        };
        let token = match (carried, given.0.as_deref()) {
            (Some(c), Some(g)) if !ami_core::secret::ct_eq(c.as_bytes(), g.as_bytes()) => {
                return Err(Error::bad_request(
                    "conflicting_credentials",
                    "agent_token and the Authorization header name different credentials",
                ));
            }
            (carried, given) => given.or(carried),
        };
        self.services.authenticate_agent(token).await
    }

    /// `ami.provision_number`: the six contracting steps for the calling customer, through the
    /// same use cases as REST (as `/v1/demo/quick` does for its demo account).
    async fn provision(
        &self,
        caller: &CustomerCaller,
        args: ProvisionNumberArgs,
    ) -> Result<DemoResult, Error> {
        let s = &self.services;
        // Refused before the first step rather than at the fifth, so a server without
        // programmatic signing is not left with a half-made request (same refusal as mock-sign).
        if !s.settings.mock_sign_enabled {
            return Err(Error::refused(
                403,
                "mock_sign_disabled",
                "programmatic signing is disabled on this server",
            ));
        }
        let started = std::time::Instant::now();
        let (request, customer_data) = args.split();
        let created = s.create_sim_request(caller, request).await?;
        let request_id = created.sim_request.id;
        let offer_id = created.offer.id;
        // An offer the request rejected (above its price ceiling) is refused by the accept.
        s.accept_offer(caller, &offer_id).await?;
        let customer = s
            .submit_customer_data(caller, &request_id, customer_data)
            .await?
            .customer;
        let contract = s
            .create_contract(
                caller,
                ami_services::contracting::NewContract {
                    offer_id: Some(offer_id.clone()),
                    customer_id: Some(customer.id.clone()),
                },
            )
            .await?;
        s.mock_sign(caller, &contract.id).await?;
        let mid = s
            .activate(
                caller,
                ami_services::contracting::ActivateInput {
                    contract_id: Some(contract.id.clone()),
                },
            )
            .await?;
        let step = |step, id: &str| DemoStep {
            step,
            id: id.to_owned(),
        };
        let steps = vec![
            step("sim_request", &request_id),
            step("offer_accepted", &offer_id),
            step("customer_data", &customer.id),
            step("contract", &contract.id),
            step("signed", &contract.id),
            step("activated", &mid.mobile_identity_id),
        ];
        Ok(DemoResult {
            ok: true,
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            steps,
            mobile_identity: mid,
        })
    }
}

/// Renders a use case's outcome: the REST body, or the REST error body with `isError`.
async fn reply<T: Serialize>(outcome: impl Future<Output = Result<T, Error>>) -> CallToolResult {
    match outcome.await {
        Ok(value) => match serde_json::to_value(value) {
            Ok(v @ Value::Object(_)) => CallToolResult::structured(v),
            // Every REST body is an object; structured content must be one.
            Ok(other) => CallToolResult::structured(serde_json::json!({ "result": other })),
            Err(e) => {
                tracing::error!(error = %e, "tool result did not serialise");
                CallToolResult::structured_error(internal_body())
            }
        },
        Err(e) => {
            if let Error::Internal(cause) = &e {
                tracing::error!(error = %cause, source = ?std::error::Error::source(cause), "internal error in a tool");
            }
            CallToolResult::structured_error(e.body())
        }
    }
}

fn internal_body() -> Value {
    serde_json::json!({"error": "internal_error", "message": "internal error"})
}

#[tool_router(router = tool_router)]
impl AmiMcp {
    #[tool(name = "ami.search_sim_options", description = describe::SEARCH_SIM_OPTIONS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn search_sim_options(&self, bearer: Bearer, args: Parameters<NoArgs>) -> CallToolResult {
        reply(async {
            self.customer(&bearer).await?;
            args.get()?;
            Ok(self.services.sim_options())
        })
        .await
    }

    #[tool(name = "ami.request_sim_offer", description = describe::REQUEST_SIM_OFFER)]
    async fn request_sim_offer(
        &self,
        bearer: Bearer,
        args: Parameters<RequestSimOfferArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let input = args.get()?.into();
            self.services.create_sim_request(&c, input).await
        })
        .await
    }

    #[tool(name = "ami.accept_offer", description = describe::ACCEPT_OFFER)]
    async fn accept_offer(&self, bearer: Bearer, args: Parameters<OfferIdArgs>) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services.accept_offer(&c, &a.offer_id).await
        })
        .await
    }

    #[tool(name = "ami.submit_customer_data", description = describe::SUBMIT_CUSTOMER_DATA)]
    async fn submit_customer_data(
        &self,
        bearer: Bearer,
        args: Parameters<SubmitCustomerDataArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let (id, input) = args.get()?.split();
            self.services.submit_customer_data(&c, &id, input).await
        })
        .await
    }

    #[tool(name = "ami.create_contract", description = describe::CREATE_CONTRACT)]
    async fn create_contract(
        &self,
        bearer: Bearer,
        args: Parameters<CreateContractArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let input = args.get()?.into();
            self.services.create_contract(&c, input).await
        })
        .await
    }

    #[tool(name = "ami.get_contract_status", description = describe::GET_CONTRACT_STATUS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_contract_status(
        &self,
        bearer: Bearer,
        args: Parameters<ContractIdArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services.get_contract(&c, &a.contract_id).await
        })
        .await
    }

    #[tool(name = "ami.confirm_signature_status", description = describe::CONFIRM_SIGNATURE_STATUS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn confirm_signature_status(
        &self,
        bearer: Bearer,
        args: Parameters<ContractIdArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services.get_contract(&c, &a.contract_id).await
        })
        .await
    }

    #[tool(name = "ami.activate_sim_identity", description = describe::ACTIVATE_SIM_IDENTITY)]
    async fn activate_sim_identity(
        &self,
        bearer: Bearer,
        args: Parameters<ContractIdArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let input = args.get()?.into();
            self.services.activate(&c, input).await
        })
        .await
    }

    #[tool(name = "ami.get_identity_status", description = describe::GET_IDENTITY_STATUS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_identity_status(
        &self,
        bearer: Bearer,
        args: Parameters<MidArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services.get_mid(&c, &a.mobile_identity_id).await
        })
        .await
    }

    #[tool(name = "ami.cancel_request", description = describe::CANCEL_REQUEST,
           annotations(destructive_hint = true, open_world_hint = false))]
    async fn cancel_request(
        &self,
        bearer: Bearer,
        args: Parameters<CancelRequestArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let (id, input) = args.get()?.split();
            self.services.cancel_sim_request(&c, &id, input).await
        })
        .await
    }

    #[tool(name = "ami.send_sms", description = describe::SEND_SMS,
           annotations(destructive_hint = false, open_world_hint = true))]
    async fn send_sms(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<SendSmsArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let input = args.get()?.into();
            Ok(self.services.send_sms(&a, input).await?.sms)
        })
        .await
    }

    #[tool(name = "ami.preview_sms", description = describe::PREVIEW_SMS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn preview_sms(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<PreviewSmsArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let input = args.get()?.into();
            self.services.preview_sms(&a, input)
        })
        .await
    }

    #[tool(name = "ami.check_policy", description = describe::CHECK_POLICY,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn check_policy(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<CheckPolicyArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let input = args.get()?.into();
            self.services.check_policy(&a, input).await
        })
        .await
    }

    #[tool(name = "ami.list_sms", description = describe::LIST_SMS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_sms(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<ListArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let q = args.get()?;
            let page = page(q.limit, q.cursor.as_deref(), 20, 200)?;
            let direction = q.direction.as_deref().filter(|d| !d.is_empty());
            self.services.list_sms(&a, direction, &page).await
        })
        .await
    }

    #[tool(name = "ami.place_call", description = describe::PLACE_CALL,
           annotations(destructive_hint = false, open_world_hint = true))]
    async fn place_call(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<PlaceCallArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let input = args.get()?.into();
            self.services.place_call(&a, input).await
        })
        .await
    }

    #[tool(name = "ami.list_calls", description = describe::LIST_CALLS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_calls(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<ListArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let q = args.get()?;
            let page = page(q.limit, q.cursor.as_deref(), 20, 200)?;
            let direction = q.direction.as_deref().filter(|d| !d.is_empty());
            self.services.list_calls(&a, direction, &page).await
        })
        .await
    }

    #[tool(name = "ami.get_call", description = describe::GET_CALL,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_call(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<CallIdArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let q = args.get()?;
            self.services.get_call(&a, &q.call_id).await
        })
        .await
    }

    #[tool(name = "ami.hangup_call", description = describe::HANGUP_CALL,
           annotations(destructive_hint = true, idempotent_hint = true, open_world_hint = true))]
    async fn hangup_call(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<CallIdArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            let q = args.get()?;
            self.services.hang_up_call(&a, &q.call_id).await
        })
        .await
    }

    #[tool(name = "ami.set_inbound_sip_uri", description = describe::SET_INBOUND_SIP_URI,
           annotations(idempotent_hint = true, open_world_hint = false))]
    async fn set_inbound_sip_uri(
        &self,
        bearer: Bearer,
        args: Parameters<InboundSipUriArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let (id, input) = args.get()?.split();
            self.services.set_inbound_config(&c, &id, input).await
        })
        .await
    }

    #[tool(name = "ami.get_limits", description = describe::GET_LIMITS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_limits(&self, bearer: Bearer, args: Parameters<MidArgs>) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services.get_limits(&c, &a.mobile_identity_id).await
        })
        .await
    }

    #[tool(name = "ami.update_limits", description = describe::UPDATE_LIMITS,
           annotations(idempotent_hint = true, open_world_hint = false))]
    async fn update_limits(
        &self,
        bearer: Bearer,
        args: Parameters<UpdateLimitsArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services
                .update_limits(&c, &a.mobile_identity_id, &a.limits)
                .await
        })
        .await
    }

    #[tool(name = "ami.get_usage", description = describe::GET_USAGE,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_usage(&self, bearer: Bearer, args: Parameters<MidArgs>) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services.mid_usage(&c, &a.mobile_identity_id).await
        })
        .await
    }

    #[tool(name = "ami.get_my_usage", description = describe::GET_MY_USAGE,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn get_my_usage(
        &self,
        bearer: Bearer,
        token: AgentToken,
        args: Parameters<AgentArgs>,
    ) -> CallToolResult {
        reply(async {
            let a = self.agent(&bearer, &token).await?;
            args.get()?;
            self.services.agent_usage(&a).await
        })
        .await
    }

    #[tool(name = "ami.create_webhook", description = describe::CREATE_WEBHOOK,
           annotations(destructive_hint = false, open_world_hint = true))]
    async fn create_webhook(
        &self,
        bearer: Bearer,
        args: Parameters<CreateWebhookArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            let input = RegisterWebhook {
                url: Some(Value::String(a.url)),
                events: a.events.map(|e| e.into_iter().map(Value::String).collect()),
            };
            self.services
                .register_webhook(&c, scope(a.mobile_identity_id.as_deref()), input)
                .await
        })
        .await
    }

    #[tool(name = "ami.list_webhooks", description = describe::LIST_WEBHOOKS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_webhooks(
        &self,
        bearer: Bearer,
        args: Parameters<ListWebhooksArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            let page = page(a.limit, a.cursor.as_deref(), 20, 200)?;
            self.services
                .list_webhooks(&c, scope(a.mobile_identity_id.as_deref()), &page)
                .await
        })
        .await
    }

    #[tool(name = "ami.delete_webhook", description = describe::DELETE_WEBHOOK,
           annotations(destructive_hint = true, open_world_hint = false))]
    async fn delete_webhook(
        &self,
        bearer: Bearer,
        args: Parameters<DeleteWebhookArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services
                .delete_webhook(&c, scope(a.mobile_identity_id.as_deref()), &a.webhook_id)
                .await
        })
        .await
    }

    #[tool(name = "ami.rotate_agent_token", description = describe::ROTATE_AGENT_TOKEN,
           annotations(destructive_hint = true, open_world_hint = false))]
    async fn rotate_agent_token(
        &self,
        bearer: Bearer,
        args: Parameters<MidArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.services
                .rotate_agent_token(&c, &a.mobile_identity_id)
                .await
        })
        .await
    }

    #[tool(name = "ami.list_events", description = describe::LIST_EVENTS,
           annotations(read_only_hint = true, open_world_hint = false))]
    async fn list_events(
        &self,
        bearer: Bearer,
        args: Parameters<ListEventsArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let (filter, page) = events_query(args.get()?)?;
            self.services.list_events(&c, &filter, &page).await
        })
        .await
    }

    #[tool(name = "ami.provision_number", description = describe::PROVISION_NUMBER,
           annotations(destructive_hint = false, open_world_hint = false))]
    async fn provision_number(
        &self,
        bearer: Bearer,
        args: Parameters<ProvisionNumberArgs>,
    ) -> CallToolResult {
        reply(async {
            let c = self.customer(&bearer).await?;
            let a = args.get()?;
            self.provision(&c, a).await
        })
        .await
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for AmiMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("ami", env!("CARGO_PKG_VERSION")).with_title("AMI"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

// --- Extractors ------------------------------------------------------------------------------

/// The `Authorization: Bearer` token of the HTTP request that carried the tool call (none on
/// stdio, where the process's own credentials apply).
pub(crate) struct Bearer(Option<String>);

impl<S> FromContextPart<ToolCallContext<'_, S>> for Bearer {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let token = context
            .request_context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| bearer_of(&parts.headers))
            .map(str::to_owned);
        Ok(Bearer(token))
    }
}

/// The `agent_token` argument of an agent tool, read before the arguments are parsed so the
/// credential is checked first, as everywhere. Not a string: a credential that fails.
pub(crate) struct AgentToken(Option<String>);

impl<S> FromContextPart<ToolCallContext<'_, S>> for AgentToken {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let given = context
            .arguments
            .as_ref()
            .and_then(|a| a.get("agent_token"))
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().unwrap_or_default().to_owned());
        Ok(AgentToken(given))
    }
}

/// The token of an `Authorization: Bearer <token>` header (same reading as REST).
pub(crate) fn bearer_of(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Tool arguments. Named like rmcp's own wrapper so `#[tool]` derives the input schema from
/// `T`; unlike it, arguments that do not fit are kept as the REST refusal (`unknown_field`,
/// `missing_fields`, `invalid_json`) and reported after the credential is checked, in the
/// order REST reports them.
pub(crate) struct Parameters<T>(Result<T, Error>);

impl<T> Parameters<T> {
    fn get(self) -> Result<T, Error> {
        self.0
    }
}

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let arguments = Value::Object(context.arguments.take().unwrap_or_default());
        Ok(Parameters(
            T::deserialize(arguments).map_err(|e| argument_error(&e.to_string())),
        ))
    }
}

/// Most characters of client input a message may repeat.
const MAX_ECHO: usize = 100;

/// serde's message as a §2 refusal. Echoes of the input are short and free of controls.
fn argument_error(message: &str) -> Error {
    let between_ticks = |rest: &str| rest.split('`').next().map(sanitise);
    if let Some(name) = message
        .strip_prefix("unknown field `")
        .and_then(between_ticks)
    {
        return Error::bad_request("unknown_field", format!("unknown field `{name}`"))
            .with("field", name);
    }
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(between_ticks)
    {
        return Error::missing_fields(vec![name]);
    }
    Error::bad_request(
        "invalid_json",
        format!("invalid arguments: {}", sanitise(message)),
    )
}

fn sanitise(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ECHO)
        .collect();
    if s.chars().filter(|c| !c.is_control()).count() > MAX_ECHO {
        out.push('…');
    }
    out
}

// --- Lists -----------------------------------------------------------------------------------

/// `limit` and `cursor` as REST reads them: absent → `default`; otherwise clamped to
/// `1..=max`; a cursor this server could not have issued → 400 `invalid_cursor`.
/// A webhook's scope: one MID when named, else the account.
fn scope(mid: Option<&str>) -> Scope<'_> {
    mid.filter(|m| !m.is_empty())
        .map_or(Scope::Account, Scope::Mid)
}

fn page(
    limit: Option<i64>,
    cursor: Option<&str>,
    default: i64,
    max: i64,
) -> Result<PageRequest, Error> {
    let limit = limit.map_or(default, |l| l.clamp(1, max.max(1)));
    let cursor = match cursor {
        None | Some("") => None,
        Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Some(c.to_owned())
        }
        Some(_) => {
            return Err(Error::bad_request(
                "invalid_cursor",
                "cursor is not one this server issued",
            ));
        }
    };
    Ok(PageRequest { limit, cursor })
}

/// The `/v1/events` filters, with the same refusals.
fn events_query(q: ListEventsArgs) -> Result<(Filter, PageRequest), Error> {
    let page = page(q.limit, q.cursor.as_deref(), 100, 1000)?;
    let time = |field: &str, v: Option<String>| -> Result<Option<i64>, Error> {
        v.filter(|s| !s.is_empty())
            .map(|s| {
                ami_core::time::parse_rfc3339(&s).ok_or_else(|| {
                    Error::invalid(field, format!("{field} must be an RFC 3339 time"))
                })
            })
            .transpose()
    };
    let word = |field: &str, v: Option<String>| -> Result<Option<String>, Error> {
        match v {
            Some(s)
                if s.len() > 100
                    || s.bytes()
                        .any(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.')) =>
            {
                Err(Error::invalid(
                    field,
                    format!("{field} is not a valid value"),
                ))
            }
            other => Ok(other.filter(|s| !s.is_empty())),
        }
    };
    Ok((
        Filter {
            since: time("since", q.since)?,
            until: time("until", q.until)?,
            action: word("action", q.action)?,
            entity_type: word("entity_type", q.entity_type)?,
            entity_id: word("entity_id", q.entity_id)?,
            mid: word("mid", q.mid)?,
        },
        page,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_router_serves_exactly_the_catalogue() {
        let router = AmiMcp::tool_router();
        let mut served: Vec<String> = router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        served.sort();
        let mut listed: Vec<String> = crate::catalogue()
            .iter()
            .map(|t| t.name.to_owned())
            .collect();
        listed.sort();
        assert_eq!(served, listed);
        for info in crate::catalogue() {
            let tool = router.get(info.name).unwrap();
            assert_eq!(tool.description.as_deref(), Some(info.description));
            assert!(info.name.starts_with("ami."));
            assert!(
                info.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            );
        }
    }

    #[test]
    fn argument_errors_use_the_rest_codes() {
        let e = argument_error("unknown field `sort`, expected `to` or `body`");
        assert_eq!(e.code(), "unknown_field");
        assert_eq!(e.body()["field"], "sort");
        let e = argument_error("missing field `to`");
        assert_eq!(e.code(), "missing_fields");
        assert_eq!(e.body()["fields"], serde_json::json!(["to"]));
        let e = argument_error("invalid type: integer `5`, expected a string");
        assert_eq!(e.code(), "invalid_json");
        let e = argument_error(&format!("unknown field `a\r\n{}`", "b".repeat(300)));
        let field = e.body()["field"].as_str().unwrap().to_owned();
        assert!(!field.contains('\r') && field.ends_with('…'), "{field}");
    }

    #[test]
    fn pages_clamp_like_rest() {
        assert_eq!(page(None, None, 20, 200).unwrap().limit, 20);
        assert_eq!(page(Some(0), None, 20, 200).unwrap().limit, 1);
        assert_eq!(page(Some(100_000), None, 20, 200).unwrap().limit, 200);
        assert_eq!(
            page(Some(5), Some("bad cursor"), 20, 200)
                .unwrap_err()
                .code(),
            "invalid_cursor"
        );
    }
}
