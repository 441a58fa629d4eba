//! The `serin` binary: parse the command line, set up tracing, the rustls
//! crypto provider and the runtime, and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use serin_proxy::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(serin_proxy::cli::log_filter(
            std::env::var("SERIN_LOG").ok().as_deref(),
            cli.default_log(),
        ))
        .with_writer(std::io::stderr)
        .init();
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
