//! The `ami` command line.

use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use ami_services::admin::{LoadNumbers, NewCustomer, Reason};
use ami_services::{Services, SystemClock};
use ami_store::page::PageRequest;

use crate::app;
use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "ami",
    version,
    about = "AMI: an AI agent's own phone number, contracted by a human, audited end to end"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP API and its workers.
    Serve {
        /// Start even if the SQLite file is readable by group or others.
        #[arg(long)]
        allow_insecure_db_permissions: bool,
        /// `all` (default): the API and the workers (carrier dispatch, webhook deliveries);
        /// `api`: the API only, queued jobs and deliveries are left to a replica that runs the
        /// workers (same as `dispatch_enabled = false`).
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Operator commands against the store, for when the HTTP admin API is not wanted.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Audit log commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Serve the `ami.*` MCP tools over stdin/stdout, for desktop agents. With `AMI_API_URL`
    /// set, relays to that server's `/mcp`; otherwise runs the tools over the local store
    /// (`DATABASE_URL`). Credentials: `AMI_API_KEY` (customer tools), `AMI_AGENT_TOKEN`
    /// (agent tools).
    Mcp {
        /// Speak MCP on stdin/stdout (the only transport of this command; HTTP is at
        /// `/mcp` of `ami serve`).
        #[arg(long, required = true)]
        stdio: bool,
    },
    /// Webhook commands for receivers.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Verify a captured delivery, both signature schemes; exit status 1 unless both hold.
    Verify(crate::webhook_verify::VerifyArgs),
}

/// What one `ami serve` process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The HTTP API and the workers.
    All,
    /// The HTTP API only.
    Api,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check every hash chain and report the first tampered event.
    Verify,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a customer account; prints its API key once.
    CreateCustomer {
        #[arg(long)]
        name: String,
        #[arg(long)]
        billing_email: Option<String>,
    },
    /// Replace an account's API key; the old one stops working at once.
    RotateKey { account_id: String },
    /// Suspend an account: its key and all its agent tokens stop working.
    Suspend {
        account_id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reactivate a suspended account.
    Activate { account_id: String },
    /// Number inventory.
    Numbers {
        #[command(subcommand)]
        command: NumbersCommand,
    },
}

#[derive(Subcommand)]
pub enum NumbersCommand {
    /// Load numbers for a country: a list (--number, repeatable) or a range (--from, --to).
    Add(AddNumbers),
    /// List the inventory.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        country: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
}

#[derive(Args)]
pub struct AddNumbers {
    #[arg(long)]
    country: String,
    #[arg(long = "number")]
    numbers: Vec<String>,
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
}

/// Shows the admin key generated on a first start, once: only its hash is kept, and it is
/// stored after this returns (a failure to write here stops the start before that).
pub fn show_generated_admin_key(key: &str) {
    eprintln!("\nGenerated admin key (shown once, store it now): {key}\n");
}

fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Services for one-shot commands: the store, no listener, no admin key needed.
async fn offline_services(config: &Config) -> anyhow::Result<Services> {
    let store = app::open_store(config).await?;
    Ok(Services::new(
        store,
        app::settings(config, config.base_url(config.listen)),
        Arc::new(SystemClock),
        String::new(),
    ))
}

fn refused(e: ami_services::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", e.body())
}

#[expect(
    clippy::disallowed_methods,
    reason = "the console holds the database: its admin commands act as the operator"
)]
pub async fn run_admin(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let store = app::open_store(config).await?;
    // The console holds the database: it is the operator.
    let (s, admin) = Services::console(
        store,
        app::settings(config, config.base_url(config.listen)),
        Arc::new(SystemClock),
    );
    match command {
        AdminCommand::CreateCustomer {
            name,
            billing_email,
        } => print(
            &s.create_customer(
                &admin,
                NewCustomer {
                    name: Some(name),
                    billing_email,
                },
            )
            .await
            .map_err(refused)?,
        ),
        AdminCommand::RotateKey { account_id } => print(
            &s.rotate_customer_key(&admin, &account_id)
                .await
                .map_err(refused)?,
        ),
        AdminCommand::Suspend { account_id, reason } => print(
            &s.suspend_customer(&admin, &account_id, Reason { reason })
                .await
                .map_err(refused)?,
        ),
        AdminCommand::Activate { account_id } => print(
            &s.activate_customer(&admin, &account_id, Reason::default())
                .await
                .map_err(refused)?,
        ),
        AdminCommand::Numbers {
            command: NumbersCommand::Add(a),
        } => {
            let numbers = (!a.numbers.is_empty()).then_some(a.numbers);
            let input = LoadNumbers {
                country: Some(a.country),
                number: None,
                numbers,
                from: a.from,
                to: a.to,
                capabilities: None,
            };
            print(&s.load_numbers(&admin, input).await.map_err(refused)?)
        }
        AdminCommand::Numbers {
            command:
                NumbersCommand::List {
                    status,
                    country,
                    limit,
                },
        } => {
            let page = PageRequest {
                limit: limit.clamp(1, 10_000),
                cursor: None,
            };
            print(
                &s.list_numbers(&admin, status.as_deref(), country.as_deref(), &page)
                    .await
                    .map_err(refused)?,
            )
        }
    }
}

/// Exit status 0 when every chain holds, 1 with the first broken link otherwise.
pub async fn run_audit_verify(config: &Config) -> anyhow::Result<bool> {
    let s = offline_services(config).await?;
    let report = s.verify_audit_chain().await.map_err(refused)?;
    print(&report)?;
    Ok(report.first_broken.is_none())
}

pub async fn run_migrate(config: &Config) -> anyhow::Result<()> {
    let store = ami_store::Store::open(
        config.database_url.as_str(),
        &ami_store::OpenOptions {
            allow_insecure_permissions: config.allow_insecure_db_permissions,
            max_connections: 2,
            durability: config.durability.into(),
        },
    )
    .await?;
    let applied = store.migrate().await?;
    println!("migrations applied: {applied:?}");
    Ok(())
}

/// `ami mcp --stdio`. Logs go to stderr; stdout carries only the protocol.
pub async fn run_mcp_stdio(config: &Config) -> anyhow::Result<()> {
    let credentials = ami_mcp::StdioCredentials::from_env(|k| std::env::var(k).ok());
    let remote = std::env::var("AMI_API_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let backend = match remote {
        Some(url) => ami_mcp::StdioBackend::Remote { url },
        None => {
            let services = offline_services(config).await?;
            app::bootstrap(&services, config).await?;
            ami_mcp::StdioBackend::Local(services)
        }
    };
    ami_mcp::serve_stdio(backend, credentials).await?;
    Ok(())
}
