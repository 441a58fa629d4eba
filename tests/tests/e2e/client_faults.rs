//! Client-caused failures never count against a version: slow but
//! progressing uploads outlast the version's `timeout` and succeed, stalled
//! ones get 408, abandoned ones are the client's; the route's stats show
//! them as client outcomes, and no breaker, rule or rollback ever sees them.

use std::time::Duration;

use serde_json::Value;
use serin_loadtest::{FakeHandle, FakeVersion};
use serin_tests::client::TestClient;
use serin_tests::raw::read_until_closed;
use serin_tests::{assert_eventually, TestEnv};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// v1 stable, v2 canary at half the traffic, both with `timeout = "2s"`,
/// under a breaker and an immediate rollback on any error rate above 5%.
fn table(v1: &FakeHandle, v2: &FakeHandle) -> String {
    format!(
        r#"[listen]
http = "127.0.0.1:1"
[limits]
body_read_timeout = "1s"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 50
  timeout = "2s"
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 50
  timeout = "2s"
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.breaker]
  error_rate = "5%"
  min_requests = 5
  window = "10s"
  open_for = "5s"
  [routes.rollback]
  stable = "v1"
  window = "10s"
  confirm = "1s"
  min_requests = 5
  critical = ["error_rate > 5%"]
"#,
        v1.url(),
        v2.url()
    )
}

const HEAD: &[u8] = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n";

/// 1000 bytes over 4 s, 100 every 400 ms; the answer's status.
async fn slow_upload(addr: std::net::SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(HEAD).await.ok()?;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        s.write_all(&[b'x'; 100]).await.ok()?;
    }
    read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .status()
}

/// 100 bytes, then silence; the answer's status.
async fn stalled_upload(addr: std::net::SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(HEAD).await.ok()?;
    s.write_all(&[b'x'; 100]).await.ok()?;
    read_until_closed(&mut s, Duration::from_secs(4))
        .await
        .status()
}

/// 100 bytes, then the client leaves.
async fn abandoned_upload(addr: std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEAD).await.unwrap();
    s.write_all(&[b'x'; 100]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn get(env: &TestEnv, path: &str) -> Value {
    TestClient::http1()
        .get(&env.admin_url(path), &[])
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_slow_uploaders_cannot_roll_back_a_healthy_canary() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&table(&v1, &v2)).await;
    let slow: Vec<_> = (0..100)
        .map(|_| tokio::spawn(slow_upload(env.http)))
        .collect();
    let stalled: Vec<_> = (0..5)
        .map(|_| tokio::spawn(stalled_upload(env.http)))
        .collect();
    let abandoned: Vec<_> = (0..5)
        .map(|_| tokio::spawn(abandoned_upload(env.http)))
        .collect();
    for s in slow {
        assert_eq!(
            s.await.unwrap(),
            Some(200),
            "a slow but progressing upload was cut"
        );
    }
    for s in stalled {
        assert_eq!(
            s.await.unwrap(),
            Some(408),
            "a stalled upload is the client's timeout"
        );
    }
    for a in abandoned {
        a.await.unwrap();
    }
    // Every slow upload reached a version (a stalled or abandoned one may
    // be cut before its head is written upstream).
    assert!(v1.requests() + v2.requests() >= 100);
    assert!(
        v2.requests() > 20,
        "the canary got its share: {}",
        v2.requests()
    );

    let stats = "/api/v1/routes/svc/stats?window=60s";
    assert_eventually!(
        get(&env, stats).await["route_total"]["client_aborts"] == 5,
        3,
        "abandoned uploads not counted as client aborts: {}",
        get(&env, stats).await
    );
    let s = get(&env, stats).await;
    for v in ["v1", "v2"] {
        assert_eq!(s["versions"][v]["errors"], 0, "{v} blamed: {s}");
    }
    let total = &s["route_total"];
    assert_eq!(total["client_timeouts"], 5, "{s}");
    assert_eq!(total["errors"], 0, "{s}");
    assert_eq!(total["requests"], 110, "{s}");
    // The version latency is the version's: request sent → headers, not
    // the client's four seconds of upload.
    let p99 = s["versions"]["v2"]["p99_ms"].as_f64().unwrap();
    assert!(
        p99 < 1000.0,
        "an upload's time counted as the canary's latency: {p99} ms"
    );

    // Two engine ticks later, nothing was judged against the canary.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let route = get(&env, "/api/v1/routes/svc").await;
    assert_eq!(route["weights"]["v2"], 50, "{route}");
    let events = get(&env, "/api/v1/events?route=svc").await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for bad in ["level_breached", "rollback_started", "breaker_opened"] {
        assert!(!kinds.contains(&bad), "{bad} in {kinds:?}");
    }
    let metrics = TestClient::http1()
        .get(&env.admin_url("/metrics"), &[])
        .await
        .text();
    assert!(
        metrics.contains(r#"serin_route_requests_total{route="svc",outcome="client_timeout"} 5"#),
        "{metrics}"
    );
    env.stop().await;
}

/// A version with its own 300 ms body-read timeout: it reads the head,
/// then hangs up when the body does not come in time.
async fn impatient() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(300), async {
                    while s.read(&mut buf).await.unwrap_or(0) > 0 {}
                })
                .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_gives_up_on_a_stalled_client_is_not_blamed() {
    let v = impatient().await;
    let toml = format!(
        "[listen]\nhttp = \"127.0.0.1:1\"\n[limits]\nbody_read_timeout = \"2s\"\n\
         [[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\n\
         url = \"http://{v}\"\nweight = 1\ntimeout = \"5s\"\n"
    );
    let env = TestEnv::start(&toml).await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(env.http).await.unwrap();
        s.write_all(HEAD).await.unwrap();
        s.write_all(&[b'x'; 10]).await.unwrap();
        let r = read_until_closed(&mut s, Duration::from_secs(4)).await;
        assert_eq!(r.status(), Some(408), "{}", r.text);
    }
    let s = get(&env, "/api/v1/routes/svc/stats?window=60s").await;
    assert_eq!(
        s["versions"]["v1"]["requests"], 0,
        "the version was blamed: {s}"
    );
    assert_eq!(s["route_total"]["client_timeouts"], 3, "{s}");
    env.stop().await;
}
