//! `serin demo --fleet`: the same story on three replicas of one fleet
//! (`[cluster]`), with a real etcd the demo starts on loopback ports (its
//! `etcd` from `PATH`, its data in a temp dir, stopped by its PID at the
//! end). The load is spread over the three data planes; the leader's
//! engine rolls the canary out and back on the fleet's merged windows, and
//! every change is in force on every replica within milliseconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serin_control::Live;
use serin_loadtest::{LoadConfig, Report};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{DEMO_TABLE, END_AT, FAULT_AT, RATE};
use crate::{App, Listeners};

const NODES: [&str; 3] = ["edge-a", "edge-b", "edge-c"];

/// One replica of the demo's fleet.
struct Replica {
    node: &'static str,
    live: Arc<Live>,
    http: SocketAddr,
    admin: SocketAddr,
}

/// The etcd the demo runs, killed by its PID when dropped.
struct Etcd {
    _child: Child,
    url: String,
}

pub(crate) async fn play(keep: bool) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("serin-demo-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let etcd = start_etcd(&dir).await?;
    let fakes = super::fake_versions()?;
    let table = DEMO_TABLE
        .replace("{v1}", &fakes[0].url())
        .replace("{v15}", &fakes[1].url())
        .replace("{v2}", &fakes[2].url());
    let mut replicas = Vec::new();
    let mut servers = Vec::new();
    let (stop, stopped) = watch::channel(false);
    for node in NODES {
        let text = format!(
            "[cluster]\netcd = [\"{}\"]\nprefix = \"/serin/demo\"\nnode = \"{node}\"\n{table}",
            etcd.url
        );
        let mut config = serin_config::parse(&text, "<demo>")?;
        config.state.dir = dir.join(node);
        let listeners = Listeners::ephemeral().await?;
        let addr = |l: &Option<tokio::net::TcpListener>| {
            l.as_ref()
                .and_then(|l| l.local_addr().ok())
                .ok_or("no listener")
        };
        let (http, admin) = (addr(&listeners.http)?, addr(&listeners.admin)?);
        let app = App::new(config)?;
        replicas.push(Replica {
            node,
            live: app.live().clone(),
            http,
            admin,
        });
        servers.push(tokio::spawn(app.serve(listeners, stopped.clone())));
    }

    println!("serin demo --fleet — three replicas, one fleet, one decision\n");
    println!("  etcd      {} (started by the demo)", etcd.url);
    for r in &replicas {
        println!(
            "  {}    http://{}    admin http://{}",
            r.node, r.http, r.admin
        );
    }
    println!("  route     prompt-service: canary v2 rolling out 5% → 20% → 50% every 4s,");
    println!("            fallback v2 → v1.5 → v1, rollback when error_rate > 10% holds 2s");
    println!(
        "  load      {:.0} requests/s on each replica; the leader judges the fleet's merged windows\n",
        RATE / 3.0
    );
    println!("   0.0s  v2 at 5% on every replica (the file's weight)");

    let load: Vec<tokio::task::JoinHandle<Result<Report, _>>> = replicas
        .iter()
        .map(|r| {
            let cfg = LoadConfig {
                rate: RATE / 3.0,
                duration: END_AT,
                connections: 16,
                ..LoadConfig::new(format!("http://{}/", r.http).parse().expect("url"))
            };
            tokio::spawn(serin_loadtest::run(cfg))
        })
        .collect();

    let started = Instant::now();
    let stamp = |t: Instant| format!("{:>5.1}s", t.duration_since(started).as_secs_f64());
    let mut leader: Option<String> = None;
    let mut shown: Vec<f64> = vec![5.0; 3];
    // When the first replica showed the current v2 weight, and who is left.
    let mut change: Option<(Instant, f64)> = None;
    let mut faulted = false;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < END_AT {
        tick.tick().await;
        let now = Instant::now();
        let l = replicas[0].live.fleet().and_then(|f| f.leader);
        if l.is_some() && l != leader {
            println!(
                "  {}  leader: {} (etcd election)",
                stamp(now),
                l.as_deref().unwrap_or("-")
            );
            leader = l;
        }
        if !faulted && started.elapsed() >= FAULT_AT {
            faulted = true;
            fakes[2].faults().set_error_rate(0.6);
            println!(
                "  {}  v2 starts failing: 60% of its answers are HTTP 500 (injected)",
                stamp(now)
            );
        }
        for (i, r) in replicas.iter().enumerate() {
            let w = v2_share(&r.live);
            if (w - shown[i]).abs() < 1e-9 {
                continue;
            }
            shown[i] = w;
            match change {
                Some((at, value)) if (value - w).abs() < 1e-9 => {
                    // Read every 10 ms: "within 10 ms" is as close as it says.
                    let ms = now.duration_since(at).as_secs_f64() * 1e3;
                    let when = if ms < 10.0 {
                        "within 10 ms".to_owned()
                    } else {
                        format!("{ms:.0} ms later")
                    };
                    println!("           {} has it too, {when}", r.node);
                }
                _ => {
                    change = Some((now, w));
                    let state = r.live.load().routes[0].phase.as_str();
                    println!(
                        "  {}  v2 at {:.0}% ({state}) on {}, decided by {}",
                        stamp(now),
                        w,
                        r.node,
                        leader.as_deref().unwrap_or("-")
                    );
                }
            }
        }
    }
    let decision = replicas[0]
        .live
        .shared()
        .events
        .since(0, Some("prompt-service"))
        .into_iter()
        .rev()
        .find(|e| e.kind == "rollback_started");
    if let Some(e) = decision {
        println!(
            "\nDecision: {} ({:?}), recorded on every replica: {}",
            e.kind, e.actor, e.reason
        );
    }
    let mut requests = 0;
    let mut errors = 0;
    for l in load {
        let r = l.await??;
        requests += r.requests;
        errors += r.errors;
    }
    println!("\nClients: {requests} requests over 3 replicas, {errors} errors (the chain answered every failed v2 attempt)");
    for r in &replicas {
        let snap = r.live.load();
        println!(
            "  {}  {} r{}  v2 weight {:.0}",
            r.node,
            snap.routes[0].phase.as_str(),
            snap.revision.trim_start_matches('r'),
            v2_share(&r.live)
        );
    }
    if keep {
        println!("\nThe fleet is still serving (Ctrl-C stops it): try");
        for r in &replicas {
            println!(
                "  curl -s http://{}/api/v1/status      # {}",
                r.admin, r.node
            );
        }
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop.send(true);
    for s in servers {
        let _ = s.await;
    }
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// v2's weight on `live`, in percent of the route's.
fn v2_share(live: &Live) -> f64 {
    let snap = live.load();
    let r = &snap.routes[0];
    let total: f64 = r.versions.iter().map(|v| v.weight).sum();
    r.versions
        .iter()
        .find(|v| &*v.name == "v2")
        .map_or(0.0, |v| {
            if total > 0.0 {
                v.weight * 100.0 / total
            } else {
                0.0
            }
        })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_etcd(dir: &std::path::Path) -> Result<Etcd, Box<dyn std::error::Error>> {
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("etcd").is_file());
    if !on_path {
        return Err(
            "`serin demo --fleet` needs etcd on PATH (Debian: apt-get install etcd-server)".into(),
        );
    }
    let (client, peer) = (free_port()?, free_port()?);
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .arg("--name=demo")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={url}"))
        .arg(format!("--advertise-client-urls={url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=demo={peer_url}"))
        .arg("--log-level=error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let etcd = Etcd { _child: child, url };
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", client))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("etcd did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(etcd)
}
