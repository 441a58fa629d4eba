//! Request smuggling: every framing that two parsers could read two ways
//! gets 400 and a closed connection, and never reaches a version as a
//! second request. Raw bytes over TCP, since no client library sends these.
//!
//! CL+TE is framed by Transfer-Encoding alone and the connection closed
//! after the response (hyper's behaviour, RFC 9112 §6.1; README
//! "Operations"): the test proves the bytes after the chunked body never
//! become a request.

use std::time::Duration;

use serin_loadtest::{FakeHandle, FakeVersion};
use serin_tests::raw::{self, exchange, kind};
use serin_tests::{one_route, TestEnv};

const WAIT: Duration = Duration::from_secs(3);

/// A route whose bodies stream through (no chain), or are read whole first
/// for replay (a chain with somewhere to go: v1 then v2). Each call has
/// its own versions, so a request cut off in one case cannot be counted
/// in the next.
async fn env(chain: bool) -> (TestEnv, FakeHandle, FakeHandle) {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let mut toml = one_route(&[("v1", &v1.url(), 1.0), ("v2", &v2.url(), 0.0)], "");
    if chain {
        toml.push_str("[routes.fallback]\nchain = [\"v1\", \"v2\"]\n");
    }
    (TestEnv::start(&toml).await, v1, v2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_gets_400_closed_and_never_reaches_the_version() {
    for chain in [false, true] {
        let (env, v, _v2) = env(chain).await;
        let cases: [(&str, &[u8]); 11] = [
            (
                "two different Content-Lengths",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            ),
            (
                "a Content-Length list",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!",
            ),
            (
                "a signed Content-Length",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
            ),
            (
                "chunked not last",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            (
                "a coding before chunked",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            (
                "chunked twice",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            (
                "identity",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nhello",
            ),
            (
                "a disguised chunked",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            (
                "a space before the colon",
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            (
                "Transfer-Encoding on HTTP/1.0",
                b"POST /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            (
                "obs-fold",
                b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
            ),
        ];
        for (what, bytes) in cases {
            let before = v.requests();
            let r = exchange(env.http, bytes, WAIT).await;
            assert_eq!(r.status(), Some(400), "{what} (chain {chain}): {}", r.text);
            assert!(r.closed, "{what} (chain {chain}): connection left open");
            assert_eq!(r.responses(), 1, "{what}: {}", r.text);
            assert_eq!(
                v.requests(),
                before,
                "{what} (chain {chain}) reached the version"
            );
        }
        env.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_chunk_sizes_get_400_and_close() {
    for chain in [false, true] {
        let (env, v, v2) = env(chain).await;
        let cases: [(&str, &[u8]); 4] = [
            ("not hex", b"zz\r\nhello\r\n0\r\n\r\n"),
            ("overflow", b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            ("negative", b"-5\r\nhello\r\n0\r\n\r\n"),
            ("size past the data", b"5\r\nhelloEXTRA\r\n0\r\n\r\n"),
        ];
        for (what, body) in cases {
            let mut bytes =
                b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            bytes.extend_from_slice(body);
            let r = exchange(env.http, &bytes, WAIT).await;
            assert_eq!(r.status(), Some(400), "{what} (chain {chain}): {}", r.text);
            assert!(r.closed, "{what}: connection left open");
            assert_eq!(r.responses(), 1, "{what}: {}", r.text);
        }
        // With a chain the body is read whole before any version sees it;
        // streamed, a version may see the head of a request whose body is
        // then cut off — never a complete one, never two per request.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let reached = v.requests() + v2.requests();
        let most = if chain { 0 } else { cases.len() as u64 };
        assert!(
            reached <= most,
            "chain {chain}: {reached} requests reached a version"
        );
        env.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cl_plus_te_is_framed_by_chunked_and_the_rest_never_becomes_a_request() {
    for chain in [false, true] {
        let (env, v, _v2) = env(chain).await;
        // CL.TE: a CL-framing hop would read "0\r\n\r\nGET /smuggled…" as
        // the body; TE framing ends the body at "0\r\n\r\n", and what
        // follows would be a second request — unless the connection closes.
        let smuggle = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n\
0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
        // TE.CL: a CL-framing hop would stop after "5c\r\n" and read the
        // chunk data as a request; TE framing keeps it all as body.
        let inner = "GET /smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nx=";
        let te_cl = format!(
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{inner}\r\n0\r\n\r\n",
            inner.len()
        );
        for (what, bytes) in [("CL.TE", &smuggle[..]), ("TE.CL", te_cl.as_bytes())] {
            let before = v.requests();
            let r = exchange(env.http, bytes, WAIT).await;
            assert_eq!(r.responses(), 1, "{what} (chain {chain}): {}", r.text);
            assert!(
                r.closed,
                "{what} (chain {chain}): the connection must close after the response"
            );
            assert_eq!(
                v.requests() - before,
                1,
                "{what} (chain {chain}): one request, not two"
            );
            let text = r.text.to_ascii_lowercase();
            assert!(!text.contains("/smuggled\""), "{what}: {}", r.text);
            if r.status() == Some(200) {
                // The version saw the chunked body only, with one framing.
                let body = &r.text[r.text.find("\r\n\r\n").unwrap() + 4..];
                let body = body.get(body.find('{').unwrap_or(0)..).unwrap_or("");
                let echo: serde_json::Value =
                    serde_json::from_str(body.trim_end_matches(|c| c != '}')).unwrap_or_default();
                let h = &echo["headers"];
                assert!(
                    !(h.get("content-length").is_some() && h.get("transfer-encoding").is_some()),
                    "{what}: both framings went upstream: {h}"
                );
                let want = if what == "CL.TE" { 0 } else { inner.len() };
                assert_eq!(echo["body_len"], want, "{what}: {echo}");
                assert_eq!(echo["path"], "/echo");
            } else {
                assert_eq!(r.status(), Some(400), "{what}: {}", r.text);
            }
        }
        env.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_connection_specific_headers_are_refused() {
    let (env, v, _v2) = env(false).await;
    let base = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "a"),
        (":path", "/echo"),
    ];
    // The framer works: an allowed `te: trailers` goes through.
    let mut ok = base.to_vec();
    ok.push(("te", "trailers"));
    let frames = raw::h2_request(env.http, &ok, WAIT).await;
    let status = frames
        .iter()
        .find_map(|f| (f.stream == 1).then(|| f.status()).flatten());
    assert_eq!(status, Some(200), "{frames:?}");

    for (name, value) in [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("te", "gzip"),
    ] {
        let before = v.requests();
        let mut headers = base.to_vec();
        headers.push((name, value));
        let frames = raw::h2_request(env.http, &headers, WAIT).await;
        // h2 treats the request as malformed (RFC 9113 §8.2.2): a stream
        // reset, or serin's own 400 should a parser ever let it through.
        let refused = frames
            .iter()
            .any(|f| f.stream == 1 && (f.kind == kind::RST_STREAM || f.status() == Some(400)))
            || frames.iter().any(|f| f.kind == kind::GOAWAY);
        assert!(refused, "{name}: {value} was not refused: {frames:?}");
        assert_eq!(v.requests(), before, "{name} reached the version");
    }
    env.stop().await;
}
