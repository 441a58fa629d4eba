//! Request framing that could be read two ways is refused before anything
//! is forwarded (request smuggling, RFC 9112 §6 and §11.2; RFC 9113 §8.2.2).
//!
//! hyper's HTTP/1.1 parser already refuses, with 400 and a closed
//! connection: `Content-Length` values that differ or do not parse, a
//! `Transfer-Encoding` whose last coding is not `chunked`, any
//! `Transfer-Encoding` on HTTP/1.0, obs-fold and other malformed header
//! lines, and (while the body is read) invalid chunk sizes. When both
//! `Content-Length` and `Transfer-Encoding: chunked` are present it frames
//! the body by `Transfer-Encoding` alone, drops `Content-Length`, and
//! closes the connection after the response (RFC 9112 §6.1), so bytes after
//! the chunked body are never read as a request. h2 refuses
//! connection-specific headers with a stream reset.
//!
//! What is left for serin: a `Transfer-Encoding` that hyper accepts but
//! that is not exactly one `chunked` (`gzip, chunked`, `chunked, chunked`,
//! or two header lines): serin strips `Transfer-Encoding` when it re-frames
//! the body upstream, so any other coding would reach the version undeclared.
//! The other checks repeat hyper's, so a future parser change cannot
//! silently let such a request through.

use http::{header, HeaderMap, HeaderName, Request, Version};

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Why a request was refused; the client gets 400 with this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// `Transfer-Encoding` other than exactly one `chunked`.
    #[error("unsupported transfer-encoding: only a single `chunked` is accepted")]
    TransferEncoding,
    /// `Content-Length` and `Transfer-Encoding` together.
    #[error("content-length and transfer-encoding together")]
    BothLengths,
    /// `Content-Length` that is not one plain number.
    #[error("invalid content-length")]
    ContentLength,
    /// An HTTP/2 request with a connection-specific header.
    #[error("connection-specific header in an HTTP/2 request")]
    ConnectionSpecific,
}

/// Checks the request's framing headers.
///
/// # Errors
/// The first problem found.
pub(crate) fn check<B>(req: &Request<B>) -> Result<(), Refused> {
    let h = req.headers();
    if req.version() == Version::HTTP_2 {
        return h2(h);
    }
    let te = h.contains_key(header::TRANSFER_ENCODING);
    if te && h.contains_key(header::CONTENT_LENGTH) {
        return Err(Refused::BothLengths);
    }
    if te && !single_chunked(h) {
        return Err(Refused::TransferEncoding);
    }
    content_length(h)
}

fn h2(h: &HeaderMap) -> Result<(), Refused> {
    let specific = [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ]
    .into_iter()
    .any(|n| h.contains_key(n));
    let te_other = h.get_all(header::TE).iter().any(|v| v != "trailers");
    if specific || te_other {
        return Err(Refused::ConnectionSpecific);
    }
    content_length(h)
}

/// Exactly one `Transfer-Encoding` line whose value is `chunked`.
fn single_chunked(h: &HeaderMap) -> bool {
    let mut values = h.get_all(header::TRANSFER_ENCODING).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v
            .to_str()
            .is_ok_and(|s| s.trim().eq_ignore_ascii_case("chunked")),
        _ => false,
    }
}

/// At most one distinct `Content-Length`, all digits.
fn content_length(h: &HeaderMap) -> Result<(), Refused> {
    let mut seen: Option<&[u8]> = None;
    for v in h.get_all(header::CONTENT_LENGTH) {
        let b = v.as_bytes();
        if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
            return Err(Refused::ContentLength);
        }
        match seen {
            Some(prev) if prev != b => return Err(Refused::ContentLength),
            _ => seen = Some(b),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().version(version).uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn plain_and_chunked_pass() {
        let h1 = Version::HTTP_11;
        assert_eq!(check(&req(h1, &[])), Ok(()));
        assert_eq!(check(&req(h1, &[("content-length", "5")])), Ok(()));
        assert_eq!(
            check(&req(h1, &[("transfer-encoding", "Chunked ")])),
            Ok(())
        );
        let h2 = Version::HTTP_2;
        assert_eq!(check(&req(h2, &[("te", "trailers")])), Ok(()));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let h1 = Version::HTTP_11;
        for (headers, why) in [
            (
                &[("transfer-encoding", "gzip, chunked")][..],
                Refused::TransferEncoding,
            ),
            (
                &[("transfer-encoding", "chunked, chunked")][..],
                Refused::TransferEncoding,
            ),
            (
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ][..],
                Refused::TransferEncoding,
            ),
            (
                &[("transfer-encoding", "identity")][..],
                Refused::TransferEncoding,
            ),
            (
                &[("transfer-encoding", "chunked"), ("content-length", "3")][..],
                Refused::BothLengths,
            ),
            (
                &[("content-length", "3"), ("content-length", "4")][..],
                Refused::ContentLength,
            ),
            (&[("content-length", "+3")][..], Refused::ContentLength),
            (&[("content-length", "3, 3")][..], Refused::ContentLength),
        ] {
            assert_eq!(check(&req(h1, headers)), Err(why), "{headers:?}");
        }
    }

    #[test]
    fn h2_connection_specific_headers_are_refused() {
        for (k, v) in [
            ("connection", "close"),
            ("keep-alive", "5"),
            ("proxy-connection", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("te", "gzip"),
        ] {
            assert_eq!(
                check(&req(Version::HTTP_2, &[(k, v)])),
                Err(Refused::ConnectionSpecific),
                "{k}"
            );
        }
    }
}
