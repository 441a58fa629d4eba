//! `serin demo`: the embedded default, serin's whole story in one command.
//! Three fake versions in-process, a serin on an embedded routing table
//! (canary v2 on a progressive rollout, chain v2 → v1.5 → v1, a breaker,
//! rollback rules with short windows, a mirror of 10% of the requests to
//! v2, a quality signal) and an open-loop load; then v2
//! starts failing, the engine pulls it, and the clients never notice
//! thanks to the fallback chain. Needs no file and no other process; stops
//! by itself in about 40 s (`--keep` leaves it running).

#[cfg(feature = "fleet")]
mod fleet;
mod screen;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serin_loadtest::{FakeHandle, FakeVersion, LoadConfig, Progress};
use tokio::sync::watch;
use tokio::time::Instant;

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
  weight = 95
  timeout = "2s"

  [[routes.versions]]
  name = "v1.5"
  url = "{v15}"
  weight = 0
  timeout = "1s"

  [[routes.versions]]
  name = "v2"
  url = "{v2}"
  weight = 5
  timeout = "500ms"

  [routes.fallback]
  chain = ["v2", "v1.5", "v1"]
  on = ["connect", "timeout", "5xx"]

  [routes.breaker]
  error_rate = "50%"
  min_requests = 30
  window = "5s"
  open_for = "10s"

  [routes.rollback]
  stable = "v1"
  window = "5s"
  confirm = "2s"
  min_requests = 20
  critical = ["error_rate > 10%", "breaker_open"]
  warning = ["p99 > baseline * 3"]
  on_warning = "pause"

  [routes.rollout]
  steps = ["5%", "20%", "50%"]
  every = "4s"

  [routes.override]
  header = "x-serin-version"
  allow = ["v1.5", "v2"]

  [routes.mirror]
  to = "v2"
  percent = 10
  compare = ["status"]

  [[routes.signals]]
  name = "flag"
  header = "x-quality-flag"
"#;

const RATE: f64 = 300.0;
/// When v2 starts failing, after the rollout has climbed.
const FAULT_AT: Duration = Duration::from_secs(14);
/// When the story ends.
const END_AT: Duration = Duration::from_secs(32);

/// Runs the demo; exit 0 when the story played out. `fleet`: on three
/// replicas sharing state through an etcd the demo starts.
pub(crate) async fn run(keep: bool, fleet: bool) -> ExitCode {
    let played = if fleet {
        play_fleet(keep).await
    } else {
        play(keep).await
    };
    match played {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serin demo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "fleet")]
async fn play_fleet(keep: bool) -> Result<(), Box<dyn std::error::Error>> {
    fleet::play(keep).await
}

#[cfg(not(feature = "fleet"))]
async fn play_fleet(_: bool) -> Result<(), Box<dyn std::error::Error>> {
    Err("this serin was built without fleet mode: \
         `cargo run --release --features fleet --bin serin -- demo --fleet` \
         (needs protoc: apt-get install protobuf-compiler)"
        .into())
}

/// The demo's three fake versions (v1, v1.5, v2), answering in 2–8 ms.
fn fake_versions() -> std::io::Result<Vec<FakeHandle>> {
    let fakes: Vec<FakeHandle> = ["v1", "v1.5", "v2"]
        .into_iter()
        .map(FakeVersion::start)
        .collect::<Result<_, _>>()?;
    for f in &fakes {
        f.faults().set_latency(Duration::from_millis(2));
        f.faults().set_latency_jitter(Duration::from_millis(6));
    }
    Ok(fakes)
}

/// One request forcing `version`: who answered, and how.
async fn forced_request(http: std::net::SocketAddr, version: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let req = http::Request::get(format!("http://{http}/"))
        .header("x-serin-version", version)
        .body(Empty::new());
    let Ok(req) = req else {
        return "not sent".to_owned();
    };
    match client.request(req).await {
        Ok(resp) => {
            let by = resp
                .headers()
                .get("x-serin-version")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            format!("{status} from {by}")
        }
        Err(e) => format!("failed: {e}"),
    }
}

