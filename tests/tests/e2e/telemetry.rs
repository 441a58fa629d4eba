//! In-process telemetry through the stats API and /metrics: known delays
//! give matching percentiles, known failure fractions the matching error
//! rate, and windows age out.

use std::time::Duration;

use serin_loadtest::{FakeVersion, LoadConfig};
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, TestEnv};

fn ms(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_error_rates_and_ageing_windows() {
    let fast = FakeVersion::start("fast").unwrap();
    let slow = FakeVersion::start("slow").unwrap();
    let flaky = FakeVersion::start("flaky").unwrap();
    fast.faults().set_latency(Duration::from_millis(20));
    slow.faults().set_latency(Duration::from_millis(150));
    flaky.faults().set_error_rate(0.3);
    let toml = format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "lat"
path_prefix = "/lat"
  [[routes.versions]]
  name = "fast"
  url = "{}"
  weight = 80
  [[routes.versions]]
  name = "slow"
  url = "{}"
  weight = 20
[[routes]]
name = "err"
path_prefix = "/err"
  [[routes.versions]]
  name = "flaky"
  url = "{}"
  weight = 1
"#,
        fast.url(),
        slow.url(),
        flaky.url()
    );
    let env = TestEnv::start(&toml).await;
    let load = |path: &str, rate: f64| LoadConfig {
        rate,
        duration: Duration::from_secs(2),
        connections: 40,
        ..LoadConfig::new(env.url(path).parse().unwrap())
    };
    let (lat, err) = tokio::join!(
        serin_loadtest::run(load("/lat", 150.0)),
        serin_loadtest::run(load("/err", 300.0))
    );
    let (lat, err) = (lat.unwrap(), err.unwrap());
    assert_eq!(lat.errors, 0);

    let admin = TestClient::http1();
    let stats = |route: &str, window: &str| {
        let url = env.admin_url(&format!("/api/v1/routes/{route}/stats?window={window}"));
        let admin = admin.clone();
        async move { admin.get(&url, &[]).await.json() }
    };
    let s = stats("lat", "60s").await;
    let f = &s["versions"]["fast"];
    let sl = &s["versions"]["slow"];
    assert_eq!(
        f["requests"].as_u64().unwrap() + sl["requests"].as_u64().unwrap(),
        lat.requests
    );
    // Histogram precision is 0.1%; scheduling adds a few ms on a busy 2-core box.
    for (v, want) in [(f, 20.0), (sl, 150.0)] {
        for p in ["p50_ms", "p90_ms"] {
            let got = ms(&v[p]);
            assert!(
                got >= want && got < want + 15.0,
                "{p} {got} for a {want} ms version: {s}"
            );
        }
    }
    // End to end, 80% fast / 20% slow: the median is fast, the p90 slow.
    let route = &s["route_total"];
    assert!((20.0..35.0).contains(&ms(&route["p50_ms"])), "{route}");
    assert!((150.0..170.0).contains(&ms(&route["p90_ms"])), "{route}");

    let e = stats("err", "60s").await;
    let flaky_stats = &e["versions"]["flaky"];
    assert_eq!(flaky_stats["requests"].as_u64().unwrap(), err.requests);
    assert_eq!(flaky_stats["errors"].as_u64().unwrap(), err.status_5xx);
    let rate = ms(&flaky_stats["error_rate"]);
    assert!(
        (0.22..0.38).contains(&rate),
        "error_rate {rate} for a 30% fault"
    );
    assert!((ms(&flaky_stats["availability"]) - (1.0 - rate)).abs() < 1e-9);

    // Prometheus shows the same counts once the 1 s slot is folded.
    assert_eventually!(
        {
            let m = admin.get(&env.admin_url("/metrics"), &[]).await.text();
            m.contains("serin_requests_total{route=\"err\",version=\"flaky\",outcome=\"5xx\"}")
                && m.contains(
                    "serin_request_duration_seconds_bucket{route=\"lat\",version=\"slow\"",
                )
        },
        3,
        "metrics missing"
    );

    // Ageing: after 7 s of silence a 5 s window is empty, a 60 s one is not.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let recent = stats("lat", "5s").await;
    assert_eq!(recent["versions"]["fast"]["requests"], 0, "{recent}");
    assert!(recent["versions"]["fast"]["p50_ms"].is_null(), "{recent}");
    assert!(
        recent["versions"]["fast"]["error_rate"].is_null(),
        "{recent}"
    );
    let all = stats("lat", "60s").await;
    assert_eq!(all["versions"]["fast"]["requests"], f["requests"]);
    let bad = admin
        .get(&env.admin_url("/api/v1/routes/lat/stats?window=soon"), &[])
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("window"));
    env.stop().await;
}
