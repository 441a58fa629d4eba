//! Header hygiene between client and version: hop-by-hop headers out,
//! `X-Forwarded-*`, `Via` and `x-request-id` in.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C Trace Context.
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1),
/// besides those named by `Connection`. `HTTP2-Settings` belongs to an h2c
/// upgrade (RFC 7540 §3.2.1), which serin never passes on.
fn fixed_hop_by_hop() -> [&'static HeaderName; 8] {
    [
        &header::CONNECTION,
        &HTTP2_SETTINGS,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::PROXY_AUTHORIZATION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
    ]
}

/// Whether the request asks to switch protocols (`Connection: upgrade` and
/// an `Upgrade` header) to protocols `allowed` accepts, every one of them,
/// e.g. a WebSocket handshake. A request asking for any other (`h2c`
/// above all) is forwarded as a plain request, its upgrade stripped.
pub(crate) fn is_upgrade(headers: &HeaderMap, allowed: impl Fn(&str) -> bool) -> bool {
    let mut protocols = headers
        .get_all(header::UPGRADE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|p| std::str::from_utf8(p).map(str::trim))
        .filter(|p| !matches!(p, Ok("")))
        .peekable();
    protocols.peek().is_some()
        && protocols.all(|p| p.is_ok_and(&allowed))
        && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers; keeps `Connection: upgrade` + `Upgrade` when
/// `upgrade` is set, so a WebSocket handshake reaches the version.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most messages carry no hop-by-hop header at all: one pass over the
    // names spares ten hashed lookups (callgrind: 3% of a request).
    let hop = |n: &HeaderName| n == header::UPGRADE || fixed_hop_by_hop().contains(&n);
    if !upgrade && !headers.keys().any(hop) {
        return;
    }
    // Headers named in `Connection` are hop-by-hop too. Collected first
    // because the map cannot be changed while borrowed; this allocates only
    // when a client names headers there, which is rare.
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .filter(|n| !(upgrade && n == header::UPGRADE))
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for h in fixed_hop_by_hop() {
        headers.remove(h);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// What the proxy knows about the client's connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    pub(crate) tls: bool,
}

/// The headers serin sets on a request going to a version, computed from
/// the client's: written by the upstream encoder in place of the client's
/// own (no insert into the client's `HeaderMap`, which would rehash and
/// grow it per request).
#[derive(Debug, Clone)]
pub(crate) struct Forwarding {
    /// `X-Forwarded-For`: the peer, or the trusted peer's list and the peer.
    pub(crate) xff: HeaderValue,
    /// `X-Forwarded-Proto`; `None`: the trusted peer's is kept.
    pub(crate) proto: Option<HeaderValue>,
    /// `X-Forwarded-Host`; `None`: kept (a trusted peer's) or none known.
    pub(crate) forwarded_host: Option<HeaderValue>,
    /// `Via`, the client's list with serin appended.
    pub(crate) via: HeaderValue,
    /// `x-request-id` when the client sent none: the trace id, so a
    /// request's id and its trace are one to grep for.
    pub(crate) request_id: Option<HeaderValue>,
    /// The W3C trace the request belongs to: the client's `traceparent`'s
    /// when valid, else a new one. Bytes, not a `u128`: its 16-byte
    /// alignment would pad every request's future.
    pub(crate) trace_id: [u8; 16],
    /// serin's span of this request when it records one (`[tracing]`,
    /// sampled): its id, and the client's span it is a child of (0 in a
    /// trace serin started).
    pub(crate) span: Option<SpanIds>,
    /// `traceparent` in place of the client's: when serin starts the trace
    /// (the client sent none, or one that is not valid), or records a span
    /// in the client's trace (its span is the version's parent).
    pub(crate) traceparent: Option<HeaderValue>,
    /// serin started the trace: the client's `tracestate` is dropped.
    pub(crate) restarted: bool,
    /// `Host` when the client's request carried it only as `:authority`.
    pub(crate) host: Option<HeaderValue>,
    /// The peer is a trusted proxy: an `X-Forwarded-Host` it sent may stay.
    pub(crate) trusted: bool,
}

/// serin's span of a request, as W3C ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanIds {
    pub(crate) span: u64,
    /// The client's span; 0 when serin started the trace.
    pub(crate) parent: u64,
}

