//! How long a weight change made on one replica takes to be in force on
//! the others: a real etcd, three `serin` processes (the release build:
//! `loadtest/bench/fleet.sh` builds it, then runs this), 50 changes on A,
//! B and C polled every millisecond until both answer the new weights.
//! Prints the distribution; loopback only, bounded (50 changes).

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
                 \x20 [[routes.versions]]\n  name = \"v2\"\n  url = \"{}\"\n  weight = 10\n",
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
