//! Sticky routing: a key keeps its version while weights hold, and keys on
//! a growing canary stay on it.

use std::collections::HashMap;

use serin_loadtest::FakeVersion;
use serin_tests::{client::TestClient, one_route, TestEnv};

async fn versions_by_key(
    env: &TestEnv,
    client: &TestClient,
    keys: usize,
    cookie: bool,
) -> HashMap<usize, String> {
    let mut out = HashMap::new();
    for k in 0..keys {
        let key = format!("user-{k}");
        let cookie_val = format!("theme=dark; uid={key}");
        let headers: Vec<(&str, &str)> = if cookie {
            vec![("cookie", cookie_val.as_str())]
        } else {
            vec![("x-user-id", key.as_str())]
        };
        let r = client.get(&env.url("/"), &headers).await;
        out.insert(k, r.header("x-serin-version").unwrap().to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keys_never_flip_and_stay_on_a_growing_canary() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&one_route(
        &[("v1", &v1.url(), 90.0), ("v2", &v2.url(), 10.0)],
        "sticky = \"header:x-user-id\"",
    ))
    .await;
    let client = TestClient::http1();
    let first = versions_by_key(&env, &client, 1000, false).await;
    for _ in 0..2 {
        assert_eq!(
            versions_by_key(&env, &client, 1000, false).await,
            first,
            "a key flipped while weights held"
        );
    }
    let on_canary = first.values().filter(|v| *v == "v2").count();
    assert!(
        (50..=160).contains(&on_canary),
        "{on_canary} of 1000 keys on a 10% canary"
    );

    env.set_weights("svc", &[("v1", 75.0), ("v2", 25.0)])
        .unwrap();
    let after = versions_by_key(&env, &client, 1000, false).await;
    for (k, v) in &first {
        if v == "v2" {
            assert_eq!(after[k], "v2", "key {k} left the canary when it grew");
        }
    }
    let now_on_canary = after.values().filter(|v| *v == "v2").count();
    assert!(
        (180..=320).contains(&now_on_canary),
        "{now_on_canary} of 1000 keys on a 25% canary"
    );

    // Requests without the key are picked independently: both versions answer.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        seen.insert(
            client
                .get(&env.url("/"), &[])
                .await
                .header("x-serin-version")
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_keys_are_sticky() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&one_route(
        &[("v1", &v1.url(), 50.0), ("v2", &v2.url(), 50.0)],
        "sticky = \"cookie:uid\"",
    ))
    .await;
    let client = TestClient::http1();
    let first = versions_by_key(&env, &client, 300, true).await;
    assert_eq!(versions_by_key(&env, &client, 300, true).await, first);
    let on_v2 = first.values().filter(|v| *v == "v2").count();
    assert!(
        (100..=200).contains(&on_v2),
        "{on_v2} of 300 on a 50% version"
    );
    env.stop().await;
}
