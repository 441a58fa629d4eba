//! The circuit breaker: opens at the threshold, keeps traffic off the
//! version while open, and half-open probes close it once it recovers.

use std::time::Duration;

use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_skips_and_closes_after_probes() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let toml = format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 50
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 50
  timeout = "1s"
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.breaker]
  error_rate = "50%"
  min_requests = 10
  window = "10s"
  open_for = "1s"
  half_open_probes = 2
"#,
        v1.url(),
        v2.url()
    );
    let env = TestEnv::start(&toml).await;
    let c = TestClient::http1();
    let status = || async {
        let r = TestClient::http1()
            .get(&env.admin_url("/api/v1/routes/svc"), &[])
            .await;
        r.json()["versions"][1]["breaker"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status().await, "closed");

    v2.faults().set_error_rate(1.0);
    // Clients never see v2's errors: the chain rescues them.
    for _ in 0..60 {
        assert_eq!(c.get(&env.url("/"), &[]).await.status, 200);
    }
    assert_eventually!(status().await == "open", 3, "breaker did not open");

    // While open, v2 gets nothing (the 1 s open_for is longer than this loop).
    let before = v2.requests();
    for _ in 0..40 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    assert_eq!(v2.requests(), before, "an open breaker let traffic through");

    // v2 recovers; after open_for the probes succeed and close it.
    v2.faults().set_error_rate(0.0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..40 {
        assert_eq!(c.get(&env.url("/"), &[]).await.status, 200);
    }
    assert_eventually!(status().await == "closed", 3, "breaker did not close");
    assert!(v2.requests() > before, "no probe reached v2");

    // The monitor notices the close on its next tick (100 ms).
    let events = || async {
        TestClient::http1()
            .get(&env.admin_url("/api/v1/events?route=svc"), &[])
            .await
            .json()
    };
    assert_eventually!(
        events().await["events"].as_array().unwrap().len() == 2,
        2,
        "no breaker_closed event"
    );
    let events = events().await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["breaker_opened", "breaker_closed"], "{events}");
    let opened = &events["events"][0];
    assert_eq!(opened["version"], "v2");
    assert!(
        opened["reason"]
            .as_str()
            .unwrap()
            .starts_with("error_rate 1.00 >= 0.50"),
        "{opened}"
    );
    env.stop().await;
}
