//! `X-Forwarded-For` is kept (and the peer appended) only from a peer in
//! `trusted_proxies`; from anyone else it is replaced by the peer address.

use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::{one_route, TestEnv};

async fn forwarded_for(trusted: &str) -> (String, String) {
    let v = FakeVersion::start("v1").unwrap();
    let toml = format!(
        "[limits]\ntrusted_proxies = [{trusted}]\n\n{}",
        one_route(&[("v1", &v.url(), 1.0)], "")
    );
    let env = TestEnv::start(&toml).await;
    let r = TestClient::http1()
        .get(
            &env.url("/echo"),
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "https"),
            ],
        )
        .await;
    let h = r.json()["headers"].clone();
    env.stop().await;
    (
        h["x-forwarded-for"].as_str().unwrap_or("").to_owned(),
        h["x-forwarded-proto"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peers_list_is_kept_and_extended() {
    let (xff, proto) = forwarded_for("\"10.0.0.0/8\", \"127.0.0.1/32\"").await;
    assert_eq!(xff, "198.51.100.7, 127.0.0.1");
    assert_eq!(
        proto, "https",
        "a trusted proxy's X-Forwarded-Proto is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peers_list_is_replaced() {
    let (xff, proto) = forwarded_for("\"10.0.0.0/8\"").await;
    assert_eq!(xff, "127.0.0.1");
    assert_eq!(proto, "http");
}
