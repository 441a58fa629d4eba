//! Header hygiene: hop-by-hop headers never reach the version, forwarding
//! headers do, `x-request-id` is made when absent and kept when present;
//! an `Upgrade: websocket` handshake tunnels through.

use serin_loadtest::FakeVersion;
use serin_tests::{client::TestClient, one_route, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_out_forwarding_in() {
    let v = FakeVersion::start("v1").unwrap();
    let env = TestEnv::start(&one_route(&[("v1", &v.url(), 1.0)], "")).await;
    let c = TestClient::http1();
    let r = c
        .get(
            &env.url("/echo"),
            &[
                ("host", "svc.test"),
                ("connection", "keep-alive, x-secret"),
                ("x-secret", "hidden"),
                ("keep-alive", "timeout=5"),
                ("te", "trailers"),
                ("proxy-authorization", "Basic Zm9vOmJhcg=="),
                ("x-forwarded-for", "6.6.6.6"),
                ("via", "1.1 edge"),
                ("x-keep", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let echo = r.json();
    let h = &echo["headers"];
    for gone in [
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the version: {h}");
    }
    if let Some(conn) = h.get("connection").and_then(|v| v.as_str()) {
        // The pool may add its own `keep-alive`; never the client's list.
        assert!(!conn.contains("x-secret"), "connection: {conn}");
    }
    assert_eq!(h["x-keep"], "yes");
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "a client-set XFF is not trusted"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "svc.test");
    assert_eq!(h["host"], "svc.test", "the client's Host is kept");
    assert_eq!(h["via"], "1.1 edge, 1.1 serin");
    let id = h["x-request-id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

    let r = c
        .get(&env.url("/echo"), &[("x-request-id", "abc-123")])
        .await;
    assert_eq!(r.json()["headers"]["x-request-id"], "abc-123");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_tunnels_through() {
    let v = FakeVersion::start("v1").unwrap();
    let env = TestEnv::start(&one_route(&[("v1", &v.url(), 1.0)], "")).await;
    let mut s = tokio::net::TcpStream::connect(env.http).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: svc.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).await.unwrap(), 1, "closed before the 101");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for msg in [&b"hello"[..], b"second frame"] {
        s.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(std::time::Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(buf, msg);
    }
    env.stop().await;
}
