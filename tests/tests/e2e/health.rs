//! Active health checks: a version whose health endpoint fails is taken
//! out of the pick after `unhealthy_after` probes and comes back after
//! `healthy_after`; every version down fails open with an event; a hanging
//! health endpoint times out without piling up connections.

use serde_json::Value;
use serin_loadtest::{FakeHandle, FakeVersion};
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, TestEnv};

/// Route `route` over `versions` (name, url, weight) with fast probes, and
/// a route `plain` on `/plain` without a health check. Each test names its
/// route differently: /metrics is one recorder for the whole test process.
fn routing(route: &str, versions: &[(&str, String, u32)]) -> String {
    let mut s = format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "{route}"
  [routes.health_check]
  path = "/health"
  interval = "100ms"
  timeout = "100ms"
  unhealthy_after = 3
  healthy_after = 2
"#,
    );
    for (name, url, weight) in versions {
        s.push_str(&format!(
            "  [[routes.versions]]\n  name = \"{name}\"\n  url = \"{url}\"\n  weight = {weight}\n  timeout = \"2s\"\n"
        ));
    }
    let (_, url, _) = &versions[0];
    s.push_str(&format!(
        "[[routes]]\nname = \"plain\"\npath_prefix = \"/plain\"\n  [[routes.versions]]\n  name = \"p1\"\n  url = \"{url}\"\n  weight = 1\n"
    ));
    s
}

