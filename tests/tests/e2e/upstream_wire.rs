//! serin's own HTTP/1.1 client to versions, on the wire: chunked bodies
//! with trailers, `Expect: 100-continue`, pipelined client requests,
//! bodiless answers (HEAD, 204, 304) on a kept-alive connection, a version
//! that closes after each answer, and one that breaks a body off (the
//! client sees a truncated answer, never a hang).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serin_loadtest::FakeVersion;
use serin_tests::raw::{exchange, read_until_closed};
use serin_tests::{one_route, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A version that reads each request head (and no body) and answers with
/// `answer` on the same connection, as many times as asked; after each
/// answer it closes when `close` is set.
async fn scripted(answer: &'static [u8], close: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        if s.write_all(answer).await.is_err() || close {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_answer_keeps_its_trailers_grpc_style() {
    let addr = scripted(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n",
        false,
    )
    .await;
    let env = TestEnv::start(&one_route(&[("v1", &url(addr), 1.0)], "")).await;
    // HTTP/2 carries trailers to any client.
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    for _ in 0..3 {
        let resp = h2
            .request(
                http::Request::get(env.url("/svc.Echo/Say"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let all = resp.into_body().collect().await.unwrap();
        let trailers = all.trailers().cloned().expect("trailers passed on");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["grpc-message"], "ok");
        assert_eq!(all.to_bytes(), "hello world");
    }
    // HTTP/1.1 clients get the body re-chunked.
    let r = exchange(
        env.http,
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(r.text.starts_with("HTTP/1.1 200 "), "{}", r.text);
    assert!(
        r.text.contains("hello") && r.text.contains(" world"),
        "{}",
        r.text
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_pipelining_and_bodiless_answers_on_one_connection() {
    let v = FakeVersion::start("v1").unwrap();
    let env = TestEnv::start(&one_route(&[("v1", &v.url(), 1.0)], "")).await;
    let wait = Duration::from_millis(600);
    let mut s = TcpStream::connect(env.http).await.unwrap();

    // Expect: 100-continue: the body follows serin's 100.
    s.write_all(
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let r = read_until_closed(&mut s, wait).await;
    assert!(r.text.starts_with("HTTP/1.1 100 Continue"), "{}", r.text);
    s.write_all(b"abcde").await.unwrap();
    let r = read_until_closed(&mut s, wait).await;
    assert!(r.text.starts_with("HTTP/1.1 200 "), "{}", r.text);
    assert!(r.text.contains(r#""bytes":5"#), "{}", r.text);

    // Three pipelined requests, answered in order; HEAD, 204 and 304 carry
    // no body, so the next answer is read right.
    s.write_all(
        b"HEAD /download?bytes=100 HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /status?code=204 HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /status?code=304 HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /download?bytes=3 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let r = read_until_closed(&mut s, wait).await;
    let statuses: Vec<&str> = r
        .text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &r.text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "204", "304", "200"], "{}", r.text);
    assert!(
        r.text.contains("content-length: 100"),
        "HEAD keeps its length: {}",
        r.text
    );
    assert!(!r.closed, "{}", r.text);
    assert_eq!(v.requests(), 5);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_closes_after_each_answer_is_fine() {
    let addr = scripted(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        true,
    )
    .await;
    let env = TestEnv::start(&one_route(&[("v1", &url(addr), 1.0)], "")).await;
    let c = serin_tests::client::TestClient::http1();
    for _ in 0..20 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!((r.status.as_u16(), r.text()), (200, "ok".to_owned()));
    }
    // An HTTP/1.0-style answer that runs to the close.
    let addr = scripted(b"HTTP/1.0 200 OK\r\n\r\nto the end", true).await;
    let env2 = TestEnv::start(&one_route(&[("v1", &url(addr), 1.0)], "")).await;
    for _ in 0..5 {
        assert_eq!(c.get(&env2.url("/"), &[]).await.text(), "to the end");
    }
    env.stop().await;
    env2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_broken_off_by_the_version_is_a_truncated_answer_not_a_hang() {
    let addr = scripted(
        b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly some of it",
        true,
    )
    .await;
    let env = TestEnv::start(&one_route(&[("v1", &url(addr), 1.0)], "")).await;
    let start = tokio::time::Instant::now();
    let r = exchange(
        env.http,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    // hyper's server may drop what it had not flushed when the body
    // breaks: a truncated answer or none, but the connection closes.
    assert!(
        r.text.is_empty() || r.text.starts_with("HTTP/1.1 200 "),
        "{}",
        r.text
    );
    assert!(r.text.len() < 1000, "{}", r.text);
    assert!(r.closed, "the client was left waiting for the rest");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // And a chunked body broken mid-chunk.
    let addr = scripted(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nonly",
        true,
    )
    .await;
    let env2 = TestEnv::start(&one_route(&[("v1", &url(addr), 1.0)], "")).await;
    let r = exchange(
        env2.http,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(r.closed, "{}", r.text);
    assert!(
        !r.text.ends_with("0\r\n\r\n"),
        "a broken body ended as if whole: {}",
        r.text
    );
    env.stop().await;
    env2.stop().await;
}

/// A version that answers as soon as it has the head and then reads the
/// whole body (as streaming handlers do), ending its answer with the count.
async fn answers_then_reads() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 65536];
                let end = loop {
                    match s.read(&mut buf).await {
                        Ok(n @ 1..) => got.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                    if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                };
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let len: usize = head
                    .split("content-length: ")
                    .nth(1)
                    .and_then(|r| r.split("\r\n").next())
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                let early = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if s.write_all(early).await.is_err() {
                    return;
                }
                let mut body = got.len() - end;
                while body < len {
                    match s.read(&mut buf).await {
                        Ok(n @ 1..) => body += n,
                        _ => return,
                    }
                }
                let count = body.to_string();
                let tail = format!("{:x}\r\n{count}\r\n0\r\n\r\n", count.len());
                let _ = s.write_all(tail.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_answering_before_it_reads_the_body_still_gets_all_of_it() {
    let addr = answers_then_reads().await;
    let env = TestEnv::start(&one_route(&[("v1", &url(addr), 1.0)], "")).await;
    let c = serin_tests::client::TestClient::http1();
    for size in [10, 300_000, 3_000_000] {
        let body = Bytes::from(vec![b'x'; size]);
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            c.send("POST", &env.url("/"), &[], body),
        )
        .await
        .expect("hung: the rest of the body was never sent");
        assert_eq!((r.status.as_u16(), r.text()), (200, size.to_string()));
    }
    env.stop().await;
}
