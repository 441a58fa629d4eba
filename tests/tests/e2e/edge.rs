//! Edge conformance from outside, over raw sockets: no h2c tunnel and no
//! unasked `101`, Host as RFC 9112 §3.2 asks, the client's own HTTP
//! version whatever the version spoke, ALPN alone choosing the protocol on
//! TLS, and client flags only on client commands.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use serin_loadtest::FakeVersion;
use serin_tests::raw::{self, exchange, read_until_closed};
use serin_tests::tls::TestCert;
use serin_tests::{one_route, serin_bin, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const H2C_UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: a\r\n\
    Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
    HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";

/// Reads a request head (to the blank line); false when the peer closed.
async fn read_head(s: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// A version that answers every request `101 Switching Protocols`, asked
/// or not, writes `TUNNEL` as the switched protocol's first bytes, and
/// counts the bytes that reach it past the head: what hypercorn does with
/// any `Upgrade: h2c`. Returns its address, heads read, and bytes past them.
async fn switcher() -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (heads, past) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (h, p) = (heads.clone(), past.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (h, p) = (h.clone(), p.clone());
            tokio::spawn(async move {
                if !read_head(&mut s).await {
                    return;
                }
                h.fetch_add(1, Relaxed);
                let answer = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                    Upgrade: h2c\r\n\r\nTUNNEL";
                let _ = s.write_all(answer).await;
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    p.fetch_add(n, Relaxed);
                }
            });
        }
    });
    (addr, heads, past)
}

