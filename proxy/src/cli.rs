//! The `serin` command line: `run`, `check`, `demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::{App, Listeners};

/// serin: a progressive-delivery reverse proxy.
#[derive(Debug, Parser)]
#[command(name = "serin", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One `serin` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (data plane + admin API).
    Run {
        /// The routing file.
        #[arg(long, short)]
        config: PathBuf,
        /// Runtime worker threads (default: cores).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Validate a routing file; errors as file:line:col: message, exit 1.
    Check {
        /// The routing file.
        file: PathBuf,
    },
    /// The embedded demo: fake versions, a serin, load; exits by itself.
    Demo,
}

// === impl Cli ===

impl Cli {
    /// Worker threads the runtime should have, if the command says.
    pub fn workers(&self) -> Option<usize> {
        match self.command {
            Command::Run { workers, .. } => workers,
            _ => None,
        }
    }

    /// The log level when `SERIN_LOG` is unset: the proxy tells what it
    /// does; the other commands print their own output only.
    pub fn default_log(&self) -> &'static str {
        match self.command {
            Command::Run { .. } => "info",
            _ => "warn",
        }
    }

    /// Runs the command; the exit code scripts can trust.
    pub async fn exec(self) -> ExitCode {
        match self.command {
            Command::Run { config, .. } => run(config).await,
            Command::Check { file } => check(&file),
            Command::Demo => crate::demo::run().await,
        }
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match serin_config::load(file) {
        Ok(cfg) => {
            let versions: usize = cfg.routes.iter().map(|r| r.versions.len()).sum();
            println!(
                "{}: ok: {} route(s), {} version(s)",
                file.display(),
                cfg.routes.len(),
                versions
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: PathBuf) -> ExitCode {
    let config = match serin_config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("serin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::new(config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("serin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(http), Some(admin)) = (&listeners.http, &listeners.admin) {
        tracing::info!(
            http = %http.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            admin = %admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            "serving"
        );
    }
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stop signal: draining");
        let _ = tx.send(true);
        stop_signal().await;
        tracing::warn!("second stop signal: exiting now");
        std::process::exit(1);
    });
    app.serve(listeners, rx).await;
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        // Without signal handlers the process still stops on the default action.
        _ => std::future::pending().await,
    }
}
