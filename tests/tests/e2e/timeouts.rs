//! Upload and upstream-connect limits: a stalled upload is cut with 408 and
//! counts against no version; connecting to a version has its own, shorter
//! clock than the version's response timeout.

use std::time::Duration;

use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::raw::read_until_closed;
use serin_tests::{one_route, TestEnv};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_with_408_and_blames_no_version() {
    let v = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    for chain in [false, true] {
        // With a chain that has somewhere to go, the body is kept for
        // replay (read whole first); without, it streams to v1.
        let mut toml = format!(
            "[limits]\nbody_read_timeout = \"500ms\"\n\n{}",
            one_route(&[("v1", &v.url(), 1.0), ("v2", &v2.url(), 0.0)], "")
        );
        if chain {
            toml.push_str("[routes.fallback]\nchain = [\"v1\", \"v2\"]\n");
        }
        let env = TestEnv::start(&toml).await;
        let mut s = TcpStream::connect(env.http).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly ten..")
            .await
            .unwrap();
        let t = Instant::now();
        let r = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert_eq!(r.status(), Some(408), "chain {chain}: {}", r.text);
        assert!(r.closed, "chain {chain}: connection left open");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "chain {chain}: cut after {:?}",
            t.elapsed()
        );
        let stats = TestClient::http1()
            .get(&env.admin_url("/api/v1/routes/svc/stats?window=60s"), &[])
            .await
            .json();
        let errors = stats["versions"]["v1"]["errors"].as_u64().unwrap_or(0);
        assert_eq!(
            errors, 0,
            "chain {chain}: a stalled client counted against v1: {stats}"
        );
        // A whole upload still goes through.
        let r = TestClient::http1()
            .send(
                "POST",
                &env.url("/upload"),
                &[],
                bytes::Bytes::from(vec![7u8; 100]),
            )
            .await;
        assert_eq!(r.status, 200, "chain {chain}");
        assert_eq!(r.json()["bytes"], 100);
        env.stop().await;
    }
}

/// A listener whose accept queue is full: connecting to it hangs (Linux
/// drops the SYN), as a version behind a dead route would.
fn black_hole() -> (
    std::net::SocketAddr,
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fill = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fill.push(s),
            Err(_) => break,
        }
    }
    (addr, listener, fill)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connect_timeout_is_shorter_than_the_response_timeout() {
    let (addr, _listener, _fill) = black_hole();
    // Without a free slot the test proves nothing: make sure connects hang.
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "the black hole accepted a connection"
    );
    let toml = format!(
        "[limits]\nupstream_connect_timeout = \"300ms\"\n\n{}",
        one_route(&[("v1", &format!("http://{addr}"), 1.0)], "")
    );
    // The version's own timeout is 2s (one_route).
    let env = TestEnv::start(&toml).await;
    let t = Instant::now();
    let r = TestClient::http1().get(&env.url("/"), &[]).await;
    let took = t.elapsed();
    assert_eq!(r.status, 502, "unreachable, not timed out: {}", r.text());
    assert!(
        took < Duration::from_millis(1500),
        "connect gave up after {took:?}"
    );
    env.stop().await;
}
