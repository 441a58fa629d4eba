use super::*;

fn head(text: &str, method: &Method) -> Result<Option<Head>, WireError> {
    let mut buf = BytesMut::from(text.as_bytes());
    parse_head(&mut buf, method)
}

fn fwd() -> Forwarding {
    let peer = crate::headers::Peer {
        addr: "192.0.2.7:40000".parse().unwrap(),
        tls: false,
    };
    let mut with_id = HeaderMap::new();
    with_id.insert("x-request-id", HeaderValue::from_static("r1"));
    // A client's valid trace: passed on as sent, so serin writes none.
    with_id.insert(
        "traceparent",
        HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    crate::headers::forwarded(&with_id, peer, None, false, false, None)
}

#[test]
fn the_request_head_has_one_framing_and_keeps_the_rest() {
    let fwd = fwd();
    let extra = Extra {
        fwd: Some(&fwd),
        host: None,
    };
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("v1:80"));
    h.insert("content-length", HeaderValue::from_static("999"));
    h.append("x-a", HeaderValue::from_static("1"));
    h.append("x-a", HeaderValue::from_static("2"));
    h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
    h.insert("via", HeaderValue::from_static("1.0 a"));
    h.insert("x-request-id", HeaderValue::from_static("r1"));
    let mut dst = BytesMut::new();
    let post = Method::POST;
    encode_head(&mut dst, &post, "/p?q=1", &h, &extra, ReqFraming::Length(5));
    assert_eq!(
        std::str::from_utf8(&dst).unwrap(),
        "POST /p?q=1 HTTP/1.1\r\nhost: v1:80\r\nx-a: 1\r\nx-a: 2\r\nx-request-id: r1\r\n\
         x-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\nvia: 1.1 serin\r\n\
         content-length: 5\r\n\r\n"
    );
    let host = HeaderValue::from_static("v2:81");
    let extra = Extra {
        fwd: Some(&fwd),
        host: Some(&host),
    };
    let mut dst = BytesMut::new();
    let none = HeaderMap::new();
    encode_head(
        &mut dst,
        &Method::GET,
        "/",
        &none,
        &extra,
        ReqFraming::Chunked,
    );
    assert_eq!(
        std::str::from_utf8(&dst).unwrap(),
        "GET / HTTP/1.1\r\nx-forwarded-for: 192.0.2.7\r\nx-forwarded-proto: http\r\n\
         via: 1.1 serin\r\nhost: v2:81\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

#[test]
fn request_framing_follows_the_client() {
    let mut with_cl = HeaderMap::new();
    with_cl.insert("content-length", HeaderValue::from_static("12"));
    let none = HeaderMap::new();
    assert_eq!(
        request_framing(&Method::PUT, &with_cl, None, false),
        ReqFraming::Length(12)
    );
    assert_eq!(
        request_framing(&Method::GET, &none, Some(0), true),
        ReqFraming::None
    );
    assert_eq!(
        request_framing(&Method::POST, &none, Some(0), true),
        ReqFraming::Length(0)
    );
    assert_eq!(
        request_framing(&Method::POST, &none, Some(7), false),
        ReqFraming::Length(7)
    );
    assert_eq!(
        request_framing(&Method::POST, &none, None, false),
        ReqFraming::Chunked
    );
}

#[test]
fn response_heads_and_their_framing() {
    let h = head(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
        &Method::GET,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.framing, RespFraming::Length(5));
    assert!(h.keep_alive);
    assert_eq!(h.headers["x-a"], "b");

    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(
        head(chunked, &Method::GET).unwrap().unwrap().framing,
        RespFraming::Chunked
    );
    let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n";
    assert!(!head(close, &Method::GET).unwrap().unwrap().keep_alive);
    let old = head("HTTP/1.0 200 OK\r\n\r\n", &Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!(
        (old.version, old.framing, old.keep_alive),
        (Version::HTTP_10, RespFraming::Close, false)
    );
    let old_ka = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
    assert!(head(old_ka, &Method::GET).unwrap().unwrap().keep_alive);
    for (text, method) in [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD),
        ("HTTP/1.1 204 No Content\r\n\r\n", Method::GET),
        (
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            Method::GET,
        ),
        ("HTTP/1.1 100 Continue\r\n\r\n", Method::POST),
    ] {
        assert_eq!(
            head(text, &method).unwrap().unwrap().framing,
            RespFraming::None,
            "{text}"
        );
    }
    assert!(head("HTTP/1.1 200 OK\r\nContent-", &Method::GET)
        .unwrap()
        .is_none());
}

#[test]
fn the_head_is_split_off_and_the_body_stays() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..]);
    let h = parse_head(&mut buf, &Method::GET).unwrap().unwrap();
    assert_eq!(h.framing, RespFraming::Length(2));
    assert_eq!(&buf[..], b"ok");
}

#[test]
fn ambiguous_or_malformed_heads_are_refused() {
    for bad in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    ] {
        assert!(head(bad, &Method::GET).is_err(), "{bad}");
    }
    let huge = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD + 1));
    assert_eq!(head(&huge, &Method::GET).unwrap_err(), WireError::TooLarge);
}

#[test]
fn chunk_lines_are_hex() {
    let mut dst = BytesMut::new();
    chunk_line(0x1a2b, &mut dst);
    chunk_line(0, &mut dst);
    assert_eq!(&dst[..], b"1a2b\r\n0\r\n");
}
