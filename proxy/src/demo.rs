//! `serin demo`: the embedded default. Three fake versions in-process, a
//! serin on an embedded routing table, a short open-loop load, and what the
//! clients saw. Needs no file and no other process; stops by itself.

use std::process::ExitCode;
use std::time::Duration;

use serin_loadtest::{FakeHandle, FakeVersion, LoadConfig};
use tokio::sync::watch;

use crate::{App, Listeners};

/// The demo's routing table; `{v1}`, `{v15}`, `{v2}` become the fake
/// versions' URLs. Listener addresses are placeholders: the demo binds
/// ephemeral loopback ports itself.
const DEMO_TABLE: &str = r#"
[listen]
http = "127.0.0.1:8080"

[[routes]]
name = "prompt-service"
hosts = ["*"]
path_prefix = "/"

  [[routes.versions]]
  name = "v1"
  url = "{v1}"
  weight = 90
  timeout = "10s"

  [[routes.versions]]
  name = "v1.5"
  url = "{v15}"
  weight = 0
  timeout = "5s"

  [[routes.versions]]
  name = "v2"
  url = "{v2}"
  weight = 10
  timeout = "3s"
"#;

const RATE: f64 = 400.0;
const DURATION: Duration = Duration::from_secs(3);

/// Runs the demo; exit 0 when the story played out.
pub(crate) async fn run() -> ExitCode {
    match play().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serin demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn play() -> Result<(), Box<dyn std::error::Error>> {
    let fakes: Vec<FakeHandle> = ["v1", "v1.5", "v2"]
        .into_iter()
        .map(FakeVersion::start)
        .collect::<Result<_, _>>()?;
    let table = DEMO_TABLE
        .replace("{v1}", &fakes[0].url())
        .replace("{v15}", &fakes[1].url())
        .replace("{v2}", &fakes[2].url());
    let mut config = serin_config::parse(&table, "<demo>")?;
    // The demo's live state and audit log are its own, gone when it ends.
    let state_dir = std::env::temp_dir().join(format!("serin-demo-{}", std::process::id()));
    config.state.dir.clone_from(&state_dir);
    let listeners = Listeners::ephemeral().await?;
    let http = listeners
        .http
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let admin = listeners
        .admin
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let (Some(http), Some(admin)) = (http, admin) else {
        return Err("listeners missing".into());
    };
    let app = App::new(config)?;
    let (stop, rx) = watch::channel(false);
    let server = tokio::spawn(app.serve(listeners, rx));

    println!("serin demo");
    println!(
        "  versions: v1 {}  v1.5 {}  v2 {}",
        fakes[0].url(),
        fakes[1].url(),
        fakes[2].url()
    );
    println!("  serin:    http://{http}   admin: http://{admin}/api/v1/status");
    println!("  table:    prompt-service  v1=90  v1.5=0  v2=10 (canary)");
    println!(
        "  load:     {RATE}/s open loop for {}s, 16 connections\n",
        DURATION.as_secs()
    );

    let report = serin_loadtest::run(LoadConfig {
        rate: RATE,
        duration: DURATION,
        connections: 16,
        ..LoadConfig::new(format!("http://{http}/").parse()?)
    })
    .await?;

    println!("which version answered:");
    for (version, n) in &report.versions {
        println!(
            "  {version:<5} {n:>6}  {:>5.1}%",
            100.0 * *n as f64 / report.requests.max(1) as f64
        );
    }
    println!(
        "\nrequests {}  errors {}  p50 {:.2} ms  p99 {:.2} ms",
        report.requests, report.errors, report.p50_ms, report.p99_ms
    );
    let _ = stop.send(true);
    let _ = server.await;
    for f in fakes {
        f.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    if report.errors > 0 || report.requests == 0 {
        return Err(format!("{} of {} requests failed", report.errors, report.requests).into());
    }
    Ok(())
}
