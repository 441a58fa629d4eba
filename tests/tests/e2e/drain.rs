//! Graceful drain of the real binary: SIGTERM stops accepting at once, lets
//! requests in flight finish (HTTP/2 gets GOAWAY), and exits 0; a second
//! signal exits at once.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serin_loadtest::FakeVersion;
use serin_tests::assert_eventually;
use serin_tests::client::TestClient;
use serin_tests::process::SerinProcess;
use tokio::time::Instant;

fn routes(url: &str) -> String {
    format!(
        "[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"{url}\"\nweight = 1\ntimeout = \"30s\"\n"
    )
}

/// An h2c connection's sender (prior knowledge).
async fn h2c(addr: std::net::SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

fn get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://a{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_after_sigterm_and_the_process_exits_0() {
    let v = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut serin = SerinProcess::spawn(dir.path(), &routes(&v.url()));
    let url = format!("http://{}/delay?ms=2000", serin.http);
    let h1 = tokio::spawn(async move {
        let t = Instant::now();
        (TestClient::http1().get(&url, &[]).await, t.elapsed())
    });
    let mut h2 = h2c(serin.http).await;
    let h2_slow = h2.send_request(get("/delay?ms=2000"));
    let h2_slow = tokio::spawn(async move {
        let resp = h2_slow.await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });
    assert_eventually!(
        v.requests() >= 2,
        3,
        "the slow requests did not reach the version"
    );

    serin.signal("TERM");
    let signalled = Instant::now();
    // New connections are refused at once.
    assert_eventually!(
        tokio::net::TcpStream::connect(serin.http).await.is_err(),
        1,
        "still accepting after SIGTERM"
    );
    assert!(signalled.elapsed() < Duration::from_millis(1000));
    // The open HTTP/2 connection got GOAWAY: no new stream on it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::time::timeout(Duration::from_secs(3), async {
        match h2.ready().await {
            Err(_) => true,
            Ok(()) => h2.send_request(get("/")).await.is_err(),
        }
    })
    .await
    .unwrap_or(false);
    assert!(refused, "a new stream was accepted after GOAWAY");

    let (r, took) = h1.await.unwrap();
    assert_eq!(r.status, 200, "in-flight HTTP/1.1 request: {}", r.text());
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    let (status, body) = h2_slow.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"v1\n");

    let exit = tokio::task::block_in_place(|| serin.wait_exit(Duration::from_secs(10)));
    let exit = exit.expect("serin did not exit after draining");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let v = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut serin = SerinProcess::spawn(dir.path(), &routes(&v.url()));
    let url = format!("http://{}/delay?ms=20000", serin.http);
    let slow = tokio::spawn(async move {
        let c = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        c.get(url.parse().unwrap()).await.map(|r| r.status())
    });
    assert_eventually!(
        v.requests() >= 1,
        3,
        "the slow request did not reach the version"
    );
    serin.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        serin.child.try_wait().unwrap().is_none(),
        "exited before draining"
    );
    let t = Instant::now();
    serin.signal("INT");
    let exit = tokio::task::block_in_place(|| serin.wait_exit(Duration::from_secs(3)));
    assert!(exit.is_some(), "a second signal did not stop serin");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        slow.await.unwrap().is_err(),
        "the cut request cannot have succeeded"
    );
}
