//! Assembling and starting the server: store, services, router, listener.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use ami_services::webhooks::WebhookSettings;
use ami_services::{Clock, Services, Settings, SystemClock};
use ami_store::{OpenOptions, Store};
use ami_webhooks::{Guard, RetrySchedule, Sender, SenderConfig};

use crate::config::Config;
use crate::http::{auth, hygiene, idempotency, json, request_id};
use crate::metrics;
use crate::pages::{self, Pages};
use crate::routes;

/// What every route shares, behind one handle: the router clones its state for each
/// request and each layer that takes it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub services: Services,
    pub pages: Arc<Pages>,
    pub body_limit: usize,
    pub idempotency_ttl_ms: i64,
    pub telco_inbound_enabled: bool,
    /// SHA-256 of `AMI_TELCO_INBOUND_KEY`; None when unset (telco routes answer 503).
    pub telco_key_hash: Option<String>,
    /// The sandbox network, which plays the far end of injected inbound calls.
    pub sandbox: ami_carrier::Sandbox,
    /// The process's metrics registry, with the HTTP metrics every request records.
    pub metrics: Arc<metrics::Metrics>,
    /// The SMPP carrier, when SMS go over SMPP: its sessions show in health and metrics.
    pub smpp: Option<ami_smpp::Smpp>,
    /// The SIP carrier, when calls go over SIP: its registrations and live calls show in
    /// health.
    pub sip: Option<ami_voice::SipCarrier>,
    /// Peers whose `X-Forwarded-For` names the client (`http::client_addr`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AMI: Agent Mobile Identity", description = "An AI agent's own phone number with SMS and voice, contracted by a human customer, operated with a token scoped to that one number."),
    modifiers(&SecuritySchemes),
    components(schemas(routes::ErrorBody)),
    tags(
        (name = "discovery", description = "Health, documents and the sandbox demo"),
        (name = "contracting", description = "Request, offer, customer data, contract, signature, activation"),
        (name = "mobile-identities", description = "The customer's administration of its numbers"),
        (name = "webhooks", description = "Signed event deliveries to the customer's endpoints, with their attempts"),
        (name = "agent", description = "What an agent token may do"),
        (name = "audit", description = "The append-only audit log"),
        (name = "admin", description = "The operator's routes"),
        (name = "telco", description = "Carrier partner callbacks, with the X-Telco-Key header"),
        (name = "sandbox", description = "Simulated network traffic, on sandbox servers only"),
    )
)]
struct ApiDoc;

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(desc))
                    .build(),
            )
        };
        components.add_security_scheme(
            "bearerAuth",
            bearer("Customer API key: amik_live_ followed by 48 hex"),
        );
        components.add_security_scheme(
            "agentBearer",
            bearer("Agent token: amiagt_live_ followed by 64 hex, bound to one MID"),
        );
        components.add_security_scheme("adminKey", bearer("The operator master key"));
        components.add_security_scheme(
            "telcoKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Telco-Key",
                "Carrier partner key",
            ))),
        );
    }
}

/// The router and the OpenAPI document of its routes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::router())
        .split_for_parts()
}

/// The document `GET /openapi.json` serves: the routes' own, completed with what the layers
/// around the handlers answer and with `/mcp` (`crate::openapi`).
pub fn openapi_document() -> serde_json::Value {
    crate::openapi::complete(&api().1)
}

