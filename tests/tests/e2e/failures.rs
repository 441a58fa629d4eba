//! Upstream failures before the fallback chain: refused → 502, no headers
//! within the timeout → 504, both as JSON; the proxy keeps serving.

use std::time::{Duration, Instant};

use serin_loadtest::FakeVersion;
use serin_tests::{client::TestClient, one_route, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_is_502_and_hang_is_504() {
    let hang = FakeVersion::start("hang").unwrap();
    hang.faults().set_hang(true);
    // A port with nothing listening: bind, note the port, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let toml = one_route(&[("dead", &dead_url, 1.0)], "path_prefix = \"/dead\"")
        + &format!(
            "[[routes]]\nname = \"slow\"\npath_prefix = \"/slow\"\n[[routes.versions]]\nname = \"hang\"\nurl = \"{}\"\nweight = 1\ntimeout = \"300ms\"\n",
            hang.url()
        );
    let env = TestEnv::start(&toml).await;
    let c = TestClient::http1();

    let r = c.get(&env.url("/dead"), &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "upstream unavailable");

    let t = Instant::now();
    let r = c.get(&env.url("/slow"), &[]).await;
    assert_eq!(r.status, 504);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(r.json()["error"], "upstream timed out");

    // The proxy still serves after both.
    hang.faults().set_hang(false);
    assert_eq!(c.get(&env.url("/slow"), &[]).await.status, 200);
    env.stop().await;
}
