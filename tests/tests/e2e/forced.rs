//! `[routes.override]`: testers reach a version on purpose by header or
//! cookie, only the versions in `allow`; their requests are counted apart
//! and rules do not judge them.

use std::time::Duration;

use bytes::Bytes;
use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::{TestEnv, BEARER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_request_reaches_a_weight_zero_version_and_is_counted_apart() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v15 = FakeVersion::start("v1.5").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 100
  [[routes.versions]]
  name = "v1.5"
  url = "{}"
  weight = 0
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 0
  [routes.override]
  header = "x-serin-version"
  cookie = "serin-version"
  allow = ["v2"]
  [routes.rollback]
  stable = "v1"
  window = "5s"
  confirm = "1s"
  min_requests = 5
  critical = ["error_rate > 10%"]
"#,
        v1.url(),
        v15.url(),
        v2.url()
    ))
    .await;
    let client = TestClient::http1();
    let url = env.url("/");
    for _ in 0..10 {
        let r = client.get(&url, &[("x-serin-version", "v2")]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-serin-version"), Some("v2"));
        let r = client
            .get(&url, &[("cookie", "a=1; serin-version=v2")])
            .await;
        assert_eq!(r.header("x-serin-version"), Some("v2"));
        // Not in `allow`, not a version, or empty: picked by weight.
        for h in [
            ("x-serin-version", "v1.5"),
            ("x-serin-version", "v9"),
            ("x-serin-version", ""),
        ] {
            let r = client.get(&url, &[h]).await;
            assert_eq!(r.header("x-serin-version"), Some("v1"), "{h:?}");
        }
    }
    assert_eq!(v2.requests(), 20);
    assert_eq!(v15.requests(), 0);

    // v2 becomes a canary the engine judges (1% of users; no user request
    // is sent from here on). Forced to fail every request, it is the
    // testers' answer; the rules never see it, so nothing is rolled back.
    let r = client
        .send(
            "PUT",
            &env.admin_url("/api/v1/routes/svc/weights"),
            &[
                ("authorization", BEARER),
                ("content-type", "application/json"),
            ],
            Bytes::from_static(br#"{"weights": {"v1": 99, "v2": 1}}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    v2.faults().set_error_rate(1.0);
    for _ in 0..20 {
        let r = client.get(&url, &[("x-serin-version", "v2")]).await;
        assert_eq!(r.status, 500);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = client
        .get(&env.admin_url("/api/v1/routes/svc/stats?window=60s"), &[])
        .await
        .json();
    assert_eq!(stats["forced"]["v2"]["requests"], 40, "{stats}");
    assert_eq!(stats["forced"]["v2"]["errors"], 20, "{stats}");
    assert_eq!(stats["versions"]["v2"]["requests"], 0, "{stats}");
    let events = env.live.shared().events.since(0, Some("svc"));
    assert!(
        events.iter().all(|e| e.kind != "level_breached"),
        "forced requests were judged: {events:?}"
    );
    env.stop().await;
}