pub fn router(state: AppState, config: &Config) -> Router {
    let (router, doc) = api();
    let mcp = ami_mcp::McpConfig {
        allowed_hosts: mcp_hosts(config, &state.services.settings.public_base_url),
        allowed_origins: Vec::new(),
        max_request_body_bytes: config.body_limit_bytes,
    };
    let router = router.merge(ami_mcp::router(state.services.clone(), mcp));
    let limits = (
        json::BodyLimit(config.body_limit_bytes),
        json::MaxJsonDepth(config.max_json_depth),
    );
    let services = state.services.clone();
    let idempotent = idempotency::Idempotency::new(
        services.store.clone(),
        move || services.now(),
        state.idempotency_ttl_ms,
        config.request_timeout_ms.duration(),
        config.body_limit_bytes,
    );
    router
        // Route layers wrap every route (not the fallback, nor a wrong method's 405); the
        // last one added runs first: the credential is checked before idempotency reads the
        // body or writes a key, and before the handler reads anything.
        .route_layer(from_fn_with_state(idempotent, idempotency::idempotency))
        .route_layer(from_fn_with_state(
            auth::Gate::new(state.clone(), &doc, config.metrics_public),
            auth::authenticate,
        ))
        .fallback(hygiene::fallback)
        .layer(axum::Extension(limits.0))
        .layer(axum::Extension(limits.1))
        .layer(axum::extract::DefaultBodyLimit::max(
            config.body_limit_bytes,
        ))
        .layer(hygiene::timeout_layer(config.request_timeout_ms.duration()))
        .layer(from_fn_with_state(
            hygiene::Drain::for_body_limit(config.body_limit_bytes),
            hygiene::drain_refused_bodies,
        ))
        .layer(from_fn(hygiene::json_errors))
        .layer(from_fn(hygiene::security_headers))
        .layer(from_fn_with_state(
            request_id::RequestLog {
                at_info: config.log_format == crate::config::LogFormat::Json,
            },
            request_id::request_id,
        ))
        // After routing (a `Router::layer` runs per route), so the route template is known.
        .layer(from_fn_with_state(state.metrics.clone(), metrics::record))
        .with_state(state)
}

/// The `Host` values `/mcp` answers: the configured ones, else loopback and the public
/// URL's host.
fn mcp_hosts(config: &Config, base_url: &str) -> Vec<String> {
    if !config.mcp_allowed_hosts.is_empty() {
        return config.mcp_allowed_hosts.clone();
    }
    let mut hosts: Vec<String> = ami_mcp::McpConfig::default().allowed_hosts;
    let authority = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    if !authority.is_empty() {
        hosts.push(authority.to_owned());
    }
    hosts
}

pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<std::io::Result<()>>,
    /// The operator key generated on this first start, already shown and then stored.
    pub generated_admin_key: Option<String>,
    pub services: Services,
    /// The sandbox carrier, whose record shows what reached the (fictional) network.
    pub carrier: ami_carrier::Sandbox,
    pub smpp: Option<ami_smpp::Smpp>,
    /// The SIP carrier, when calls go over SIP.
    pub sip: Option<ami_voice::SipCarrier>,
}

/// Opens and migrates the store. What reads or writes secrets at rest needs the key too:
/// [`crate::secrets_key::install`].
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = OpenOptions {
        allow_insecure_permissions: config.allow_insecure_db_permissions,
        max_connections: config.db_max_connections,
        durability: config.durability.into(),
    };
    let store = Store::open(config.database_url.as_str(), &options).await?;
    store.migrate().await?;
    Ok(store)
}

