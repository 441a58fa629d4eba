use std::time::Duration;

use super::*;
use crate::FakeVersion;

fn config(url: &str, rate: f64, ms: u64) -> LoadConfig {
    LoadConfig {
        rate,
        duration: Duration::from_millis(ms),
        connections: 8,
        timeout: Duration::from_secs(2),
        ..LoadConfig::new(url.parse().unwrap())
    }
}

#[tokio::test]
async fn open_loop_issues_the_rate() {
    let fake = FakeVersion::start("v1").unwrap();
    let progress = Arc::new(Progress::default());
    let cfg = LoadConfig {
        progress: Some(progress.clone()),
        ..config(&fake.url(), 200.0, 1000)
    };
    let report = run(cfg).await.unwrap();
    assert!((180..=220).contains(&report.requests), "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.ok, report.requests);
    assert_eq!(report.versions.get("v1"), Some(&report.requests));
    assert_eq!(fake.requests(), report.requests);
    assert_eq!(progress.requests(), report.requests);
    assert!(
        report.duration_s >= 0.99 && report.duration_s < 1.5,
        "{report:?}"
    );
}

#[tokio::test]
async fn half_errors_are_counted() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_error_rate(0.5);
    let report = run(config(&fake.url(), 400.0, 500)).await.unwrap();
    let share = report.errors as f64 / report.requests as f64;
    assert!((0.35..=0.65).contains(&share), "{report:?}");
    assert_eq!(report.errors, report.status_5xx);
}

#[tokio::test]
async fn latency_counts_the_server_delay() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_latency(Duration::from_millis(50));
    let report = run(config(&fake.url(), 50.0, 500)).await.unwrap();
    assert!(report.requests >= 20, "{report:?}");
    assert!(report.p50_ms >= 50.0, "{report:?}");
    assert!(report.p50_ms < 200.0, "{report:?}");
}

#[tokio::test]
async fn a_stall_counts_from_the_due_time() {
    // One connection, 100/s, every answer 50 ms: requests queue behind each
    // other, and the queueing must show in the latency (no coordinated omission).
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_latency(Duration::from_millis(50));
    let cfg = LoadConfig {
        connections: 1,
        ..config(&fake.url(), 100.0, 300)
    };
    let report = run(cfg).await.unwrap();
    assert!(report.max_ms >= 150.0, "{report:?}");
}

#[tokio::test]
async fn closed_loop_h2_with_sticky_keys_and_body() {
    let fake = FakeVersion::start("v2").unwrap();
    let cfg = LoadConfig {
        h2: true,
        method: Method::POST,
        body: Some(Bytes::from_static(b"payload")),
        headers: vec![(
            HeaderName::from_static("x-test"),
            HeaderValue::from_static("1"),
        )],
        sticky: Some(Sticky {
            header: HeaderName::from_static("x-user-id"),
            keys: 10,
        }),
        ..config(&format!("{}/echo", fake.url()), 0.0, 300)
    };
    let report = run(cfg).await.unwrap();
    assert!(report.requests > 50, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.target_rps, 0.0);
    assert_eq!(report.versions.get("v2"), Some(&report.requests));
}

#[tokio::test]
async fn a_dead_target_is_transport_errors() {
    let fake = FakeVersion::start("v1").unwrap();
    let url = fake.url();
    fake.shutdown().await;
    let report = run(config(&url, 100.0, 200)).await.unwrap();
    assert!(report.requests >= 15, "{report:?}");
    assert_eq!(report.transport, report.requests, "{report:?}");
}

#[tokio::test]
async fn timeouts_are_their_own_errors() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_hang(true);
    let cfg = LoadConfig {
        timeout: Duration::from_millis(200),
        ..config(&fake.url(), 20.0, 200)
    };
    let report = run(cfg).await.unwrap();
    assert!(report.requests >= 3, "{report:?}");
    assert_eq!(report.timeouts, report.requests, "{report:?}");
}

#[tokio::test]
async fn bad_configs_are_refused() {
    let url = "http://127.0.0.1:1/";
    for cfg in [
        LoadConfig {
            rate: -1.0,
            ..config(url, 1.0, 10)
        },
        LoadConfig {
            connections: 0,
            ..config(url, 1.0, 10)
        },
        LoadConfig {
            url: "https://127.0.0.1/".parse().unwrap(),
            ..config(url, 1.0, 10)
        },
        LoadConfig {
            url: "/no/host".parse().unwrap(),
            ..config(url, 1.0, 10)
        },
    ] {
        assert!(run(cfg).await.is_err());
    }
}
