//! Fleet mode, measured with a real etcd and three `serin` processes (the
//! release build: `loadtest/bench/fleet.sh` builds it, then runs this):
//! 1. how long a weight change made on one replica takes to be in force
//!    on the others: 50 changes on A, B and C polled every millisecond;
//! 2. time to safety for the fleet: load on all three, v2 made to fail
//!    every answer, the time until all three send it nothing (3 rounds),
//!    against the bar of `confirm + 2 s`, and the clients' errors.
//!
//! Loopback only, bounded (50 changes, 3 rounds of 12 s).

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::etcd::Etcd;
use serin_tests::process::SerinProcess;
use serin_tests::{BEARER, TOKEN};

const CHANGES: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let replicas: Vec<SerinProcess> = ["a", "b", "c"]
        .iter()
        .zip(&dirs)
        .map(|(node, dir)| {
            let file = format!(
                "[cluster]\netcd = [\"{}\"]\nprefix = \"/serin/bench\"\nnode = \"{node}\"\n\n\
                 [[routes]]\nname = \"svc\"\n  [[routes.versions]]\n  name = \"v1\"\n  url = \"{}\"\n  weight = 90\n\
                 \x20 [[routes.versions]]\n  name = \"v2\"\n  url = \"{}\"\n  weight = 10\n\
                 \x20 [routes.fallback]\n  chain = [\"v2\", \"v1\"]\n\
                 \x20 [routes.rollback]\n  stable = \"v1\"\n  window = \"3s\"\n  confirm = \"1s\"\n\
                 \x20 min_requests = 10\n  critical = [\"error_rate > 10%\"]\n",
                etcd.url(),
                v1.url(),
                v2.url()
            );
            SerinProcess::spawn_with_env(dir.path(), &file, &[("SERIN_ADMIN_TOKEN", TOKEN)])
        })
        .collect();
    let admin = |i: usize, path: &str| format!("http://{}{path}", replicas[i].admin);
    let client = TestClient::http1();
    // Every replica connected before the first change.
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(15);
        while client.get(&admin(i, "/api/v1/status"), &[]).await.json()["cluster"]["connected"]
            != true
        {
            assert!(Instant::now() < deadline, "replica {i} never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let mut both = Vec::with_capacity(CHANGES);
    let mut each = Vec::with_capacity(2 * CHANGES);
    for n in 0..CHANGES {
        let v2w = 11 + n as u64; // a new value every time
        let want = json!({"v1": 90, "v2": v2w});
        let body = json!({"weights": {"v2": v2w}, "reason": "propagation bench"}).to_string();
        let t0 = Instant::now();
        let r = client
            .send(
                "PUT",
                &admin(0, "/api/v1/routes/svc/weights"),
                &[
                    ("authorization", BEARER),
                    ("content-type", "application/json"),
                ],
                Bytes::from(body),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = |i: usize| {
            let (client, url, want) =
                (client.clone(), admin(i, "/api/v1/routes/svc"), want.clone());
            async move {
                let deadline = t0 + Duration::from_secs(10);
                loop {
                    if client.get(&url, &[]).await.json()["weights"] == want {
                        return t0.elapsed();
                    }
                    assert!(Instant::now() < deadline, "not in force within 10 s");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let (b, c) = tokio::join!(seen(1), seen(2));
        each.extend([b, c]);
        both.push(b.max(c));
    }
    report("in force on both B and C (from the PUT on A)", &mut both);
    report("in force on one replica", &mut each);

    // Time to safety for the fleet: confirm is 1 s, so the bar is 3 s.
    for round in 1..=3 {
        let load: Vec<_> = replicas
            .iter()
            .map(|r| {
                let cfg = serin_loadtest::LoadConfig {
                    rate: 80.0,
                    duration: Duration::from_secs(12),
                    connections: 8,
                    ..serin_loadtest::LoadConfig::new(
                        format!("http://{}/", r.http).parse().unwrap(),
                    )
                };
                tokio::spawn(serin_loadtest::run(cfg))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(4)).await;
        v2.faults().set_error_rate(1.0);
        let fault = Instant::now();
        let mut safe = [None; 3];
        while safe.iter().any(Option::is_none) {
            for (i, s) in safe.iter_mut().enumerate() {
                if s.is_none()
                    && client
                        .get(&admin(i, "/api/v1/routes/svc"), &[])
                        .await
                        .json()["weights"]["v2"]
                        == 0
                {
                    *s = Some(fault.elapsed());
                }
            }
            assert!(
                fault.elapsed() < Duration::from_secs(20),
                "never rolled back"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut errors = 0;
        for l in load {
            let r = l.await.unwrap().unwrap();
            errors += r.errors;
        }
        let s: Vec<f64> = safe.iter().map(|d| d.unwrap().as_secs_f64()).collect();
        println!(
            "round {round}: fault → v2 at 0 on a {:.2} s, b {:.2} s, c {:.2} s (all: {:.2} s; bar confirm + 2 s = 3 s); client errors {errors}",
            s[0],
            s[1],
            s[2],
            s.iter().copied().fold(0.0, f64::max)
        );
        // Back for the next round: v2 healthy, resumed at its file weight,
        // its failing window past.
        v2.faults().set_error_rate(0.0);
        let r = client
            .send(
                "POST",
                &admin(0, "/api/v1/routes/svc/resume"),
                &[("authorization", BEARER)],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
}

fn report(what: &str, d: &mut [Duration]) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what}: n={} p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        d.len(),
        ms(at(0.50)),
        ms(at(0.90)),
        ms(at(0.99)),
        ms(*d.last().unwrap())
    );
}
