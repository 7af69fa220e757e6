use std::process::ExitCode;

use clap::Parser;

use ami_server::cli::{
    AuditCommand, Cli, Command, ConfigCommand, Role, SecretsCommand, WebhookCommand, run_admin,
    run_audit_verify, run_backup, run_mcp_stdio, run_migrate, run_restore, run_secrets_rotate,
};
use ami_server::config::Config;

/// jemalloc rather than glibc's allocator: every request allocates and frees on both cores,
/// and glibc's allocator was about a fifth of the server's CPU. Its unprefixed symbols make
/// it the `malloc` of the C code too (SQLite).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // A receiver's check needs no server configuration.
    if let Command::Webhook {
        command: WebhookCommand::Verify(args),
    } = &cli.command
    {
        return match ami_server::webhook_verify::run(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    // The doctor reports a configuration that does not load, among its findings.
    if let Command::Doctor = &cli.command {
        let env: std::collections::HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        return if ami_server::doctor::run_with_env(&env).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let mut config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let traces = match ami_server::logging::init(&config) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve {
            allow_insecure_db_permissions,
            role,
        } => {
            config.allow_insecure_db_permissions |= allow_insecure_db_permissions;
            match role {
                Some(Role::Api) => config.dispatch_enabled = false,
                Some(Role::All) => config.dispatch_enabled = true,
                None => {}
            }
            serve(config).await
        }
        Command::Migrate => run_migrate(&config).await,
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
        Command::Admin { command } => run_admin(&config, command).await,
        Command::Secrets {
            command: SecretsCommand::RotateKey { new_key_file },
        } => run_secrets_rotate(&config, &new_key_file).await,
        Command::Mcp { stdio: _ } => run_mcp_stdio(&config).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => match run_audit_verify(&config).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Backup { to, keep } => run_backup(&config, to, keep).await,
        Command::Restore { file } => run_restore(&config, &file).await,
        // Answered above, before the configuration is loaded.
        Command::Webhook { .. } | Command::Doctor => Ok(()),
    };
    // The last spans are sent before the process ends.
    if let Some(traces) = traces {
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // A generated admin key is shown by the start itself, before its hash is stored.
    let running = ami_server::app::start(config).await?;
    tracing::info!(addr = %running.addr, "ami listening");
    let shutdown = running.shutdown.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        shutdown.cancel();
    });
    running.task.await??;
    running.services.store.close().await;
    Ok(())
}