/// A version that speaks HTTP/1.0: `ok`, then it closes.
async fn http10_version() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if read_head(&mut s).await {
                    let _ = s
                        .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok")
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upgrade_never_reaches_a_version_that_would_accept_it() {
    // The fake version answers 101 to any request with an Upgrade header.
    let v = FakeVersion::start("v1").unwrap();
    let env = TestEnv::start(&one_route(&[("v1", &v.url(), 1.0)], "")).await;
    let r = exchange(env.http, H2C_UPGRADE, Duration::from_millis(800)).await;
    assert_eq!(r.status(), Some(200), "{}", r.text);
    let body = &r.text[r.text.find('{').expect("a JSON echo")..];
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    for gone in ["upgrade", "connection", "http2-settings"] {
        assert!(
            seen["headers"].get(gone).is_none(),
            "{gone} reached the version: {}",
            seen["headers"]
        );
    }
    assert!(!r.text.contains(" 101 "), "{}", r.text);
    // A WebSocket upgrade still goes through (the default `upgrades`).
    let mut s = TcpStream::connect(env.http).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_until_closed(&mut s, Duration::from_millis(500)).await;
    assert_eq!(head.status(), Some(101), "{}", head.text);
    s.write_all(b"ping").await.unwrap();
    let echo = read_until_closed(&mut s, Duration::from_millis(500)).await;
    assert_eq!(echo.text, "ping");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_switching_protocols_unasked_gets_no_tunnel() {
    let (addr, heads, past) = switcher().await;
    let env = TestEnv::start(&one_route(&[("v1", &format!("http://{addr}"), 1.0)], "")).await;
    for request in [
        &b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        H2C_UPGRADE,
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: custom\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(env.http).await.unwrap();
        s.write_all(request).await.unwrap();
        let r = read_until_closed(&mut s, Duration::from_millis(800)).await;
        assert_eq!(r.status(), Some(502), "{}", r.text);
        assert!(
            !r.text.contains("TUNNEL"),
            "tunnel bytes reached the client"
        );
        // Whatever the client sends next goes nowhere near the version.
        let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        let _ = read_until_closed(&mut s, Duration::from_millis(300)).await;
    }
    assert_eq!(heads.load(Relaxed), 3);
    assert_eq!(past.load(Relaxed), 0, "bytes crossed a tunnel");
    let stats = serin_tests::client::TestClient::http1()
        .get(&env.admin_url("/api/v1/routes/svc/stats"), &[])
        .await
        .json();
    assert_eq!(stats["versions"]["v1"]["connect_errors"], 3, "{stats}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_checked_as_rfc_9112_asks() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let toml = format!(
        "[listen]\nhttp = \"127.0.0.1:1\"\n\n\
         [[routes]]\nname = \"b\"\nhosts = [\"b.example\"]\n\
         [[routes.versions]]\nname = \"v2\"\nurl = \"{}\"\nweight = 1\n\n\
         [[routes]]\nname = \"all\"\n\
         [[routes.versions]]\nname = \"v1\"\nurl = \"{}\"\nweight = 1\n",
        v2.url(),
        v1.url()
    );
    let env = TestEnv::start(&toml).await;
    let wait = Duration::from_millis(600);
    for (what, head) in [
        ("no Host", "GET /echo HTTP/1.1\r\n\r\n"),
        (
            "two Hosts",
            "GET /echo HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        ),
        (
            "two other Hosts",
            "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b.example\r\n\r\n",
        ),
        (
            "userinfo",
            "GET /echo HTTP/1.1\r\nHost: a@b.example\r\n\r\n",
        ),
        ("bad port", "GET /echo HTTP/1.1\r\nHost: a:x\r\n\r\n"),
        ("empty", "GET /echo HTTP/1.1\r\nHost: \r\n\r\n"),
        (
            "userinfo in the target",
            "GET http://u@b.example/echo HTTP/1.1\r\nHost: b.example\r\n\r\n",
        ),
    ] {
        let r = exchange(env.http, head.as_bytes(), wait).await;
        assert_eq!(r.status(), Some(400), "{what}: {}", r.text);
        assert!(r.closed, "{what}: connection left open");
    }
    assert_eq!(v1.requests() + v2.requests(), 0, "a bad host was forwarded");
    // No tunnels: CONNECT is refused.
    let r = exchange(
        env.http,
        b"CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(r.status(), Some(405), "{}", r.text);
    assert_eq!(v1.requests() + v2.requests(), 0, "CONNECT was forwarded");

    // The absolute-form target wins: routed by it, and Host rewritten to it.
    let r = exchange(
        env.http,
        b"GET http://b.example/echo HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(r.status(), Some(200), "{}", r.text);
    let seen: serde_json::Value =
        serde_json::from_str(&r.text[r.text.find('{').unwrap()..]).unwrap();
    assert_eq!(seen["version"], "v2");
    assert_eq!(seen["headers"]["host"], "b.example");
    assert_eq!(seen["headers"]["x-forwarded-host"], "b.example");
    // HTTP/1.0 predates Host. (hyper answers an HTTP/1.0 client in
    // HTTP/1.0, README's "HTTP conformance" says so.)
    let r = exchange(env.http, b"GET /echo HTTP/1.0\r\n\r\n", wait).await;
    assert!(r.text.starts_with("HTTP/1.0 200 "), "{}", r.text);
    // HTTP/2: a Host naming another host than :authority.
    let frames = raw::h2_request(
        env.http,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "a.example"),
            (":path", "/echo"),
            ("host", "b.example"),
        ],
        wait,
    )
    .await;
    let status = frames.iter().find_map(raw::Frame::status);
    assert_eq!(status, Some(400), "{frames:?}");
    assert_eq!(v2.requests(), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_version_never_downgrades_the_client() {
    let addr = http10_version().await;
    let env = TestEnv::start(&one_route(&[("v1", &format!("http://{addr}"), 1.0)], "")).await;
    let mut s = TcpStream::connect(env.http).await.unwrap();
    for round in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let r = read_until_closed(&mut s, Duration::from_millis(500)).await;
        assert!(
            r.text.starts_with("HTTP/1.1 200 "),
            "round {round}: {}",
            r.text
        );
        // No length from the version: re-framed chunked for the client.
        assert!(
            r.text.ends_with("2\r\nok\r\n0\r\n\r\n"),
            "round {round}: {}",
            r.text
        );
        assert!(!r.closed, "round {round}: keep-alive lost behind HTTP/1.0");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_alone_decides_the_protocol_on_tls() {
    let v = FakeVersion::start("v1").unwrap();
    let certs = tempfile::tempdir().unwrap();
    let cert = TestCert::new();
    let env = serin_tests::tls::https_env(&v, certs.path(), &cert).await;
    let addr = env.https.expect("https listener");
    let wait = Duration::from_millis(800);
    let get = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

    // h2: HTTP/1.1 bytes are a bad preface, a connection error.
    let (mut s, alpn) = serin_tests::tls::raw(addr, &cert.der, &["h2"])
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    s.write_all(get).await.unwrap();
    let r = read_until_closed(&mut s, wait).await;
    assert!(
        !r.text.contains("HTTP/1.1"),
        "HTTP/1 spoken after ALPN h2: {}",
        r.text
    );
    assert!(r.closed, "a bad preface left the connection open");

    // http/1.1 and no ALPN: HTTP/1.1 only; the h2 preface is not HTTP/2.
    for offer in [&["http/1.1"][..], &[]] {
        let (mut s, alpn) = serin_tests::tls::raw(addr, &cert.der, offer).await.unwrap();
        assert_eq!(alpn.as_deref(), offer.first().map(|p| p.as_bytes()));
        s.write_all(get).await.unwrap();
        let r = read_until_closed(&mut s, wait).await;
        assert!(r.text.starts_with("HTTP/1.1 200 "), "{offer:?}: {}", r.text);

        let (mut s, _) = serin_tests::tls::raw(addr, &cert.der, offer).await.unwrap();
        s.write_all(preface).await.unwrap();
        let r = read_until_closed(&mut s, wait).await;
        // hyper's HTTP/1.1 parser closes on the preface without a word;
        // what matters is that no HTTP/2 frame (a SETTINGS first) comes back.
        assert!(
            r.text.is_empty() || r.text.starts_with("HTTP/1.1 "),
            "HTTP/2 spoken after {offer:?}: {:?}",
            r.text
        );
        assert!(
            r.closed,
            "{offer:?}: connection left open after a bad request"
        );
    }

    // A protocol serin does not speak: the handshake is refused.
    assert!(serin_tests::tls::raw(addr, &cert.der, &["spdy/3.1"])
        .await
        .is_err());
    // And serin still serves.
    let (mut s, _) = serin_tests::tls::raw(addr, &cert.der, &["http/1.1"])
        .await
        .unwrap();
    s.write_all(get).await.unwrap();
    let r = read_until_closed(&mut s, wait).await;
    assert_eq!(r.status(), Some(200), "{}", r.text);
    env.stop().await;
}

#[tokio::test]
async fn client_flags_belong_to_client_commands_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("serin.toml");
    std::fs::write(&file, one_route(&[("v1", "http://127.0.0.1:9", 1.0)], "")).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        &["run", "--config", file, "--token", "abc"][..],
        &["run", "--config", file, "--admin", "http://127.0.0.1:1"],
        &["check", file, "--json"],
        &["demo", "--token", "abc"],
    ] {
        let o = tokio::process::Command::new(serin_bin())
            .args(args)
            .env_remove("SERIN_ADMIN_TOKEN")
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("unexpected argument"), "{args:?}: {err}");
    }
    // On a client command they are flags, after the subcommand.
    let o = tokio::process::Command::new(serin_bin())
        .args([
            "status",
            "--admin",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--json",
        ])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot reach serin"), "{err}");
}

/// A TLS ClientHello naming `name` as SNI, as a client that puts an IP
/// address there sends it (rustls clients never do; others may).
fn client_hello_with_sni(name: &str) -> Vec<u8> {
    let u16be = |n: usize| u16::try_from(n).unwrap().to_be_bytes();
    let mut sni = Vec::new();
    sni.extend(u16be(3 + name.len()));
    sni.push(0);
    sni.extend(u16be(name.len()));
    sni.extend(name.as_bytes());
    let mut ext = vec![0, 0];
    ext.extend(u16be(sni.len()));
    ext.extend(sni);
    let mut hello = vec![3, 3];
    hello.extend([7u8; 32]);
    hello.push(0);
    hello.extend([0, 4, 0x13, 0x01, 0xc0, 0x2f]);
    hello.extend([1, 0]);
    hello.extend(u16be(ext.len()));
    hello.extend(ext);
    let mut handshake = vec![1, 0];
    handshake.extend(u16be(hello.len()));
    handshake.extend(hello);
    let mut record = vec![0x16, 3, 1];
    record.extend(u16be(handshake.len()));
    record.extend(handshake);
    record
}

/// Runs `serin run` over TLS with `SERIN_LOG=log`, sends 50 ClientHellos
/// with an IP address as SNI, and returns what serin logged.
async fn log_of_fifty_ip_sni_handshakes(log: &str) -> String {
    let v = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::new();
    let (cert_path, key_path) = cert.write(dir.path());
    let (http, https, admin) = (
        serin_tests::process::free_addr(),
        serin_tests::process::free_addr(),
        serin_tests::process::free_addr(),
    );
    let toml = format!(
        "[listen]\nhttp = \"{http}\"\nhttps = \"{https}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
         [admin]\naddr = \"{admin}\"\n[state]\ndir = \"{}\"\n\n\
         [[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"{}\"\nweight = 1\n",
        cert_path.display(),
        key_path.display(),
        dir.path().join("state").display(),
        v.url()
    );
    let config = dir.path().join("serin.toml");
    std::fs::write(&config, toml).unwrap();
    let out = dir.path().join("serin.log");
    let mut child = std::process::Command::new(serin_bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("SERIN_LOG", log)
        .env("SERIN_ADMIN_TOKEN", "t")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    // Up once the admin API answers (a probe of the TLS port would itself
    // be a failed handshake).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(admin).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "serin did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hello = client_hello_with_sni("127.0.0.1");
    for _ in 0..50 {
        let mut s = TcpStream::connect(https).await.unwrap();
        s.write_all(&hello).await.unwrap();
        let _ = read_until_closed(&mut s, Duration::from_millis(500)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_can_flood_the_log_through_tls_handshakes() {
    // The hellos do make rustls warn, once each, when asked to.
    let asked = log_of_fifty_ip_sni_handshakes("info,rustls=warn").await;
    assert_eq!(asked.matches("SNI").count(), 50, "{asked}");
    // By default its warnings are held, and serin's own line is one per 10 s.
    let text = log_of_fifty_ip_sni_handshakes("info").await;
    assert!(
        !text.contains("SNI"),
        "rustls' warning reached the log:\n{text}"
    );
    assert!(!text.contains("WARN"), "{text}");
    let failed = text.matches("TLS handshake failed").count();
    assert_eq!(
        failed, 1,
        "{failed} lines for 50 failed handshakes:\n{text}"
    );
}
