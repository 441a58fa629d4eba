//! The `serin` command line: `run`, `check`, `demo`, `audit verify`, and
//! the REST client's subcommands (`client.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::{App, Listeners};

/// serin puts versions of a service behind one address and ships new ones
/// safely: weighted canaries, a fallback chain, breakers, and rollbacks
/// decided by itself when a canary goes bad.
///
/// `serin demo` shows it all in 35 s. `serin run -c serin.toml` serves;
/// `serin check serin.toml` validates a routing file. The other commands
/// talk to a running serin's admin API: give them `-c serin.toml` (or
/// `--admin URL`) after the command, e.g. `serin status -c serin.toml`.
#[derive(Debug, Parser)]
#[command(name = "serin", version)]
pub struct Cli {
    /// How log lines on stderr are written: `text` (colour only on a
    /// terminal) or `json` (one object per line, for a log shipper).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colour only when stderr is a terminal.
    Text,
    /// One JSON object per line: time, level, target, message and fields.
    Json,
}

/// One `serin` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (data plane + admin API).
    Run {
        /// The routing file.
        #[arg(long, short)]
        config: PathBuf,
        /// Data-plane worker threads, each with its own runtime (default:
        /// cores). The admin API and the engine run on one more thread.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Validate a routing file; errors as file:line:col: message, exit 1.
    Check {
        /// The routing file.
        file: PathBuf,
    },
    /// The embedded demo: fake versions, a canary, a fault, an automatic
    /// rollback, live on the terminal; exits by itself.
    Demo {
        /// Keep serving after the story, for the CLI and the API (Ctrl-C stops).
        #[arg(long)]
        keep: bool,
        /// The story on three replicas of one fleet, with an etcd the demo
        /// starts (needs `etcd` on PATH and a build with `--features fleet`).
        #[arg(long)]
        fleet: bool,
    },
    /// The audit log: `serin audit verify var/serin/audit.log`.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

/// `serin audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the hash chain: OK with the count, or the first bad line; exit 1.
    /// A fleet replica's mirror of the fleet's chain is
    /// `state.dir/fleet-audit.log`; `--cluster` checks etcd's own.
    Verify {
        /// The audit log (`audit.log`, or a fleet's `fleet-audit.log`).
        #[arg(required_unless_present = "cluster")]
        file: Option<PathBuf>,
        /// Check the fleet's chain in etcd (the routing file's `[cluster]`),
        /// and that it reaches the head the fleet's state records.
        #[arg(long, requires = "config")]
        cluster: bool,
        /// The routing file whose `[cluster]` names etcd (with `--cluster`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

// === impl Cli ===

impl Cli {
    /// Worker threads the main runtime should have, if the command says:
    /// `run` keeps one for the accept loops and the control plane (its
    /// data plane has threads of its own), the others take the default.
    pub fn workers(&self) -> Option<usize> {
        match self.command {
            Command::Run { .. } => Some(1),
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
            Command::Run { config, workers } => run(config, workers).await,
            Command::Check { file } => check(&file),
            Command::Demo { keep, fleet } => crate::demo::run(keep, fleet).await,
            Command::Audit {
                action:
                    AuditAction::Verify {
                        file,
                        cluster,
                        config,
                    },
            } => match (file, cluster, config) {
                (_, true, Some(config)) => audit_verify_cluster(&config).await,
                (Some(file), _, _) => audit_verify(&file),
                _ => ExitCode::from(2),
            },
            Command::Client(c) => c.exec().await,
        }
    }
}

/// The log filter: `SERIN_LOG` (an `EnvFilter` directive list) or
/// `default`, with rustls held to errors unless the directives name it.
/// rustls warns once per odd handshake (an IP address as SNI, say), so any
/// client could flood the log; serin logs failed handshakes itself, at a
/// bounded rate. `SERIN_LOG=info,rustls=debug` shows rustls again.
pub fn log_filter(env: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    let directives = env.filter(|d| !d.trim().is_empty()).unwrap_or(default);
    // A directive's target is what precedes `=` or `[`; `tokio_rustls=…`
    // is not rustls.
    let names_rustls = directives.split(',').any(|d| {
        let target = d.split(['=', '[']).next().unwrap_or("").trim();
        target == "rustls" || target.starts_with("rustls::")
    });
    let directives = if names_rustls {
        directives.to_owned()
    } else {
        format!("{directives},rustls=error")
    };
    tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("serin: SERIN_LOG: {e}; using {default:?}");
        tracing_subscriber::EnvFilter::new(format!("{default},rustls=error"))
    })
}

