use super::*;

#[test]
fn connection_named_headers_go() {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-secret"),
    );
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert(header::TE, HeaderValue::from_static("trailers"));
    h.insert("x-keep", HeaderValue::from_static("1"));
    strip_hop_by_hop(&mut h, false);
    assert!(h.get("x-secret").is_none());
    assert!(h.get(header::TE).is_none());
    assert!(h.get(header::CONNECTION).is_none());
    assert!(h.get("x-keep").is_some());
}

#[test]
fn upgrade_survives_when_upgrading() {
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    assert!(is_upgrade(&h, websocket));
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h.get(header::UPGRADE).unwrap(), "websocket");
    assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
}

fn websocket(p: &str) -> bool {
    serin_config::Limits::default().allows_upgrade(p)
}

#[test]
fn only_allowed_upgrades_are_upgrades_and_h2c_goes_whole() {
    let upgrade = |connection: &'static str, protocols: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static(connection));
        h.insert(header::UPGRADE, HeaderValue::from_static(protocols));
        h.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQAAP__"),
        );
        h
    };
    assert!(is_upgrade(&upgrade("Upgrade", "WebSocket"), websocket));
    assert!(is_upgrade(
        &upgrade("keep-alive, upgrade", "websocket/13"),
        websocket
    ));
    for (connection, protocols) in [
        ("Upgrade, HTTP2-Settings", "h2c"),
        ("upgrade", "websocket, h2c"),
        ("upgrade", "tls/1.2"),
        ("upgrade", " , "),
        ("keep-alive", "websocket"),
    ] {
        let mut h = upgrade(connection, protocols);
        assert!(!is_upgrade(&h, websocket), "{connection} / {protocols}");
        strip_hop_by_hop(&mut h, false);
        for gone in ["upgrade", "connection", "http2-settings"] {
            assert!(h.get(gone).is_none(), "{gone} kept for {protocols}");
        }
    }
    // Even a passed-on upgrade never carries HTTP2-Settings.
    let mut h = upgrade("upgrade", "websocket");
    strip_hop_by_hop(&mut h, true);
    assert!(h.get("http2-settings").is_none());
}

#[test]
fn request_ids_differ() {
    assert_ne!(hex_value(new_id()), hex_value(new_id()));
    assert_eq!(hex_value(new_id()).len(), 32);
}

fn peer(ip: &str) -> Peer {
    Peer {
        addr: SocketAddr::new(ip.parse().unwrap(), 40000),
        tls: false,
    }
}

fn xff(h: &HeaderMap) -> &str {
    h.get("x-forwarded-for").unwrap().to_str().unwrap()
}

#[test]
fn untrusted_peers_forwarded_for_is_replaced() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    forwarded(&h, peer("203.0.113.7"), None, false, false, None).apply(&mut h);
    assert_eq!(xff(&h), "203.0.113.7");
    assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
}

#[test]
fn trusted_peers_forwarded_for_is_kept_and_appended() {
    let mut h = HeaderMap::new();
    h.append(
        "x-forwarded-for",
        HeaderValue::from_static("198.51.100.1, 10.1.1.1"),
    );
    h.append("x-forwarded-for", HeaderValue::from_static(" 10.2.2.2 "));
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    let host = Some(HeaderValue::from_static("svc"));
    forwarded(&h, peer("::ffff:10.0.0.9"), host, false, true, None).apply(&mut h);
    assert_eq!(xff(&h), "198.51.100.1, 10.1.1.1, 10.2.2.2, 10.0.0.9");
    assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    assert_eq!(h.get("x-forwarded-proto").unwrap(), "https", "kept");
    assert_eq!(h.get("x-forwarded-host").unwrap(), "svc", "set when absent");

    let mut h = HeaderMap::new();
    forwarded(&h, peer("10.0.0.9"), None, false, true, None).apply(&mut h);
    assert_eq!(xff(&h), "10.0.0.9", "no list yet: the peer alone");
}

mod prop {
    //! Header handling never panics and never forwards a hop-by-hop
    //! header, whatever names and values a client sends.

    use proptest::prelude::*;

    use super::super::*;

