//! The host a request names, checked before it is routed (RFC 9112 §3.2,
//! RFC 9110 §4.2.4 and §7.2, RFC 9113 §8.3.1).
//!
//! - HTTP/1.1 needs exactly one `Host`; none or two is a 400. HTTP/1.0 may
//!   omit it (it predates `Host`), but may not send two.
//! - An absolute-form target (`GET http://a.example/x HTTP/1.1`) wins over
//!   `Host`, which is rewritten to match, so the route, `X-Forwarded-Host`
//!   and the version all see one host.
//! - HTTP/2: `:authority` is the host; a `Host` that names another is a 400.
//! - A host with userinfo (`user@host`), an empty one or one that is not a
//!   `host[:port]` is a 400: serin routes by host, and a host two parsers
//!   could read two ways (`a@b` is `b` to one, `a@b` to another) must not
//!   reach a version. A host is a bracketed IPv6 literal, or a name or IPv4
//!   address of letters, digits, `-`, `.` and `_` (what DNS and internal
//!   names use; RFC 3986's other reg-name characters, `,` `;` `!` `%`…,
//!   name no real host and are refused); a port is 1–5 digits up to 65535.
//!   Checked in place, without a copy of the value.

use http::{header, HeaderValue, Request, Version};

/// Why a request's host was refused; the client gets 400 with this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadHost {
    /// An HTTP/1.1 request (or an HTTP/2 one without `:authority`) with no `Host`.
    #[error("missing Host header")]
    Missing,
    /// Two or more `Host` lines.
    #[error("more than one Host header")]
    Duplicate,
    /// Not `host[:port]`: empty, a bad port, characters a host cannot hold.
    #[error("invalid Host header")]
    Invalid,
    /// `user@host`: userinfo is not allowed in a request's host.
    #[error("userinfo is not allowed in the host")]
    Userinfo,
    /// HTTP/2 `Host` naming another host than `:authority`.
    #[error("Host header differs from :authority")]
    Mismatch,
}

/// Checks the host of `req` and makes `Host` agree with an absolute-form
/// target.
///
/// # Errors
/// The first problem found; nothing is changed then.
pub(crate) fn check<B>(req: &mut Request<B>) -> Result<(), BadHost> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadHost::Duplicate);
    }
    if let Some(authority) = req.uri().authority() {
        valid(authority.as_str().as_bytes())?;
        if req.version() == Version::HTTP_2 {
            let same = host.is_none_or(|h| {
                h.as_bytes()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes())
            });
            return if same { Ok(()) } else { Err(BadHost::Mismatch) };
        }
        // Absolute form: the target wins (RFC 9112 §3.2.2).
        let value = HeaderValue::from_str(authority.as_str()).map_err(|_| BadHost::Invalid)?;
        req.headers_mut().insert(header::HOST, value);
        return Ok(());
    }
    match host {
        Some(h) => valid(h.as_bytes()),
        None if req.version() == Version::HTTP_10 => Ok(()),
        None => Err(BadHost::Missing),
    }
}

/// A host as a request may carry it (see the module doc).
fn valid(s: &[u8]) -> Result<(), BadHost> {
    if s.contains(&b'@') {
        return Err(BadHost::Userinfo);
    }
    let port = match s.strip_prefix(b"[") {
        Some(rest) => {
            let end = rest
                .iter()
                .position(|&b| b == b']')
                .ok_or(BadHost::Invalid)?;
            let literal = std::str::from_utf8(&rest[..end]).map_err(|_| BadHost::Invalid)?;
            literal
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| BadHost::Invalid)?;
            match &rest[end + 1..] {
                [] => None,
                [b':', port @ ..] => Some(port),
                _ => return Err(BadHost::Invalid),
            }
        }
        None => {
            let (host, port) = match s.iter().rposition(|&b| b == b':') {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            };
            let name = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
            if host.is_empty() || !host.iter().all(name) {
                return Err(BadHost::Invalid);
            }
            port
        }
    };
    match port {
        None => Ok(()),
        Some(p) if (1..=5).contains(&p.len()) && p.iter().all(u8::is_ascii_digit) => {
            let n = p.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            if n <= 65_535 {
                Ok(())
            } else {
                Err(BadHost::Invalid)
            }
        }
        Some(_) => Err(BadHost::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(uri);
        for h in hosts {
            b = b.header("host", *h);
        }
        b.body(()).unwrap()
    }

    fn checked(version: Version, uri: &str, hosts: &[&str]) -> Result<Option<String>, BadHost> {
        let mut r = req(version, uri, hosts);
        check(&mut r)?;
        Ok(r.headers()
            .get("host")
            .map(|h| h.to_str().unwrap().to_owned()))
    }

    #[test]
    fn one_good_host_passes() {
        let h11 = Version::HTTP_11;
        for h in [
            "a.example",
            "a.example:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
            "A.Example.",
        ] {
            assert_eq!(checked(h11, "/", &[h]), Ok(Some(h.to_owned())), "{h}");
        }
        // HTTP/1.0 predates Host.
        assert_eq!(checked(Version::HTTP_10, "/", &[]), Ok(None));
    }

    #[test]
    fn missing_duplicate_userinfo_and_malformed_hosts_are_refused() {
        let h11 = Version::HTTP_11;
        assert_eq!(checked(h11, "/", &[]), Err(BadHost::Missing));
        assert_eq!(checked(h11, "/", &["a", "a"]), Err(BadHost::Duplicate));
        assert_eq!(checked(h11, "/", &["a", "b"]), Err(BadHost::Duplicate));
        assert_eq!(
            checked(Version::HTTP_10, "/", &["a", "b"]),
            Err(BadHost::Duplicate)
        );
        assert_eq!(checked(h11, "/", &["a@b"]), Err(BadHost::Userinfo));
        assert_eq!(checked(h11, "/", &["user:pw@b:80"]), Err(BadHost::Userinfo));
        for bad in [
            "",
            "a b",
            "a:x",
            "a:",
            "a:99999",
            "a/b",
            ":80",
            "a:+80",
            "a,b",
            "[evil.example]",
            "[zz]",
            "[::1]junk:80",
            "[::1",
            "a%2eb",
        ] {
            assert_eq!(checked(h11, "/", &[bad]), Err(BadHost::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn an_absolute_target_wins_over_host() {
        let h11 = Version::HTTP_11;
        assert_eq!(
            checked(h11, "http://b.example:81/x", &["a.example"]),
            Ok(Some("b.example:81".to_owned()))
        );
        assert_eq!(
            checked(h11, "http://b.example/x", &[]),
            Ok(Some("b.example".to_owned()))
        );
        assert_eq!(
            checked(h11, "http://u@b.example/x", &["b.example"]),
            Err(BadHost::Userinfo)
        );
    }

    #[test]
    fn http2_authority_and_host_must_agree() {
        let h2 = Version::HTTP_2;
        assert_eq!(checked(h2, "https://a.example/", &[]), Ok(None));
        assert_eq!(
            checked(h2, "https://a.example/", &["A.example"]),
            Ok(Some("A.example".to_owned()))
        );
        assert_eq!(
            checked(h2, "https://a.example/", &["b.example"]),
            Err(BadHost::Mismatch)
        );
        assert_eq!(
            checked(h2, "/", &["a.example"]),
            Ok(Some("a.example".to_owned()))
        );
        assert_eq!(checked(h2, "/", &[]), Err(BadHost::Missing));
    }
}