fn audit_verify(file: &std::path::Path) -> ExitCode {
    match serin_control::verify_audit_log(file) {
        Ok(n) => {
            println!("{}: OK, {n} entries, hash chain intact", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

/// `serin audit verify --cluster -c FILE`: the fleet's chain in etcd.
async fn audit_verify_cluster(config: &std::path::Path) -> ExitCode {
    let cfg = match serin_config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(cluster) = cfg.cluster else {
        eprintln!(
            "{}: no [cluster]: nothing to check in etcd",
            config.display()
        );
        return ExitCode::from(2);
    };
    verify_cluster(&cluster).await
}

#[cfg(feature = "fleet")]
async fn verify_cluster(cluster: &serin_config::Cluster) -> ExitCode {
    match serin_control::verify_cluster(cluster).await {
        Ok(n) => {
            println!(
                "etcd {}/audit: OK, {n} entries, hash chain intact up to the fleet's head",
                cluster.prefix
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("etcd {}/audit: {e}", cluster.prefix);
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "fleet"))]
async fn verify_cluster(_: &serin_config::Cluster) -> ExitCode {
    eprintln!("this serin was built without fleet mode: build it with `--features fleet`");
    ExitCode::from(2)
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
            for w in serin_config::warnings(&cfg) {
                println!("{}: warning: {w}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: PathBuf, workers: Option<usize>) -> ExitCode {
    let config = match serin_config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    for w in serin_config::warnings(&config) {
        tracing::warn!(file = %path.display(), "{w}");
    }
    // Read once: a token changed later needs a restart. Checked before any
    // bind: an open admin API beyond loopback must not even listen.
    let token = std::env::var(&config.admin.token_env).ok();
    let auth = match serin_control::Auth::resolve(&config.admin, token) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("serin: {e}");
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
    let threads = workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let app = match App::from_file(config, &path, auth) {
        Ok(a) => a.with_threads(threads),
        Err(e) => {
            eprintln!("serin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(reloader) = app.reloader().cloned() {
        tokio::spawn(hangup_reloads(reloader));
    }
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

/// SIGHUP re-reads the routing file (actor `signal`).
async fn hangup_reloads(reloader: std::sync::Arc<serin_control::Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("no SIGHUP handler: reload with POST /api/v1/reload");
        return;
    };
    while hup.recv().await.is_some() {
        let r = reloader.clone();
        let actor = serin_control::Actor::Signal;
        match tokio::task::spawn_blocking(move || r.reload(actor)).await {
            Ok(Ok(outcome)) => tracing::info!(%outcome, "SIGHUP reload"),
            // Rejections are logged and recorded by the reloader.
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "SIGHUP reload failed"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn rustls_is_held_to_errors_unless_named() {
        let f = |env: Option<&str>| log_filter(env, "info").to_string();
        assert!(f(None).contains("rustls=error"), "{}", f(None));
        assert!(f(Some("debug")).contains("rustls=error"));
        assert!(f(Some("info,tokio_rustls=debug")).contains("rustls=error"));
        assert!(!f(Some("info,rustls=debug")).contains("rustls=error"));
        assert!(!f(Some("rustls::server=trace")).contains("rustls=error"));
    }
}
