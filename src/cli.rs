//! The command line: `serve`, `check`, `demo`, `token`. Startup runs in three phases: load the
//! config (exit 2 on error, before anything binds), build the runtime, serve.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server::Gateway;

/// Exit code for an unusable configuration.
pub const EXIT_CONFIG: u8 = 2;

/// stagedoor: a reverse-proxy authorization gateway for Backstage-style permissions.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gateway (SIGHUP reloads the config; a bad file keeps the old one running).
    Serve {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Load and validate a config (and its policy and key files), print a summary.
    Check {
        /// Config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the gateway on config/demo.yaml in front of a built-in sample backend, and print
    /// ready-to-paste curl commands.
    Demo {
        /// Demo config file.
        #[arg(long, short, default_value = "config/demo.yaml")]
        config: PathBuf,
    },
    /// Mint a signed token with a local private key (PEM: EC P-256, RSA or Ed25519).
    Token {
        /// Private key PEM file.
        #[arg(long)]
        key: PathBuf,
        /// `sub`: the user entity ref.
        #[arg(long)]
        sub: String,
        /// `ent`: ownership refs, comma-separated.
        #[arg(long, default_value = "")]
        ent: String,
        /// Lifetime, e.g. `1h`.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
        /// `kid` header.
        #[arg(long)]
        kid: Option<String>,
        /// `iss` claim.
        #[arg(long)]
        iss: Option<String>,
        /// `aud` claim.
        #[arg(long)]
        aud: Option<String>,
    },
}

/// Runs a command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    init_tracing();
    match cli.command {
        Command::Check { config } => match Config::load(&config) {
            Ok(loaded) => {
                let text = format!(
                    "{}: ok (listen {}, permission.enabled {}, unmatched {:?}, permission API {})\n{}",
                    config.display(),
                    loaded.listen,
                    loaded.permission_enabled,
                    loaded.unmatched,
                    loaded.permission_api.as_ref().map_or("off", |api| api.path.as_str()),
                    loaded.summary
                );
                // A closed pipe (`check | head`) is not worth a panic.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(err) => config_error(&err),
        },
        Command::Serve { config } => {
            let loaded = match Config::load(&config) {
                Ok(loaded) => loaded,
                Err(err) => return config_error(&err),
            };
            let runtime = match runtime(loaded.worker_threads) {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("cannot start the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(serve(loaded, config))
        }
        Command::Demo { config } => match runtime(None) {
            Ok(runtime) => runtime.block_on(crate::demo::run(config)),
            Err(err) => {
                eprintln!("cannot start the runtime: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Token { key, sub, ent, ttl, kid, iss, aud } => {
            let ent: Vec<String> = ent.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            let claims = crate::mint::Claims::new(&sub, &ent, Duration::from(ttl), iss, aud);
            match crate::mint::Minter::from_pem_file(&key, kid).and_then(|m| m.mint(&claims)) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("{err}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
    }
}

fn config_error(err: &crate::config::ConfigError) -> ExitCode {
    eprintln!("invalid configuration: {err}");
    ExitCode::from(EXIT_CONFIG)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAGEDOOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// The tokio runtime, sized from the machine unless `worker_threads` is set. One worker thread
/// means tokio's single-threaded scheduler: the same one thread, without the work-stealing
/// bookkeeping and cross-thread wake-ups of the multi-threaded one.
pub fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

async fn serve(config: Config, path: PathBuf) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {}: {err}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(listen = %config.listen, config = %path.display(), "stagedoor serving");
    let gateway = match Gateway::new(&config).await {
        Ok(gateway) => gateway,
        Err(err) => {
            eprintln!("cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let reloader = tokio::spawn(reload_on_sighup(gateway.clone(), path, config.listen));
    gateway.serve(listener, config.shutdown_grace, shutdown_signal()).await;
    reloader.abort();
    ExitCode::SUCCESS
}

async fn reload_on_sighup(gateway: Gateway, path: PathBuf, listen: std::net::SocketAddr) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        match Config::load(&path) {
            Ok(config) => {
                if config.listen != listen {
                    tracing::warn!(old = %listen, new = %config.listen, "server.listen changes need a restart; keeping the old address");
                }
                if let Err(err) = gateway.reload(&config).await {
                    tracing::error!(error = %err, "reload refused; the previous configuration keeps running");
                }
            }
            Err(err) => tracing::error!(error = %err, "reload refused; the previous configuration keeps running"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
