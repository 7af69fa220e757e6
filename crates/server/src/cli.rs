//! The `ami` command line.

use std::sync::Arc;

use anyhow::Context;
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
    /// Secrets-at-rest commands.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Take a consistent online copy of the SQLite database (while the server runs) into DIR,
    /// named `ami-<UTC time>.db`, mode 0600; then delete all but the newest copies there.
    Backup {
        /// The backup directory (created 0700 when missing).
        #[arg(long)]
        to: std::path::PathBuf,
        /// How many copies to keep in DIR, the newest; default `backup_keep`.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        keep: Option<u32>,
    },
    /// Put a backup in place of the SQLite database; refused while a server has the database
    /// open, and unless the backup passes `PRAGMA integrity_check` and the audit chain check.
    /// The database it replaces is kept beside it (`<name>.before-restore-<time>`).
    Restore {
        /// A backup taken by `ami backup` (or any SQLite copy of an AMI database).
        file: std::path::PathBuf,
    },
    /// Check the configuration, the database, the carriers and the clock; one line per
    /// problem with what to fix; exit status 1 when anything failed.
    Doctor,
    /// Webhook commands for receivers.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret under a new key, in one transaction. Stop the servers
    /// first; then start them with the new key (`secrets_key_file`). The key file is made
    /// (mode 0600, a fresh random key) when it does not exist.
    RotateKey {
        #[arg(long)]
        new_key_file: std::path::PathBuf,
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
    let report = audit_report(config).await?;
    print(&report)?;
    Ok(report.first_broken.is_none())
}

/// Every audit chain of the configured store, checked; the store is closed after.
pub async fn audit_report(config: &Config) -> anyhow::Result<ami_services::audit_log::ChainReport> {
    let s = offline_services(config).await?;
    let report = s.verify_audit_chain().await.map_err(refused);
    s.store.close().await;
    report
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

/// `ami backup --to DIR`: prints the path of the new copy.
pub async fn run_backup(
    config: &Config,
    dir: std::path::PathBuf,
    keep: Option<u32>,
) -> anyhow::Result<()> {
    let Some(source) = ami_store::ownership::sqlite_path(config.database_url.as_str()) else {
        anyhow::bail!(
            "ami backup copies a SQLite database; on PostgreSQL use pg_dump (docs/deploy.md)"
        );
    };
    let keep = keep.unwrap_or(config.backup_keep);
    let path = tokio::task::spawn_blocking(move || {
        crate::backup::take(&source, &dir, keep, ami_core::time::now_ms())
    })
    .await??;
    println!("{}", path.display());
    Ok(())
}

/// `ami restore FILE`.
pub async fn run_restore(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let restored = crate::restore::run(config, file).await?;
    println!(
        "restored {} into {} ({} audit events verified)",
        file.display(),
        restored.database.display(),
        restored.audit_events
    );
    if let Some(previous) = restored.previous {
        println!("the previous database is kept at {}", previous.display());
    }
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
            let store = crate::secrets_key::install(app::open_store(config).await?, config).await?;
            let services = Services::new(
                store,
                app::settings(config, config.base_url(config.listen)),
                Arc::new(SystemClock),
                String::new(),
            );
            app::bootstrap(&services, config).await?;
            ami_mcp::StdioBackend::Local(services)
        }
    };
    ami_mcp::serve_stdio(backend, credentials).await?;
    Ok(())
}

/// `ami secrets rotate-key`: the current key (as `ami serve` would load it) opens every
/// sealed secret, the new one seals it again, all in one transaction.
pub async fn run_secrets_rotate(
    config: &Config,
    new_key_file: &std::path::Path,
) -> anyhow::Result<()> {
    // On SQLite a running server holds the database: rotating under it would leave it with
    // a key that no longer opens anything.
    let _owned = match ami_store::ownership::sqlite_path(config.database_url.as_str()) {
        Some(_) => Some(
            ami_store::ownership::own(config.database_url.as_str(), "secrets-rotate")
                .await
                .map_err(|e| anyhow::anyhow!("stop the server first: {e}"))?,
        ),
        None => None,
    };
    let store = crate::secrets_key::install(app::open_store(config).await?, config).await?;
    let new = if new_key_file.exists() {
        crate::secrets_key::read_key_file(new_key_file, config.allow_insecure_db_permissions)
    } else {
        crate::secrets_key::create_key_file(new_key_file)
    }
    .with_context(|| format!("new key file {}", new_key_file.display()))?;
    let mut tx = store.begin().await?;
    let moved = ami_store::sealed::rotate(&mut tx, store.secrets()?, &new).await?;
    ami_store::commit(tx).await?;
    store.close().await;
    let path = new_key_file.display();
    println!(
        "re-sealed {moved} secret(s) under the key in {path}; start the server with secrets_key_file = \"{path}\" (AMI_SECRETS_KEY_FILE)"
    );
    Ok(())
}
