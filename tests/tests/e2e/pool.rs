//! serin's upstream pool: keep-alive connections are reused, and an
//! upstream that closes idle connections costs no request an error.

use std::time::Duration;

use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::{one_route, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_share_one_upstream_connection() {
    let v1 = FakeVersion::start("v1").unwrap();
    let env = TestEnv::start(&one_route(&[("v1", &v1.url(), 100.0)], "")).await;
    for _ in 0..50 {
        let r = TestClient::http1().get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(v1.requests(), 50);
    // One pool per runtime thread (the test's runtime has two).
    assert!(
        v1.open_connections() <= 2,
        "50 requests one after another, {} connections",
        v1.open_connections()
    );
    env.stop().await;
}

/// An HTTP/1.1 upstream that closes a kept-alive connection after 20 ms
/// without a request, as nginx's `keepalive_timeout` does.
async fn short_keep_alive() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                loop {
                    let idle = Duration::from_millis(20);
                    match tokio::time::timeout(idle, s.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => return, // idle too long, or the peer left
                    }
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_idle_connections_costs_no_request_an_error() {
    let addr = short_keep_alive().await;
    let url = format!("http://{addr}");
    let env = TestEnv::start(&one_route(&[("v1", &url, 100.0)], "")).await;
    for i in 0..20 {
        let r = TestClient::http1().get(&env.url("/"), &[]).await;
        assert_eq!((i, r.status.as_u16(), r.text()), (i, 200, "ok".to_owned()));
        // Half the gaps outlast the upstream's keep-alive, half do not.
        let gap = if i % 2 == 0 { 50 } else { 5 };
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    env.stop().await;
}
