//! /metrics exports every metric the routing-file contract names, with
//! the labels dashboards and alert rules select on, once something has
//! happened to set it.

use std::time::Duration;

use bytes::Bytes;
use serin_loadtest::{FakeVersion, LoadConfig};
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, TestEnv, BEARER};

/// Every metric name README's "Metrics" table promises.
const NAMES: &[&str] = &[
    "serin_requests_total",
    "serin_request_duration_seconds",
    "serin_route_requests_total",
    "serin_route_duration_seconds",
    "serin_fallbacks_total",
    "serin_breaker_state",
    "serin_version_healthy",
    "serin_health_probe_duration_seconds",
    "serin_route_weight",
    "serin_rollbacks_total",
    "serin_config_reloads_total",
    "serin_mirror_mismatches_total",
    "serin_signal_total",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_metric_is_exported_with_its_labels() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let v3 = FakeVersion::start("v3").unwrap();
    v2.faults().set_error_rate(1.0);
    v1.faults().set_signal_rate(0.5);
    let env = TestEnv::start(&format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "met"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 50
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 50
  [[routes.versions]]
  name = "v3"
  url = "{}"
  weight = 0
  [routes.mirror]
  to = "v3"
  percent = 100
  compare = ["body"]
  [[routes.signals]]
  name = "flag"
  header = "{}"
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.health_check]
  path = "/health"
  interval = "200ms"
  timeout = "200ms"
  [routes.breaker]
  error_rate = "50%"
  min_requests = 10
  window = "5s"
  open_for = "30s"
  [routes.rollback]
  stable = "v1"
  window = "5s"
  confirm = "1s"
  min_requests = 10
  critical = ["error_rate > 20%"]
"#,
        v1.url(),
        v2.url(),
        v3.url(),
        serin_loadtest::SIGNAL_HEADER
    ))
    .await;
    let report = serin_loadtest::run(LoadConfig {
        rate: 100.0,
        duration: Duration::from_secs(3),
        connections: 4,
        ..LoadConfig::new(env.url("/").parse().unwrap())
    })
    .await
    .unwrap();
    assert_eq!(report.errors, 0, "the chain hid every failure: {report:?}");
    let reload = TestClient::http1()
        .send(
            "POST",
            &env.admin_url("/api/v1/reload"),
            &[("authorization", BEARER)],
            Bytes::new(),
        )
        .await;
    assert_eq!(reload.status, 200, "{}", reload.text());

    let admin = TestClient::http1();
    let metrics = || async { admin.get(&env.admin_url("/metrics"), &[]).await.text() };
    // The rollback happened, and the folded slot reached the exporter.
    assert_eventually!(
        metrics()
            .await
            .contains("serin_rollbacks_total{route=\"met\",mode=\"immediate\"} 1"),
        5,
        "no rollback counted"
    );
    let m = metrics().await;
    let sample = |name: &str| {
        m.lines()
            .find(|l| l.starts_with(name) && (l.contains("route=\"met\"") || !l.contains("route=")))
            .map(str::to_owned)
    };
    for name in NAMES {
        assert!(sample(name).is_some(), "{name} is not exported:\n{m}");
        assert!(
            m.contains(&format!("# HELP {name} ")),
            "{name} has no HELP line"
        );
    }
    // The values say what happened.
    assert!(
        m.contains("serin_route_weight{route=\"met\",version=\"v2\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("serin_route_weight{route=\"met\",version=\"v1\"} 100"),
        "{m}"
    );
    assert!(
        m.contains("serin_fallbacks_total{route=\"met\",from=\"v2\",to=\"v1\"}"),
        "{m}"
    );
    assert!(
        m.contains("serin_breaker_state{route=\"met\",version=\"v2\"}"),
        "{m}"
    );
    assert!(m.contains("serin_config_reloads_total{result="), "{m}");
    // The dashboard and the alert rules in deploy/ name only what a
    // running serin exports.
    for name in deploy_metric_names() {
        assert!(
            NAMES.contains(&name.as_str()),
            "deploy/ names {name}, not a serin metric"
        );
        assert!(
            sample(&name).is_some(),
            "deploy/ names {name}, not exported:\n{m}"
        );
    }
    assert!(
        m.contains("serin_signal_total{route=\"met\",version=\"v1\",signal=\"flag\"}"),
        "{m}"
    );
    assert!(
        m.contains("serin_mirror_mismatches_total{route=\"met\",version=\"v3\"}"),
        "{m}"
    );
    env.stop().await;
}

/// Every `serin_*` metric the files in deploy/ name, histogram suffixes
/// (`_bucket`, `_sum`, `_count`) taken off.
fn deploy_metric_names() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut names = std::collections::BTreeSet::new();
    for file in ["grafana/serin-dashboard.json", "prometheus/serin-rules.yml"] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let mut rest = text.as_str();
        while let Some(at) = rest.find("serin_") {
            let word: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + word.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s))
                .unwrap_or(&word);
            names.insert(base.to_owned());
        }
    }
    assert!(
        names.len() >= 10,
        "too few metrics found in deploy/: {names:?}"
    );
    names.into_iter().collect()
}
