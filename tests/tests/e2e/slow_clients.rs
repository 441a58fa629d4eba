//! `[limits]` against slow and greedy clients: half-sent heads (slowloris),
//! oversized heads, idle keep-alive, the connection cap, HTTP/2 streams.

use std::time::Duration;

use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::raw::{self, exchange, read_until_closed};
use serin_tests::{one_route, TestEnv};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

async fn env_with(v: &serin_loadtest::FakeHandle, limits: &str) -> TestEnv {
    let toml = format!(
        "[limits]\n{limits}\n\n{}",
        one_route(&[("v1", &v.url(), 1.0)], "")
    );
    TestEnv::start(&toml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_slow_clients_do_not_delay_a_normal_request() {
    let v = FakeVersion::start("v1").unwrap();
    let env = env_with(&v, "header_read_timeout = \"2s\"").await;
    let start = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(env.http).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    // Ten of them keep trickling a byte: that must not restart their clock.
    let trickle: Vec<TcpStream> = slow.drain(..10).collect();
    let trickler = tokio::spawn(async move {
        let mut trickle = trickle;
        for _ in 0..8 {
            for s in &mut trickle {
                let _ = s.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        trickle
    });

    let c = TestClient::http1();
    for _ in 0..5 {
        let t = Instant::now();
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "a normal request took {:?}",
            t.elapsed()
        );
    }
    let h2 = TestClient::h2c().get(&env.url("/"), &[]).await;
    assert_eq!(h2.status, 200);

    // After the header read timeout every slow client is cut, tricklers too.
    let mut all = trickler.await.unwrap();
    all.extend(slow);
    for s in &mut all {
        let r = read_until_closed(s, Duration::from_secs(4)).await;
        assert!(r.closed, "a slow client still held a connection");
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "cut before the header read timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "cut too late: {took:?}");
    assert_eq!(c.get(&env.url("/"), &[]).await.status, 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_kb_header_gets_431_and_serin_keeps_serving() {
    let v = FakeVersion::start("v1").unwrap();
    let env = env_with(&v, "").await;
    let before = v.requests();
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 200 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    let r = exchange(env.http, &req, Duration::from_secs(3)).await;
    assert!(r.closed, "connection left open after an oversized head");
    assert_eq!(
        r.status(),
        Some(431),
        "{}",
        &r.text[..r.text.len().min(200)]
    );
    assert_eq!(
        v.requests(),
        before,
        "an oversized head reached the version"
    );

    // Just under the 64 KiB default passes.
    let big = "b".repeat(60 * 1024);
    let c = TestClient::http1();
    assert_eq!(c.get(&env.url("/"), &[("x-big", &big)]).await.status, 200);

    // HTTP/2: the header list limit answers 431 too (or the client gives up
    // before sending); either way serin keeps serving.
    let huge = "c".repeat(200 * 1024);
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::get(env.url("/"))
        .header("x-huge", &huge)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    if let Ok(resp) = h2.request(req).await {
        assert_eq!(resp.status(), 431);
    }
    assert_eq!(v.requests(), before + 1);
    assert_eq!(TestClient::h2c().get(&env.url("/"), &[]).await.status, 200);
    assert_eq!(c.get(&env.url("/"), &[]).await.status, 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_outlives_the_header_timeout_and_ends_at_idle_timeout() {
    let v = FakeVersion::start("v1").unwrap();
    let env = env_with(&v, "header_read_timeout = \"1s\"\nidle_timeout = \"3s\"").await;
    let mut s = TcpStream::connect(env.http).await.unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for round in 0..2 {
        s.write_all(req).await.unwrap();
        let r = read_until_closed(&mut s, Duration::from_millis(500)).await;
        assert_eq!(r.status(), Some(200), "round {round}: {}", r.text);
        assert!(!r.closed, "round {round}: closed");
        if round == 0 {
            // Idle longer than the header read timeout: still open.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }
    let idle_from = Instant::now();
    let r = read_until_closed(&mut s, Duration::from_secs(6)).await;
    assert!(r.closed, "idle connection never closed");
    let idle = idle_from.elapsed();
    assert!(
        idle > Duration::from_millis(2000) && idle < Duration::from_millis(4500),
        "closed after {idle:?} idle, want about 3s"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_pauses_at_max_connections_and_resumes() {
    let v = FakeVersion::start("v1").unwrap();
    let env = env_with(&v, "max_connections = 4").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(env.http).await.unwrap());
    }
    let url = env.url("/");
    let waiting = tokio::spawn(async move { TestClient::http1().get(&url, &[]).await.status });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !waiting.is_finished(),
        "a fifth connection was served past max_connections = 4"
    );
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("accepting did not resume when a connection closed")
        .unwrap();
    assert_eq!(status, 200);
    drop(held);
    // Still serving, many times over the cap in sequence.
    let c = TestClient::http1();
    for _ in 0..10 {
        assert_eq!(c.get(&env.url("/"), &[]).await.status, 200);
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_stream_limit_is_advertised() {
    let v = FakeVersion::start("v1").unwrap();
    let env = env_with(&v, "max_concurrent_streams = 7").await;
    let headers = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", "/"),
    ];
    let frames = raw::h2_request(env.http, &headers, Duration::from_secs(3)).await;
    // SETTINGS_MAX_CONCURRENT_STREAMS is setting 0x3.
    let advertised = frames.iter().find_map(|f| f.setting(0x3));
    assert_eq!(advertised, Some(7), "{frames:?}");
    env.stop().await;
}