    /// Names from the hop-by-hop set and the forwarding headers, and random ones.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "connection",
                "keep-alive",
                "proxy-connection",
                "proxy-authorization",
                "te",
                "trailer",
                "transfer-encoding",
                "upgrade",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host",
                "via",
                "x-request-id",
                "host",
                "content-length",
            ])
            .prop_map(str::to_owned),
            "[a-z0-9-]{1,20}",
        ]
    }

    /// Values: token lists naming headers, raw bytes a header may carry.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-zA-Z0-9 ,;=\\-]{0,40}".prop_map(String::into_bytes),
            prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')], 0..40),
        ]
    }

    fn map(entries: &[(String, Vec<u8>)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in entries {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_bytes(v),
            ) {
                h.append(n, v);
            }
        }
        h
    }

    fn ip() -> impl Strategy<Value = std::net::IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(std::net::IpAddr::from),
            any::<[u8; 16]>().prop_map(std::net::IpAddr::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn hygiene_never_panics_and_leaves_no_hop_by_hop(
            entries in prop::collection::vec((name(), value()), 0..16),
            addr in ip(),
            upgrade in any::<bool>(),
            trusted in any::<bool>(),
            h2 in any::<bool>(),
            tls in any::<bool>(),
        ) {
            let mut h = map(&entries);
            let host = h.get(header::HOST).cloned();
            let _ = is_upgrade(&h, super::websocket);
            strip_hop_by_hop(&mut h, upgrade);
            let peer = Peer { addr: SocketAddr::new(addr, 1), tls };
            forwarded(&h, peer, host, h2, trusted, None).apply(&mut h);
            for n in fixed_hop_by_hop() {
                let allowed = upgrade && *n == header::CONNECTION;
                prop_assert!(allowed || !h.contains_key(n), "{n} left in {h:?}");
            }
            if !upgrade {
                prop_assert!(!h.contains_key(header::UPGRADE));
            }
            // Exactly one X-Forwarded-For, ending with the peer.
            let xff: Vec<_> = h.get_all("x-forwarded-for").iter().collect();
            prop_assert_eq!(xff.len(), 1);
            let peer_ip = addr.to_canonical().to_string();
            prop_assert!(xff[0].as_bytes().ends_with(peer_ip.as_bytes()), "{:?}", xff[0]);
            if !trusted {
                prop_assert_eq!(xff[0].as_bytes(), peer_ip.as_bytes());
            }
            prop_assert!(h.contains_key("x-request-id"));
        }
    }
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    for ip in [
        "0.0.0.0",
        "10.0.0.9",
        "192.168.100.255",
        "1.22.3.44",
        "::1",
        "2001:db8::7",
        "::ffff:10.1.2.3",
    ] {
        let addr = SocketAddr::new(ip.parse().unwrap(), 1);
        let want = addr.ip().to_canonical().to_string();
        assert_eq!(ip_value(addr).to_str().unwrap(), want, "{ip}");
    }
}

#[test]
fn an_untrusted_forwarded_host_never_passes_even_without_a_host() {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
    forwarded(&h, peer("203.0.113.7"), None, false, false, None).apply(&mut h);
    assert!(h.get("x-forwarded-host").is_none(), "{h:?}");
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-host", HeaderValue::from_static("edge.example"));
    forwarded(&h, peer("10.0.0.9"), None, false, true, None).apply(&mut h);
    assert_eq!(h["x-forwarded-host"], "edge.example");
}

#[test]
fn traceparent_is_read_as_w3c_writes_it() {
    let ok = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(trace_of(ok), Some(0x4bf92f3577b34da6a3ce929d0e0e4736));
    // A later version may append fields; version ff never is valid.
    let later = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
    assert!(trace_of(later).is_some());
    for bad in [
        &b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
        b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        b"",
    ] {
        assert_eq!(trace_of(bad), None, "{}", String::from_utf8_lossy(bad));
    }
    // What serin writes when it starts a trace is itself valid, and its
    // trace id is the request id.
    let id = 0x0123456789abcdef0011223344556677;
    let v = traceparent_value(id, 42, 0);
    assert_eq!(trace_of(v.as_bytes()), Some(id));
    assert_eq!(hex_value(id), "0123456789abcdef0011223344556677");
    let t = parse_traceparent(ok).unwrap();
    assert_eq!((t.parent, t.flags), (0x00f067aa0ba902b7, 1));
}

#[test]
fn a_recorded_span_becomes_the_versions_parent() {
    let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = |traceparent: &str, sample: Option<f64>| {
        let mut h = HeaderMap::new();
        if !traceparent.is_empty() {
            h.insert("traceparent", HeaderValue::from_str(traceparent).unwrap());
        }
        h.insert("tracestate", HeaderValue::from_static("vendor=1"));
        let fwd = forwarded(&h, peer("203.0.113.7"), None, false, false, sample);
        fwd.apply(&mut h);
        let sent = parse_traceparent(h["traceparent"].as_bytes()).unwrap();
        (fwd, sent, h.contains_key("tracestate"))
    };
    // No [tracing]: the client's trace passes unchanged.
    let (fwd, sent, state) = traced(client, None);
    assert_eq!(
        (fwd.span, sent.parent, state),
        (None, 0x00f067aa0ba902b7, true)
    );
    // [tracing], the client's trace sampled: serin's span is the parent,
    // in the same trace, with its tracestate.
    let (fwd, sent, state) = traced(client, Some(0.0));
    let ids = fwd.span.expect("a span");
    assert_eq!(ids.parent, 0x00f067aa0ba902b7);
    assert_eq!(
        (sent.trace, sent.parent, sent.flags),
        (0x4bf92f3577b34da6a3ce929d0e0e4736, ids.span, 1)
    );
    assert!(state);
    // Not sampled by the client: no span, unchanged.
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let (fwd, sent, _) = traced(unsampled, Some(1.0));
    assert_eq!(
        (fwd.span, sent.parent, sent.flags),
        (None, 0x00f067aa0ba902b7, 0)
    );
    // A trace serin starts: sampled by share, flagged when recorded, and
    // the client's tracestate dropped.
    let (fwd, sent, state) = traced("", Some(1.0));
    let ids = fwd.span.expect("a span");
    assert_eq!(
        (ids.parent, sent.parent, sent.flags, state),
        (0, ids.span, 1, false)
    );
    let (fwd, sent, _) = traced("", Some(0.0));
    assert_eq!((fwd.span, sent.flags), (None, 0));
}
