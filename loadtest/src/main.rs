//! `serin-load`: open-loop HTTP load with HDR latency, or one fake version.
//!
//! A thin CLI: it parses arguments and calls `serin_loadtest`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http::{HeaderName, HeaderValue, Method, Uri};
use serin_loadtest::duration::parse_duration;
use serin_loadtest::{FakeVersion, LoadConfig, Sticky};

/// Open-loop HTTP load generator (HDR latency, per-version split) and fake
/// versioned upstreams.
#[derive(Debug, Parser)]
#[command(name = "serin-load", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one fake version in the foreground until SIGINT or SIGTERM.
    Upstream(UpstreamArgs),
    /// Run a rollback drill against a running serin (its drills API) and
    /// report detection, decision and rollback times.
    Drill(DrillArgs),
}

#[derive(Debug, Args)]
struct DrillArgs {
    /// inject_errors | inject_latency | partial_outage
    #[arg(long)]
    scenario: String,
    /// serin's admin API.
    #[arg(long, default_value = "http://127.0.0.1:9901")]
    admin: String,
    /// Bearer token for the admin API.
    #[arg(long, env = "SERIN_ADMIN_TOKEN")]
    token: Option<String>,
    /// The route to drill.
    #[arg(long)]
    route: String,
    /// The version that gets the fault (the canary).
    #[arg(long)]
    version: String,
    /// Fraction of attempts that fail (inject_errors, partial_outage).
    #[arg(long, default_value_t = 0.5)]
    rate: f64,
    /// Added latency (inject_latency).
    #[arg(long, default_value = "2s")]
    latency: String,
    /// How long the fault lasts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Send load through serin at this URL while the drill runs.
    #[arg(long)]
    traffic: Option<Uri>,
    /// Requests per second of that load.
    #[arg(long, default_value_t = 200.0)]
    traffic_rate: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Target URL (http://host:port/path).
    #[arg(long, required = true)]
    url: Option<Uri>,
    /// Requests per second; 0 = closed loop, as fast as possible.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long to issue requests (500ms, 30s, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent connections (h2: concurrent streams).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Speak h2c (HTTP/2 prior knowledge).
    #[arg(long)]
    h2: bool,
    /// Request method.
    #[arg(long, default_value = "GET")]
    method: Method,
    /// Send a body of this many bytes with every request.
    #[arg(long)]
    body_size: Option<usize>,
    /// Extra request header, `name: value`; repeatable.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Also print answers per version (x-serin-version / x-upstream-version).
    #[arg(long)]
    split: bool,
    /// Cycle this header through --sticky-keys values (key-0, key-1, ...).
    #[arg(long)]
    sticky_header: Option<HeaderName>,
    /// How many distinct sticky keys.
    #[arg(long, default_value_t = 1000)]
    sticky_keys: u32,
}

#[derive(Debug, Args)]
struct UpstreamArgs {
    /// Version name, sent as x-upstream-version.
    #[arg(long)]
    name: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Fixed delay before every answer.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,
    /// Uniform random extra delay up to this.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    jitter: Duration,
    /// Fraction of requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Upstream(args)) => upstream(args).await,
        Some(Command::Drill(args)) => drill(args).await,
        None => load(cli.load).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serin-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn drill(args: DrillArgs) -> Result<(), Box<dyn std::error::Error>> {
    let json = args.json;
    let cfg = serin_loadtest::drill::DrillConfig {
        admin: args.admin,
        token: args.token,
        route: args.route,
        version: args.version,
        scenario: args.scenario,
        rate: args.rate,
        latency: args.latency,
        duration: args.duration,
        traffic: args.traffic.map(|u| (u, args.traffic_rate)),
    };
    let (report, load) = serin_loadtest::drill::run(cfg).await?;
    if json {
        println!("{}", serde_json::json!({ "drill": report, "load": load }));
    } else {
        print!("{}", serin_loadtest::drill::table(&report, load.as_ref()));
    }
    Ok(())
}

async fn load(args: LoadArgs) -> Result<(), Box<dyn std::error::Error>> {
    let url = args.url.ok_or("--url is required")?;
    let cfg = LoadConfig {
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        method: args.method,
        // A fixed filler byte: the content is irrelevant, the size is the point.
        body: args.body_size.map(|n| Bytes::from(vec![b'x'; n])),
        headers: args.headers,
        sticky: args.sticky_header.map(|header| Sticky {
            header,
            keys: args.sticky_keys,
        }),
        h2: args.h2,
        timeout: args.timeout,
        ..LoadConfig::new(url)
    };
    let report = serin_loadtest::run(cfg).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
        if args.split {
            println!("\n{}", report.split_table());
        }
    }
    Ok(())
}

async fn upstream(args: UpstreamArgs) -> Result<(), Box<dyn std::error::Error>> {
    let handle = FakeVersion::start_on(&args.name, args.listen)?;
    handle.faults().set_latency(args.latency);
    handle.faults().set_latency_jitter(args.jitter);
    handle.faults().set_error_rate(args.error_rate);
    println!("listening {} on {}", handle.name(), handle.addr());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    handle.shutdown().await;
    Ok(())
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header {text:?} is not `name: value`"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("{name:?}: {e}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("{value:?}: {e}"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["serin-load", "upstream", "--name", "v1"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Upstream(_))));
        let cli = Cli::try_parse_from([
            "serin-load",
            "--url",
            "http://127.0.0.1:1/",
            "--duration",
            "2m",
            "--header",
            "x-a: b",
        ])
        .unwrap();
        assert_eq!(cli.load.duration, Duration::from_secs(120));
        assert_eq!(cli.load.headers.len(), 1);
        assert!(Cli::try_parse_from(["serin-load"]).is_err());
    }

    #[test]
    fn headers_parse() {
        let (name, value) = parse_header("X-User-Id:  42 ").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-user-id", "42")
        );
        assert!(parse_header("no colon").is_err());
    }
}
