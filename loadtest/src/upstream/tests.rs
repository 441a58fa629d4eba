use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::checksum::fnv1a64;

type Answer = (StatusCode, HeaderMap, Bytes);
type Error = Box<dyn std::error::Error + Send + Sync>;

/// One request on a fresh HTTP/1.1 connection.
async fn send<B>(addr: SocketAddr, req: Request<B>) -> Result<Answer, Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

async fn get(addr: SocketAddr, path: &str) -> Result<Answer, Error> {
    let req = Request::get(path)
        .header("host", "fake")
        .body(Full::<Bytes>::default())
        .unwrap();
    send(addr, req).await
}

async fn json(addr: SocketAddr, req: Request<Full<Bytes>>) -> serde_json::Value {
    let (status, _, body) = send(addr, req).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn default_answer_names_the_version() {
    let fake = FakeVersion::start("v1").unwrap();
    assert_eq!(fake.url(), format!("http://{}", fake.addr()));
    let (status, headers, body) = get(fake.addr(), "/anything").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[X_UPSTREAM_VERSION], "v1");
    assert_eq!(body, "v1\n");
    assert_eq!(fake.requests(), 1);
    let (status, _, _) = get(fake.addr(), "/status?code=418").await.unwrap();
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
}

#[tokio::test]
async fn error_rate_one_answers_500_but_not_health() {
    let fake = FakeVersion::start("v2").unwrap();
    fake.faults().set_error_rate(1.0);
    for _ in 0..5 {
        let (status, headers, _) = get(fake.addr(), "/").await.unwrap();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(headers[X_UPSTREAM_VERSION], "v2");
    }
    let (status, _, body) = get(fake.addr(), "/health").await.unwrap();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
}

#[tokio::test]
async fn latency_and_status_override() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_latency(Duration::from_millis(80));
    fake.faults().set_status(503);
    let started = Instant::now();
    let (status, _, _) = get(fake.addr(), "/").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(80));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    fake.faults().clear();
    let started = Instant::now();
    let (status, _, _) = get(fake.addr(), "/delay?ms=60").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn hang_holds_until_lifted() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_hang(true);
    let held = tokio::time::timeout(Duration::from_millis(300), get(fake.addr(), "/")).await;
    assert!(held.is_err(), "a hung version answered");
    fake.faults().set_hang(false);
    let (status, _, _) = get(fake.addr(), "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refuse_resets_new_and_open_connections() {
    let fake = FakeVersion::start("v1").unwrap();
    // A keep-alive connection opened before the fault.
    let stream = TcpStream::connect(fake.addr()).await.unwrap();
    let (mut open, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    fake.faults().set_refuse(true);

    // The reset may already fail the connect, or else the first read.
    if let Ok(mut raw) = TcpStream::connect(fake.addr()).await {
        let _ = raw.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut buf = [0u8; 64];
        match raw.read(&mut buf).await {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("refused connection answered {n} bytes"),
        }
    }
    let req = Request::get("/").body(Full::<Bytes>::default()).unwrap();
    assert!(open.send_request(req).await.is_err());
    assert!(get(fake.addr(), "/").await.is_err());

    fake.faults().set_refuse(false);
    assert!(get(fake.addr(), "/").await.is_ok());
}

#[tokio::test]
async fn close_mid_headers_cuts_the_status_line() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_close_mid_headers(true);
    let mut raw = TcpStream::connect(fake.addr()).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    raw.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"HTTP/1.1 200 OK\r\nContent-Le");
    assert!(get(fake.addr(), "/").await.is_err());
    assert_eq!(fake.requests(), 2);
}