pub fn settings(config: &Config, base_url: String) -> Settings {
    let day = ami_core::time::DAY_MS;
    Settings {
        countries: config
            .countries
            .iter()
            .map(|c| ami_services::catalogue::Country {
                code: c.code.clone(),
                name: c.name.clone(),
                msisdn_prefix: c.msisdn_prefix.clone(),
                currency: c.currency.clone(),
                monthly_price: c.monthly_price_micros,
                setup_fee: c.setup_fee_micros,
                sim_types: c.sim_types.clone(),
                capabilities: c.capabilities.clone(),
                sms_price_eur: c.sms_price_eur_micros,
                call_per_min_eur: c.call_per_min_eur_micros,
            })
            .collect(),
        offer_ttl_ms: i64::from(config.offer_ttl_days) * day,
        contract_ttl_ms: i64::from(config.contract_ttl_days) * day,
        quarantine_ms: i64::from(config.number_quarantine_days) * day,
        mock_sign_enabled: config.mock_sign_enabled,
        sandbox: config.sandbox,
        public_base_url: base_url,
        webhooks: webhook_settings(config),
        dispatch: ami_services::dispatch::DispatchSettings {
            holder: config.replica_id.clone(),
            lease_ms: config.dispatch_lease_ms.as_i64(),
            carrier_timeout: config.carrier_timeout_ms.duration(),
            sms_validity_ms: config.sms_validity_ms.as_i64(),
        },
        max_call_ms: config.max_call_ms.as_i64(),
        kyc: ami_services::kyc::KycSettings {
            required: config.kyc_required,
            link_ttl_ms: i64::from(config.kyc_link_ttl_days) * day,
            retention_ms: i64::from(config.kyc_retention_days) * day,
            max_document_bytes: config.kyc_max_document_bytes,
        },
        rate_burst: i64::from(config.rate_burst),
        demo: ami_services::demo::DemoSettings {
            enabled: config.demo_enabled,
            per_address_per_hour: config.demo_per_address_per_hour,
        },
        sms_routes: (config.carrier == crate::config::Carrier::Smpp
            && !config.smpp_routes.is_empty())
        .then(|| {
            config
                .smpp_routes
                .iter()
                .map(|r| r.prefix.clone())
                .collect()
        }),
    }
}

/// What every process serving the tools needs in its store: the single-tenant account when
/// `api_key` is set, and on a sandbox its number pool (and the demo's, when the demo runs).
pub async fn bootstrap(services: &Services, config: &Config) -> anyhow::Result<()> {
    use ami_store::numbers::Pool;
    if let Some(key) = config.api_key.expose() {
        services.ensure_default_account(key).await?;
    }
    if config.sandbox {
        let demo: &[_] = if config.demo_enabled {
            &config.demo_pool
        } else {
            &[]
        };
        let pools = config
            .sandbox_pool
            .iter()
            .map(|r| (Pool::Sandbox, r))
            .chain(demo.iter().map(|r| (Pool::Demo, r)));
        for (pool, range) in pools {
            services
                .seed_number_pool(
                    pool,
                    &range.country,
                    range.from.as_str(),
                    range.count as usize,
                )
                .await?;
        }
    }
    Ok(())
}

/// The guard, retry schedule and lease of webhook deliveries.
pub fn webhook_settings(config: &Config) -> WebhookSettings {
    WebhookSettings {
        guard: Guard::new(config.webhook_allow_subnets.clone()),
        schedule: RetrySchedule {
            delays: config
                .webhook_retry_delays_ms
                .iter()
                .map(|delay| delay.duration())
                .collect(),
            retry_after_cap: config.webhook_retry_after_cap_ms.duration(),
            ..RetrySchedule::default()
        },
        lease_ms: config.webhook_lease_ms.as_i64(),
    }
}

/// The one HTTP client of webhook deliveries, behind the same guard as registration.
pub fn webhook_sender(config: &Config, guard: Guard) -> anyhow::Result<Sender> {
    let sender_config = SenderConfig {
        connect_timeout: config.webhook_connect_timeout_ms.duration(),
        total_timeout: config.webhook_timeout_ms.duration(),
        ..SenderConfig::default()
    };
    Ok(Sender::new(guard, sender_config)?)
}

