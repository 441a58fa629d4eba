//! The `serin` binary: parse the command line, set up tracing, the rustls
//! crypto provider and the runtime, and hand over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use serin_proxy::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = serin_proxy::cli::log_filter(
        std::env::var("SERIN_LOG").ok().as_deref(),
        cli.default_log(),
    );
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        // Colour codes only for a person at a terminal, never into a file.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    // One rustls crypto provider for the process, before any TLS config.
    serin_proxy::install_crypto_provider();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.workers() {
        rt.worker_threads(n.max(1));
    }
    match rt.enable_all().build() {
        Ok(rt) => rt.block_on(cli.exec()),
        Err(e) => {
            eprintln!("serin: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
