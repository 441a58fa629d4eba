//! Entry points for the fuzz targets in `fuzz/`; compiled only with
//! `--cfg fuzzing` (what `fuzz/run.sh` sets), so the data plane's modules
//! stay private in every normal build.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::headers::{self, Peer};

/// Reads `data` as header lines (`name: value`, one per `\n`; lines that
/// are not a valid header are skipped), then runs the framing checks and
/// the header hygiene on them.
///
/// # Panics
/// When a hop-by-hop header survives, or `X-Forwarded-For` does not end
/// with the peer: the properties the fuzzer checks.
pub fn headers(data: &[u8]) {
    let (flags, lines) = data.split_first().map_or((0, data), |(f, rest)| (*f, rest));
    let mut map = HeaderMap::new();
    for line in lines.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let version = if flags & 1 == 0 {
        http::Version::HTTP_11
    } else {
        http::Version::HTTP_2
    };
    let mut req = http::Request::new(());
    *req.version_mut() = version;
    *req.headers_mut() = map.clone();
    let _ = crate::smuggling::check(&req);

    let upgrade =
        headers::is_upgrade(&map, |p| p.eq_ignore_ascii_case("websocket")) && flags & 2 != 0;
    let host = map.get(http::header::HOST).cloned();
    headers::strip_hop_by_hop(&mut map, upgrade);
    let ip = IpAddr::from([10, 0, 0, flags]);
    let peer = Peer {
        addr: SocketAddr::new(ip, 1),
        tls: flags & 4 != 0,
    };
    headers::forwarded(
        &map,
        peer,
        host,
        version == http::Version::HTTP_2,
        flags & 8 != 0,
        (flags & 16 != 0).then_some(0.5),
    )
    .apply(&mut map);
    for gone in [
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        assert!(!map.contains_key(gone), "{gone} survived");
    }
    let xff = map.get("x-forwarded-for").expect("x-forwarded-for set");
    assert!(xff.as_bytes().ends_with(ip.to_string().as_bytes()));
}