async fn play(keep: bool) -> Result<(), Box<dyn std::error::Error>> {
    let fakes = fake_versions()?;
    // Each version flags some answers as poor in a header serin reads.
    fakes[0].faults().set_signal_rate(0.01);
    fakes[2].faults().set_signal_rate(0.03);
    let table = DEMO_TABLE
        .replace("{v1}", &fakes[0].url())
        .replace("{v15}", &fakes[1].url())
        .replace("{v2}", &fakes[2].url());
    let mut config = serin_config::parse(&table, "<demo>")?;
    // The demo's live state and audit log are its own, gone when it ends.
    let state_dir = std::env::temp_dir().join(format!("serin-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    config.state.dir.clone_from(&state_dir);
    let listeners = Listeners::ephemeral().await?;
    let http = listeners
        .http
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?
        .ok_or("no http listener")?;
    let admin = listeners
        .admin
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?
        .ok_or("no admin listener")?;
    let app = App::new(config)?;
    let live = app.live().clone();
    let (stop, rx) = watch::channel(false);
    let server = tokio::spawn(app.serve(listeners, rx));

    println!("serin demo — progressive delivery with automatic rollback\n");
    println!(
        "  versions  v1 {}   v1.5 {}   v2 {}",
        fakes[0].url(),
        fakes[1].url(),
        fakes[2].url()
    );
    println!("  serin     http://{http}    admin http://{admin}");
    println!(
        "  page      http://{admin}/ui   the live status page (the demo sets no token: any acts)"
    );
    println!(
        "  route     prompt-service: stable v1, canary v2 rolling out 5% → 20% → 50% every 4s"
    );
    println!("            fallback v2 → v1.5 → v1; rollback when error_rate > 10% holds 2s");
    println!("            10% of requests also copied to v2 (its answers compared, clients never see them);");
    println!("            answers flagged x-quality-flag counted as flag_rate (the header hidden from clients)");
    println!("  load      {RATE:.0} requests/s, open loop");
    if keep {
        println!("  --keep    serin keeps serving after the story, until Ctrl-C\n");
    } else {
        println!(
            "  the story takes ~{}s; `serin demo --keep` keeps serin running afterwards\n",
            END_AT.as_secs()
        );
    }

    let progress = Arc::new(Progress::default());
    let load = tokio::spawn(serin_loadtest::run(LoadConfig {
        rate: RATE,
        duration: END_AT,
        connections: 32,
        progress: Some(progress.clone()),
        ..LoadConfig::new(format!("http://{http}/").parse()?)
    }));

    let started = Instant::now();
    let mut screen = screen::Screen::new(live.clone(), progress.clone(), started);
    // A smoke test reaches v1.5, at weight 0, on purpose; users never do.
    let forced = forced_request(http, "v1.5").await;
    screen.note(&format!(
        "smoke test: GET / with x-serin-version: v1.5 (weight 0) → {forced}"
    ));
    let mut faulted = false;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while started.elapsed() < END_AT {
        tick.tick().await;
        if !faulted && started.elapsed() >= FAULT_AT {
            faulted = true;
            fakes[2].faults().set_error_rate(0.6);
            screen.note("v2 starts failing: 60% of its answers are HTTP 500 (injected)");
        }
        screen.draw();
    }
    let report = load.await??;
    screen.finish(&report);

    if keep {
        // The addresses are this run's ephemeral ports: they work now.
        println!("\nserin is still serving: try it yourself (Ctrl-C stops it):");
        println!("  open http://{admin}/ui in a browser        # the status page");
        println!("  curl -s http://{admin}/api/v1/status");
        println!("  curl -s 'http://{admin}/api/v1/routes/prompt-service/stats?window=60s'");
        println!("  curl -s http://{admin}/api/v1/routes/prompt-service/mirror");
        println!("  curl -s http://{admin}/api/v1/events");
        println!("  curl -s http://{admin}/metrics | grep serin_");
        println!("  curl -s -H 'x-serin-version: v2' http://{http}/   # force a version");
        println!("  serin status --admin http://{admin}");
        println!("  serin incidents --admin http://{admin}");
    } else {
        println!(
            "\nserin has stopped. `serin demo --keep` plays the same story and keeps serving, \
             with the commands to try against it."
        );
    }

    if keep {
        println!("\n--keep: serving on http://{http} (admin http://{admin}); Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop.send(true);
    let _ = server.await;
    for f in fakes {
        f.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    if report.errors > 0 || report.requests == 0 {
        return Err(format!(
            "{} of {} client requests failed",
            report.errors, report.requests
        )
        .into());
    }
    let rolled_back = live.snapshot().routes.iter().all(|r| {
        r.versions
            .iter()
            .all(|v| &*v.name != "v2" || v.weight == 0.0)
    });
    if !rolled_back {
        return Err("the canary was not rolled back".into());
    }
    Ok(())
}
