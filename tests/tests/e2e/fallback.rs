//! The fallback chain: v2 (short timeout) → v1.5 → v1, against versions
//! that hang, answer 500, refuse, close mid-headers and answer slowly.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serin_loadtest::{FakeHandle, FakeVersion};
use serin_tests::client::TestClient;
use serin_tests::TestEnv;

struct Three {
    v1: FakeHandle,
    v15: FakeHandle,
    v2: FakeHandle,
}

fn three() -> Three {
    Three {
        v1: FakeVersion::start("v1").unwrap(),
        v15: FakeVersion::start("v1.5").unwrap(),
        v2: FakeVersion::start("v2").unwrap(),
    }
}

/// Every request starts at v2 (weight 100) and walks v2 → v1.5 → v1.
fn chain_table(t: &Three, fallback_extra: &str) -> String {
    format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 0
  timeout = "2s"
  [[routes.versions]]
  name = "v1.5"
  url = "{}"
  weight = 0
  timeout = "1s"
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 100
  timeout = "300ms"
  [routes.fallback]
  chain = ["v2", "v1.5", "v1"]
  final_status = 503
  final_body = "Service temporarily unavailable"
  max_replay_body = "64KiB"
{fallback_extra}
"#,
        t.v1.url(),
        t.v15.url(),
        t.v2.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_v2_costs_its_timeout_and_the_first_healthy_version_answers() {
    let t = three();
    t.v2.faults().set_hang(true);
    t.v15.faults().set_error_rate(1.0);
    let env = TestEnv::start(&chain_table(&t, "")).await;
    let c = TestClient::http1();
    let began = Instant::now();
    let r = c.get(&env.url("/"), &[]).await;
    let took = began.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "v1\n");
    assert_eq!(r.header("x-serin-version"), Some("v1"));
    assert_eq!(r.header("x-serin-fallback"), Some("v2>v1.5>v1"));
    // v2's 300 ms timeout, not the hang; v1.5's 500 and v1 are fast.
    assert!(took >= Duration::from_millis(290), "took {took:?}");
    assert!(took < Duration::from_millis(1200), "took {took:?}");
    // The client saw a success; each failed version still counts its error.
    let stats = TestClient::http1()
        .get(&env.admin_url("/api/v1/routes/svc/stats?window=60s"), &[])
        .await
        .json();
    let v = &stats["versions"];
    assert_eq!(
        (v["v2"]["errors"].as_u64(), v["v2"]["timeouts"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(
        (
            v["v1.5"]["errors"].as_u64(),
            v["v1.5"]["status_5xx"].as_u64()
        ),
        (Some(1), Some(1)),
        "{stats}"
    );
    assert_eq!(
        (
            v["v2"]["fallbacks"].as_u64(),
            v["v1.5"]["fallbacks"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(v["v1"]["errors"], 0);
    assert_eq!(stats["route_total"]["errors"], 0, "the client saw no error");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_closed_mid_headers_fall_back() {
    let t = three();
    let env = TestEnv::start(&chain_table(&t, "")).await;
    let c = TestClient::http1();
    t.v2.faults().set_close_mid_headers(true);
    let r = c.get(&env.url("/"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-serin-fallback"), Some("v2>v1.5"));
    t.v2.faults().set_close_mid_headers(false);
    t.v2.faults().set_refuse(true);
    t.v15.faults().set_status(502);
    let r = c.get(&env.url("/"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-serin-fallback"), Some("v2>v1.5>v1"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_body_is_replayed_byte_for_byte() {
    let t = three();
    t.v2.faults().set_error_rate(1.0);
    t.v15.faults().set_hang(true);
    let env = TestEnv::start(&chain_table(&t, "")).await;
    let c = TestClient::http1();
    let body: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let r = c
        .send(
            "POST",
            &env.url("/echo"),
            &[("content-type", "application/octet-stream")],
            Bytes::from(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-serin-fallback"), Some("v2>v1.5>v1"));
    let echo = r.json();
    assert_eq!(echo["version"], "v1");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body_len"], body.len() as u64);
    let fnv = format!("{:016x}", serin_loadtest::checksum::fnv1a64(&body));
    assert_eq!(echo["body_fnv"], fnv);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_failing_gives_the_final_answer() {
    let t = three();
    for v in [&t.v1, &t.v15, &t.v2] {
        v.faults().set_error_rate(1.0);
    }
    let env = TestEnv::start(&chain_table(&t, "")).await;
    let c = TestClient::http1();
    let r = c.get(&env.url("/"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "Service temporarily unavailable");
    let r = c
        .get(&env.url("/"), &[("accept", "application/json")])
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "Service temporarily unavailable");
    assert_eq!(
        (t.v1.requests(), t.v15.requests(), t.v2.requests()),
        (2, 2, 2)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_and_non_idempotent_methods_are_not_replayed_when_told() {
    let t = three();
    t.v2.faults().set_error_rate(1.0);
    let env = TestEnv::start(&chain_table(&t, "retry_non_idempotent = false")).await;
    let c = TestClient::http1();
    // A GET falls back.
    assert_eq!(c.get(&env.url("/"), &[]).await.status, 200);
    // A POST does not (the route says so): the client sees v2's 500.
    let r = c
        .send("POST", &env.url("/"), &[], Bytes::from_static(b"prompt"))
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.header("x-serin-version"), Some("v2"));
    // A PUT (idempotent) larger than max_replay_body streams through once.
    let big = Bytes::from(vec![b'x'; 200 * 1024]);
    let r = c.send("PUT", &env.url("/upload"), &[], big).await;
    // v2 answers 500 before reading the body; depending on timing the
    // proxy sees the 500 or the reset that follows. Either way: no fallback.
    assert!(r.status == 500 || r.status == 502, "{}", r.status);
    assert_eq!(r.header("x-serin-fallback"), None);
    assert_eq!(
        t.v15.requests() + t.v1.requests(),
        1,
        "only the GET was rescued"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_the_whole_chain() {
    let t = three();
    t.v2.faults().set_hang(true);
    t.v15.faults().set_hang(true);
    let env = TestEnv::start(&chain_table(&t, "deadline = \"350ms\"")).await;
    let c = TestClient::http1();
    let began = Instant::now();
    let r = c.get(&env.url("/"), &[]).await;
    let took = began.elapsed();
    // v2 uses 300 ms; 50 ms left is too little for v1.5 or v1: both skipped.
    assert_eq!(r.status, 503);
    assert!(took < Duration::from_millis(800), "took {took:?}");
    assert_eq!(t.v1.requests(), 0);
    env.stop().await;
}
