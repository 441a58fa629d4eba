//! Which route a request belongs to: its host (Host header, or the
//! `:authority` of an HTTP/2 request) and path against the compiled index.

use http::Request;
use serin_control::Snapshot;

/// The host of a request without its port and without one trailing dot
/// (`a.example.` is `a.example`, as DNS reads it); empty when there is none.
pub(crate) fn host_of<B>(req: &Request<B>) -> &str {
    let raw = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let host = strip_port(raw);
    host.strip_suffix('.').unwrap_or(host)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: `[::1]:8080`.
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The index of the matching route in `snap.routes`.
#[inline]
pub(crate) fn find<B>(snap: &Snapshot, req: &Request<B>) -> Option<usize> {
    snap.index.find(host_of(req), req.uri().path())
}

#[cfg(test)]
mod tests {
    use super::{host_of, strip_port};

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.example:8080"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn a_trailing_dot_is_the_same_host() {
        let req = |h: &str| http::Request::get("/").header("host", h).body(()).unwrap();
        assert_eq!(host_of(&req("a.example.:8080")), "a.example");
        assert_eq!(host_of(&req("a.example.")), "a.example");
        assert_eq!(host_of(&req("a.example")), "a.example");
    }
}
