//! Weighted split: shares follow weights; weight 0 gets nothing.

use serin_loadtest::FakeVersion;
use serin_tests::{client::TestClient, one_route, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_ten_split_within_tolerance() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v15 = FakeVersion::start("v1.5").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&one_route(
        &[
            ("v1", &v1.url(), 90.0),
            ("v1.5", &v15.url(), 0.0),
            ("v2", &v2.url(), 10.0),
        ],
        "",
    ))
    .await;
    let client = TestClient::http1();
    let n = 4000;
    let mut canary = 0;
    for _ in 0..n {
        let r = client.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        match r.header("x-serin-version") {
            Some("v2") => canary += 1,
            Some("v1") => {}
            other => panic!("unexpected version {other:?}"),
        }
    }
    // Binomial(4000, 0.1): mean 400, sd ~19; ±5 sd keeps flakes below 1e-6.
    assert!((305..=495).contains(&canary), "canary got {canary} of {n}");
    assert_eq!(v15.requests(), 0, "a weight-0 version got traffic");
    assert_eq!(v1.requests() + v2.requests(), n);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fractional_weights_and_live_changes() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&one_route(
        &[("v1", &v1.url(), 99.9), ("v2", &v2.url(), 0.1)],
        "",
    ))
    .await;
    let client = TestClient::http1();
    for _ in 0..200 {
        client.get(&env.url("/"), &[]).await;
    }
    // 0.1% of 200: almost surely below 5.
    assert!(v2.requests() < 5, "v2 got {}", v2.requests());
    env.set_weights("svc", &[("v1", 0.0), ("v2", 100.0)])
        .unwrap();
    let before = v2.requests();
    for _ in 0..50 {
        let r = client.get(&env.url("/"), &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v2"));
    }
    assert_eq!(v2.requests() - before, 50);
    // All-zero weights are refused and the table keeps serving.
    assert!(env.set_weights("svc", &[("v1", 0.0), ("v2", 0.0)]).is_err());
    assert_eq!(client.get(&env.url("/"), &[]).await.status, 200);
    env.stop().await;
}