/// Opens the store, bootstraps credentials and the sandbox pool, binds and serves.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// `start` with a clock of the caller's choosing (tests move time forward).
pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    if !config.sandbox {
        anyhow::bail!(
            "sandbox = false needs a real carrier, and none is configured: the sandbox is the only carrier of this build"
        );
    }
    let store = crate::secrets_key::install(open_store(&config).await?, &config).await?;
    // Bound first: a generated admin key is stored only once it has been shown, so a start
    // that cannot bind its port leaves nothing behind.
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (admin_hash, generated_admin_key) = ami_services::auth::bootstrap_admin_key(
        &store,
        config.admin_key.expose(),
        crate::cli::show_generated_admin_key,
    )
    .await?;
    let mut settings = settings(&config, config.base_url(addr));
    if settings.dispatch.holder.is_empty() {
        settings.dispatch.holder = replica_name(addr);
    }
    // Leases are taken back only by their owner: on SQLite the one dispatching process, on
    // PostgreSQL the one live process of a replica name.
    let ownership = if config.dispatch_enabled {
        Some(
            ami_store::ownership::own(config.database_url.as_str(), &settings.dispatch.holder)
                .await?,
        )
    } else {
        None
    };
    let services = Services::new(store, settings, clock, admin_hash);
    bootstrap(&services, &config).await?;
    let (_, api) = api();
    let openapi_json = serde_json::to_string_pretty(&crate::openapi::complete(&api))?;
    let pages = Pages {
        llms_txt: pages::llms::render(&api),
        docs_html: pages::docs::render(&api),
        openapi_json,
    };
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let idempotency_ttl_ms = i64::from(config.idempotency_ttl_hours) * 3_600_000;
    let carrier = sandbox_carrier(&config, events_tx.clone())?;
    // The sandbox's one "bind" is always up; the SMPP sessions show their own.
    services
        .metrics
        .carrier_binds_up(ami_carrier::Carrier::name(&carrier))
        .set(1);
    let sip = if config.call_carrier == crate::config::CallCarrier::Sip {
        let directory = Arc::new(crate::voice::Directory {
            services: services.clone(),
        });
        let settings = voice_settings(&config, services.settings.webhooks.guard.clone());
        Some(ami_voice::SipCarrier::start(settings, directory, events_tx.clone()).await?)
    } else {
        None
    };
    let smpp = (config.carrier == crate::config::Carrier::Smpp)
        .then(|| ami_smpp::Smpp::start(smpp_settings(&config), events_tx));
    // One carrier per channel; the sandbox carries whichever is not configured otherwise.
    let dispatching: Arc<dyn ami_carrier::Carrier> = if smpp.is_none() && sip.is_none() {
        Arc::new(carrier.clone())
    } else {
        Arc::new(ami_carrier::Channels {
            sms: match &smpp {
                Some(smpp) => Arc::new(smpp.clone()),
                None => Arc::new(carrier.clone()),
            },
            calls: match &sip {
                Some(sip) => Arc::new(sip.clone()),
                None => Arc::new(carrier.clone()),
            },
        })
    };
    if ownership.is_some() {
        let taken = services.take_back_leases().await?;
        let resumed = carrier.resume();
        if taken > 0 || resumed > 0 {
            tracing::info!(
                leases = taken,
                unreported = resumed,
                "took back what the previous process held"
            );
        }
    }
    let state = AppState(Arc::new(Shared {
        services: services.clone(),
        pages: Arc::new(pages),
        body_limit: config.body_limit_bytes,
        idempotency_ttl_ms,
        telco_inbound_enabled: config.telco_inbound_key.is_set(),
        telco_key_hash: config
            .telco_inbound_key
            .expose()
            .map(ami_core::secret::hash),
        sandbox: carrier.clone(),
        metrics: Arc::new(metrics::Metrics::new(&services, smpp.clone(), sip.clone())),
        smpp: smpp.clone(),
        sip: sip.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
    }));
    let app = router(state, &config);
    let shutdown = CancellationToken::new();
    // The workers stop once the HTTP server has drained: a request answered during the drain
    // may still hand them work.
    let workers_stop = CancellationToken::new();
    let webhooks = crate::workers::WebhookDelivery {
        sender: webhook_sender(&config, services.settings.webhooks.guard.clone())?,
        concurrency: config.webhook_concurrency as usize,
    };
    let dispatcher = crate::workers::spawn(
        services.clone(),
        dispatching,
        events_rx,
        workers_stop.clone(),
        config.dispatch_enabled,
        webhooks,
    );
    let sweeper =
        crate::idempotency_sweep::spawn(services.clone(), idempotency_ttl_ms, workers_stop.clone());
    let kyc_sweeper = crate::kyc_sweep::spawn(services.clone(), workers_stop.clone());
    // Only the process that owns the file takes the scheduled backups: one schedule per
    // database, whatever else runs on it.
    let backups = match (&config.backup_dir, &ownership) {
        (Some(dir), Some(_)) => ami_store::ownership::sqlite_path(config.database_url.as_str())
            .map(|source| {
                crate::backup::Schedule {
                    source,
                    dir: dir.clone(),
                    keep: config.backup_keep,
                    interval: std::time::Duration::from_secs(u64::from(
                        config.backup_interval_secs,
                    )),
                }
                .spawn(workers_stop.clone())
            }),
        _ => None,
    };
    let served = crate::serve::run(
        listener,
        app,
        config.header_read_timeout_ms.duration(),
        shutdown.clone(),
    );
    let stopping_smpp = smpp.clone();
    let stopping_sip = sip.clone();
    let task = tokio::spawn(async move {
        let served = served.await;
        // Live calls get their BYE while the workers still record how they ended.
        if let Some(sip) = stopping_sip {
            sip.shutdown().await;
        }
        workers_stop.cancel();
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        // After the dispatcher: no submission is under way any more when the sessions unbind.
        if let Some(smpp) = stopping_smpp {
            smpp.stop().await;
        }
        let _ = sweeper.await;
        let _ = kyc_sweeper.await;
        if let Some(backups) = backups {
            let _ = backups.await;
        }
        drop(ownership);
        served
    });
    Ok(Running {
        addr,
        shutdown,
        task,
        generated_admin_key,
        services,
        carrier,
        smpp,
        sip,
    })
}