#[tokio::test]
async fn health_fail_only_fails_health() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_health_fail(true);
    let (status, _, _) = get(fake.addr(), "/health").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = get(fake.addr(), "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn health_hang_holds_only_health_and_connections_are_counted() {
    let fake = FakeVersion::start("v1").unwrap();
    fake.faults().set_health_hang(true);
    let (status, _, _) = get(fake.addr(), "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let held = tokio::time::timeout(Duration::from_millis(100), get(fake.addr(), "/health")).await;
    assert!(held.is_err(), "/health answered while hanging");
    assert_eq!((fake.requests(), fake.health_requests()), (2, 1));
    // The timed-out client dropped its connection; the fake sees it close.
    let mut open = fake.open_connections();
    for _ in 0..100 {
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        open = fake.open_connections();
    }
    assert_eq!(open, 0);
    let _idle = TcpStream::connect(fake.addr()).await.unwrap();
    let mut open = 0;
    for _ in 0..100 {
        open = fake.open_connections();
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(open, 1);
    fake.faults().set_health_hang(false);
    let (status, _, _) = get(fake.addr(), "/health").await.unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn upload_streams_a_mebibyte() {
    let fake = FakeVersion::start("v1").unwrap();
    let chunk = Bytes::from((0..64 * 1024).map(|i| (i % 7) as u8).collect::<Vec<_>>());
    let mut whole = Vec::new();
    for _ in 0..16 {
        whole.extend_from_slice(&chunk);
    }
    // Chunked, no content-length: the server must not need the size.
    let frames =
        (0..16).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone())));
    let body = Iter(frames);
    let req = Request::post("/upload")
        .header("host", "x")
        .body(body)
        .unwrap();
    let (status, _, body) = send(fake.addr(), req).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["bytes"], 1024 * 1024);
    assert_eq!(doc["fnv"], format!("{:016x}", fnv1a64(&whole)));
}

#[tokio::test]
async fn download_returns_exactly_n_pattern_bytes() {
    let fake = FakeVersion::start("v1").unwrap();
    let n = 200_003u64;
    let (status, _, body) = get(fake.addr(), &format!("/download?bytes={n}"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len() as u64, n);
    assert!(body
        .iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64)));
    let (_, _, empty) = get(fake.addr(), "/download?bytes=0").await.unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn echo_shows_headers_and_body() {
    let fake = FakeVersion::start("v3").unwrap();
    let req = Request::post("/echo?x=1")
        .header("host", "x")
        .header("x-one", "a")
        .header("x-two", "b")
        .header("x-two", "c")
        .body(Full::new(Bytes::from_static(b"hello, echo")))
        .unwrap();
    let doc = json(fake.addr(), req).await;
    assert_eq!(doc["version"], "v3");
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["path"], "/echo");
    assert_eq!(doc["headers"]["x-one"], "a");
    assert_eq!(doc["headers"]["x-two"], serde_json::json!(["b", "c"]));
    assert_eq!(doc["body_len"], 11);
    assert_eq!(doc["body"], "hello, echo");
    assert_eq!(doc["body_fnv"], format!("{:016x}", fnv1a64(b"hello, echo")));
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let fake = FakeVersion::start("v1").unwrap();
    let stream = TcpStream::connect(fake.addr()).await.unwrap();
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("{}/", fake.url()))
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_2);
    assert_eq!(resp.headers()[X_UPSTREAM_VERSION], "v1");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "v1\n");
}

#[tokio::test]
async fn upgrade_echoes_raw_bytes() {
    let fake = FakeVersion::start("v1").unwrap();
    let mut raw = TcpStream::connect(fake.addr()).await.unwrap();
    raw.write_all(
        b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        raw.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("x-upstream-version: v1"), "{head}");
    raw.write_all(b"ping over the upgrade").await.unwrap();
    let mut echoed = [0u8; 21];
    raw.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping over the upgrade");
}

#[tokio::test]
async fn shutdown_releases_the_port() {
    let fake = FakeVersion::start("v1").unwrap();
    let addr = fake.addr();
    let stream = TcpStream::connect(addr).await.unwrap();
    fake.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    // The open connection was closed as well.
    let mut stream = stream;
    let mut buf = [0u8; 8];
    assert!(matches!(stream.read(&mut buf).await, Ok(0) | Err(_)));
    // And the port can serve again.
    let again = FakeVersion::start_on("v1b", addr).unwrap();
    let (_, headers, _) = get(again.addr(), "/").await.unwrap();
    assert_eq!(headers[X_UPSTREAM_VERSION], "v1b");
}

#[tokio::test]
async fn drop_stops_the_server() {
    let fake = FakeVersion::start("v1").unwrap();
    let addr = fake.addr();
    drop(fake);
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A body over an iterator of frames, with no `futures` crate for a stream.
struct Iter<I>(I);

impl<I: Iterator + Unpin> hyper::body::Body for Iter<I>
where
    I: Iterator<Item = Result<Frame<Bytes>, std::convert::Infallible>>,
{
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.next())
    }
}