/// The forwarding headers for a request with `headers` from `peer`.
///
/// From an untrusted peer, `X-Forwarded-For` is replaced by the peer
/// address and `X-Forwarded-Proto`/`-Host` are serin's own: a client could
/// write anything there. From a peer in `trusted_proxies` (`trusted`), the
/// `X-Forwarded-For` list it sent is kept with the peer appended, and its
/// `X-Forwarded-Proto`/`-Host` are kept when present (it terminated the
/// client's connection and knows them). `host`: the request's host.
/// `sample`: with `[tracing]`, the share of new traces serin records a
/// span of (a client's trace: when its `traceparent` says sampled).
pub(crate) fn forwarded(
    headers: &HeaderMap,
    peer: Peer,
    host: Option<HeaderValue>,
    h2: bool,
    trusted: bool,
    sample: Option<f64>,
) -> Forwarding {
    let ip = ip_value(peer.addr);
    let xff = if trusted { appended(headers, &ip) } else { ip };
    let proto = (!(trusted && headers.contains_key(&X_FORWARDED_PROTO)))
        .then(|| HeaderValue::from_static(if peer.tls { "https" } else { "http" }));
    let forwarded_host = host
        .clone()
        .filter(|_| !(trusted && headers.contains_key(&X_FORWARDED_HOST)));
    let via = if h2 { "2 serin" } else { "1.1 serin" };
    let via = match headers.get(header::VIA).map(|v| v.as_bytes()) {
        Some(prev) => {
            let mut v = Vec::with_capacity(prev.len() + 12);
            v.extend_from_slice(prev);
            v.extend_from_slice(b", ");
            v.extend_from_slice(via.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| HeaderValue::from_static(via))
        }
        None => HeaderValue::from_static(via),
    };
    let client = headers
        .get(&TRACEPARENT)
        .and_then(|v| parse_traceparent(v.as_bytes()));
    let (trace_id, span, traceparent) = match client {
        // The client's trace: passed on as it came, unless serin records a
        // span in it, which becomes the version's parent.
        Some(t) => match sample.filter(|_| t.flags & SAMPLED != 0) {
            Some(_) => {
                let ids = SpanIds {
                    span: fastrand::u64(1..),
                    parent: t.parent,
                };
                let value = traceparent_value(t.trace, ids.span, t.flags);
                (t.trace, Some(ids), Some(value))
            }
            None => (t.trace, None, None),
        },
        None => {
            let id = new_id();
            let sampled = sample.is_some_and(|share| fastrand::f64() < share);
            let ids = sampled.then(|| SpanIds {
                span: fastrand::u64(1..),
                parent: 0,
            });
            let (parent, flags) = match ids {
                Some(ids) => (ids.span, SAMPLED),
                None => (fastrand::u64(1..), 0),
            };
            (id, ids, Some(traceparent_value(id, parent, flags)))
        }
    };
    let restarted = client.is_none();
    // One id per request: the trace's when serin starts the trace (so the
    // two are one to grep for), a fresh one inside a client's trace.
    let request_id = (!headers.contains_key(&X_REQUEST_ID))
        .then(|| hex_value(if restarted { trace_id } else { new_id() }));
    let trace_id = trace_id.to_be_bytes();
    let host = host.filter(|_| !headers.contains_key(header::HOST));
    Forwarding {
        xff,
        proto,
        forwarded_host,
        via,
        request_id,
        trace_id,
        span,
        traceparent,
        restarted,
        host,
        trusted,
    }
}

// === impl Forwarding ===

impl Forwarding {
    /// Whether the client's header `name` is replaced by one of these (the
    /// encoder then skips the client's).
    #[inline]
    pub(crate) fn replaces(&self, name: &HeaderName) -> bool {
        *name == X_FORWARDED_FOR
            || *name == header::VIA
            || (self.proto.is_some() && *name == X_FORWARDED_PROTO)
            || ((self.forwarded_host.is_some() || !self.trusted) && *name == X_FORWARDED_HOST)
            || (self.traceparent.is_some() && *name == TRACEPARENT)
            // A trace serin starts drops the client's `tracestate`, which
            // belonged to a `traceparent` that is gone (W3C).
            || (self.restarted && *name == TRACESTATE)
    }

    /// Every header this sets, for the encoder.
    pub(crate) fn each(&self, mut f: impl FnMut(&HeaderName, &HeaderValue)) {
        f(&X_FORWARDED_FOR, &self.xff);
        if let Some(v) = &self.proto {
            f(&X_FORWARDED_PROTO, v);
        }
        if let Some(v) = &self.forwarded_host {
            f(&X_FORWARDED_HOST, v);
        }
        f(&header::VIA, &self.via);
        if let Some(v) = &self.request_id {
            f(&X_REQUEST_ID, v);
        }
        if let Some(v) = &self.traceparent {
            f(&TRACEPARENT, v);
        }
        if let Some(v) = &self.host {
            f(&header::HOST, v);
        }
    }