/// The SIP carrier's settings: the user agent and trunks, RTP and codecs, and the guard
/// the agents' voice URLs must pass.
fn voice_settings(config: &Config, guard: Guard) -> ami_voice::VoiceSettings {
    ami_voice::VoiceSettings {
        sip: config.sip.settings(&config.sip_trunks),
        rtp_port_first: config.sip.rtp_port_first,
        rtp_port_last: config.sip.rtp_port_last,
        codecs: config.sip.codec_list(),
        bridge: ami_voice::BridgeConfig::default(),
        guard,
    }
}

/// The SMPP carrier's settings: its connections and routes, and a deadline for each batch
/// of submissions that leaves the dispatcher time to record their outcomes.
fn smpp_settings(config: &Config) -> ami_smpp::Settings {
    ami_smpp::Settings {
        connections: config.smpp.iter().map(|c| c.settings()).collect(),
        routes: config.smpp_routes.iter().map(|r| r.settings()).collect(),
        submit_deadline: config
            .carrier_timeout_ms
            .duration()
            .saturating_sub(std::time::Duration::from_millis(500)),
        reassembly_timeout: std::time::Duration::from_secs(60),
    }
}

/// The sandbox carrier, with its record of what reached its network in a file
/// (`sandbox_record_file`, or next to a SQLite database), so that it survives restarts as a
/// real network's does; in memory only otherwise.
fn sandbox_carrier(
    config: &Config,
    events: tokio::sync::mpsc::UnboundedSender<ami_carrier::Inbound>,
) -> anyhow::Result<ami_carrier::Sandbox> {
    let timings = ami_carrier::SandboxTimings::default();
    let next_to_database = || {
        ami_store::ownership::sqlite_path(config.database_url.as_str()).map(|db| {
            let mut path = db.into_os_string();
            path.push(".sandbox");
            std::path::PathBuf::from(path)
        })
    };
    match config.sandbox_record_file.clone().or_else(next_to_database) {
        Some(path) => Ok(ami_carrier::Sandbox::with_record_file(
            events, timings, &path,
        )?),
        None => Ok(ami_carrier::Sandbox::new(events, timings)),
    }
}

/// The name this process holds leases under: the host and the port it serves on.
fn replica_name(addr: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", addr.port())
}