async fn health_of(env: &TestEnv, route: &str, version: &str) -> String {
    let status = TestClient::http1()
        .get(&env.admin_url("/api/v1/status"), &[])
        .await
        .json();
    let route = status["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == route)
        .unwrap_or_else(|| panic!("no route {route}: {status}"))
        .clone();
    route["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("no version {version}: {route}"))["health"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn events(env: &TestEnv, route: &str, kind_prefix: &str) -> Vec<Value> {
    let all = TestClient::http1()
        .get(
            &env.admin_url(&format!("/api/v1/events?route={route}")),
            &[],
        )
        .await
        .json();
    all["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with(kind_prefix))
        .cloned()
        .collect()
}

async fn metrics(env: &TestEnv) -> String {
    TestClient::http1()
        .get(&env.admin_url("/metrics"), &[])
        .await
        .text()
}

/// Requests that reached the fake other than health probes.
fn traffic(v: &FakeHandle) -> u64 {
    v.requests() - v.health_requests()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_health_endpoint_takes_version_out_and_back() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&routing(
        "hc-back",
        &[("v1", v1.url(), 50), ("v2", v2.url(), 50)],
    ))
    .await;
    let c = TestClient::http1();
    assert_eventually!(
        health_of(&env, "hc-back", "v2").await == "healthy",
        3,
        "v2 never became healthy"
    );
    assert_eq!(health_of(&env, "plain", "p1").await, "unknown");

    let probes_before = v2.health_requests();
    v2.faults().set_health_fail(true);
    assert_eventually!(
        health_of(&env, "hc-back", "v2").await == "unhealthy",
        3,
        "v2 never became unhealthy"
    );
    let probes = v2.health_requests() - probes_before;
    assert!((3..=5).contains(&probes), "unhealthy after {probes} probes");

    // v2 serves traffic fine, but its health check says no: it gets none.
    let before = traffic(&v2);
    for _ in 0..100 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    assert_eq!(traffic(&v2), before, "an unhealthy version got traffic");
    let m = metrics(&env).await;
    assert!(
        m.contains(r#"serin_version_healthy{route="hc-back",version="v2"} 0"#),
        "{m}"
    );
    assert!(
        m.contains(r#"serin_health_probe_duration_seconds_count{route="hc-back",version="v2"}"#),
        "{m}"
    );

    v2.faults().set_health_fail(false);
    assert_eventually!(
        health_of(&env, "hc-back", "v2").await == "healthy",
        3,
        "v2 never came back"
    );
    let mut on_v2 = 0;
    for _ in 0..100 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        on_v2 += u32::from(r.header("x-serin-version") == Some("v2"));
    }
    assert!((25..=75).contains(&on_v2), "v2 got {on_v2} of 100 back");
    let m = metrics(&env).await;
    assert!(
        m.contains(r#"serin_version_healthy{route="hc-back",version="v2"} 1"#),
        "{m}"
    );

    let changes: Vec<Value> = events(&env, "hc-back", "health_changed")
        .await
        .into_iter()
        .filter(|e| e["version"] == "v2")
        .collect();
    let steps: Vec<(&str, &str)> = changes
        .iter()
        .map(|e| (e["before"].as_str().unwrap(), e["after"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("unknown", "healthy"),
            ("healthy", "unhealthy"),
            ("unhealthy", "healthy")
        ],
        "{changes:?}"
    );
    assert_eq!(changes[1]["actor"], "engine");
    assert_eq!(
        changes[1]["reason"],
        "3 failed probes (HTTP 503, HTTP 503, HTTP 503)"
    );
    assert_eq!(changes[2]["reason"], "2 successful probes");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_unhealthy_fails_open_with_an_event() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&routing(
        "hc-open",
        &[("v1", v1.url(), 50), ("v2", v2.url(), 50)],
    ))
    .await;
    v1.faults().set_health_fail(true);
    v2.faults().set_health_fail(true);
    assert_eventually!(
        health_of(&env, "hc-open", "v1").await == "unhealthy"
            && health_of(&env, "hc-open", "v2").await == "unhealthy",
        3,
        "versions never became unhealthy"
    );
    // Fail open: both still get traffic, split by weight, and answer.
    let c = TestClient::http1();
    let mut on_v1 = 0;
    for _ in 0..100 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        on_v1 += u32::from(r.header("x-serin-version") == Some("v1"));
    }
    assert!((25..=75).contains(&on_v1), "v1 got {on_v1} of 100");
    assert_eventually!(
        events(&env, "hc-open", "health_fail_open").await.len() == 1,
        2,
        "no health_fail_open event"
    );
    let open = &events(&env, "hc-open", "health_fail_open").await[0];
    assert_eq!(open["kind"], "health_fail_open");
    assert!(
        open["reason"]
            .as_str()
            .unwrap()
            .starts_with("every weighted version is unhealthy (v1, v2)"),
        "{open}"
    );

    v1.faults().set_health_fail(false);
    assert_eventually!(
        events(&env, "hc-open", "health_fail_open").await.len() == 2,
        3,
        "no health_fail_open_ended event"
    );
    assert_eq!(
        events(&env, "hc-open", "health_fail_open").await[1]["kind"],
        "health_fail_open_ended"
    );
    let before = traffic(&v2);
    for _ in 0..50 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    assert_eq!(traffic(&v2), before);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_health_endpoint_times_out_without_piling_up_connections() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    // Traffic is fine; only the health endpoint hangs.
    v2.faults().set_health_hang(true);
    let env = TestEnv::start(&routing(
        "hc-hang",
        &[("v1", v1.url(), 50), ("v2", v2.url(), 50)],
    ))
    .await;
    let mut max_open = 0;
    for _ in 0..75 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        max_open = max_open.max(v2.open_connections());
    }
    assert_eq!(health_of(&env, "hc-hang", "v2").await, "unhealthy");
    let probes = v2.health_requests();
    assert!(probes >= 6, "only {probes} probes in 1.5 s");
    // Each timed-out probe's connection is dropped: one probe in flight,
    // plus at most one whose close the fake has not seen yet.
    assert!(max_open <= 2, "connections piled up: {max_open}");
    let change = events(&env, "hc-hang", "health_changed")
        .await
        .into_iter()
        .find(|e| e["version"] == "v2")
        .unwrap();
    assert_eq!(
        change["reason"],
        "3 failed probes (timeout, timeout, timeout)"
    );
    let c = TestClient::http1();
    for _ in 0..30 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    env.stop().await;
}