    /// Writes these into `headers` as the encoder would send them: the
    /// HTTP/2 leg to a version (whose headers hyper encodes), tests, fuzzing.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let mut set = Vec::new();
        self.each(|n, v| set.push((n.clone(), v.clone())));
        headers.retain_replaced(self);
        for (n, v) in set {
            headers.insert(n, v);
        }
    }
}

trait RetainReplaced {
    fn retain_replaced(&mut self, f: &Forwarding);
}

impl RetainReplaced for HeaderMap {
    fn retain_replaced(&mut self, f: &Forwarding) {
        let gone: Vec<HeaderName> = self.keys().filter(|n| f.replaces(n)).cloned().collect();
        for n in gone {
            self.remove(n);
        }
    }
}

/// Every `X-Forwarded-For` line of `headers` as one list, then `ip`.
fn appended(headers: &HeaderMap, ip: &HeaderValue) -> HeaderValue {
    let mut list = Vec::new();
    for v in headers.get_all(&X_FORWARDED_FOR) {
        let v = v.as_bytes().trim_ascii();
        if !v.is_empty() {
            list.extend_from_slice(v);
            list.extend_from_slice(b", ");
        }
    }
    if list.is_empty() {
        return ip.clone();
    }
    list.extend_from_slice(ip.as_bytes());
    // Joined from valid values with ", ": still valid; the peer alone if not.
    HeaderValue::from_bytes(&list).unwrap_or_else(|_| ip.clone())
}

fn ip_value(addr: SocketAddr) -> HeaderValue {
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    let ip = addr.ip().to_canonical();
    let mut buf = [0u8; 48];
    let n = match ip {
        // By hand: `Display` through `fmt::write` costs ~1000 instructions
        // per request (callgrind), this a few dozen.
        std::net::IpAddr::V4(v4) => {
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n] = b'0' + octet % 10;
                n += 1;
            }
            n
        }
        std::net::IpAddr::V6(_) => {
            use std::io::Write;
            let mut w = &mut buf[..];
            // An IPv6 address always fits in 48 bytes.
            let _ = write!(w, "{ip}");
            48 - w.len()
        }
    };
    HeaderValue::from_bytes(&buf[..n]).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A random 128-bit id as 32 hex digits.
/// A random id for a new trace: 128 bits, never 0 (W3C: all zeros is
/// invalid).
fn new_id() -> u128 {
    fastrand::u128(1..)
}

/// 32 lower-case hex digits.
fn hex_value(id: u128) -> HeaderValue {
    let mut buf = [0u8; 32];
    hex_into(&mut buf, id);
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

fn hex_into(buf: &mut [u8], n: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let len = buf.len();
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((n >> ((len - 1 - i) * 4)) & 0xf) as usize];
    }
}

/// The `sampled` bit of a `traceparent`'s flags.
const SAMPLED: u8 = 0x01;

/// `00-TRACE-PARENT-FLAGS`. A trace serin starts is flagged sampled only
/// when serin records a span of it (`[tracing]`); otherwise a version's
/// own sampler decides.
fn traceparent_value(trace: u128, parent: u64, flags: u8) -> HeaderValue {
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex_into(&mut buf[3..35], trace);
    hex_into(&mut buf[36..52], u128::from(parent));
    hex_into(&mut buf[53..55], u128::from(flags));
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("00"))
}

/// A valid `traceparent`'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceParent {
    pub(crate) trace: u128,
    pub(crate) parent: u64,
    pub(crate) flags: u8,
}

/// The trace id of a valid `traceparent`.
pub(crate) fn trace_of(v: &[u8]) -> Option<u128> {
    parse_traceparent(v).map(|t| t.trace)
}

/// A valid `traceparent` (W3C Trace Context, level 1):
/// `VERSION-TRACE-PARENT-FLAGS`, lower-case hex, neither id all zeros,
/// version `ff` invalid, version `00` exactly 55 characters (a later
/// version may append fields after a `-`).
pub(crate) fn parse_traceparent(v: &[u8]) -> Option<TraceParent> {
    let hex = |b: &[u8]| -> Option<u128> {
        b.iter().try_fold(0u128, |acc, c| {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            Some(acc << 4 | u128::from(d))
        })
    };
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = hex(&v[0..2])?;
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let trace = hex(&v[3..35])?;
    let parent = hex(&v[36..52])? as u64;
    let flags = hex(&v[53..55])? as u8;
    (trace != 0 && parent != 0).then_some(TraceParent {
        trace,
        parent,
        flags,
    })
}

/// A trace id as the access log writes it.
pub(crate) fn trace_hex(id: u128) -> String {
    format!("{id:032x}")
}

#[cfg(test)]
mod tests;
