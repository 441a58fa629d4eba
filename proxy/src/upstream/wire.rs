//! HTTP/1.1 on the wire to a version: the request head written straight
//! into one buffer, the response head parsed with `httparse` into the
//! `http` types the client side needs, and how each message's body is
//! framed (RFC 9112 §6).
//!
//! We write every request this side sends, so the encoder has one shape:
//! origin-form target, `HTTP/1.1`, the headers `prepare` left (hop-by-hop
//! ones already gone), then exactly one framing header. The response parser
//! is as strict as hyper's client where it matters for framing: two
//! different `Content-Length`s, a `Transfer-Encoding` whose last coding is
//! not `chunked`, or both framings at once are refused (a `connect` failure
//! of the attempt), never guessed at.

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::headers::Forwarding;

/// Most response header lines accepted.
const MAX_HEADERS: usize = 128;

/// Largest response head accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// How a request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqFraming {
    /// No body and no framing header (a GET).
    None,
    /// `Content-Length: n` (the client's, or the kept body's length).
    Length(u64),
    /// `Transfer-Encoding: chunked`: the length is not known up front.
    Chunked,
}

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespFraming {
    /// No body: `HEAD`, 1xx, 204, 304.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the version closes the connection (no length given).
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: RespFraming,
    /// The connection may carry another request after this response.
    pub(crate) keep_alive: bool,
}

/// A response head that cannot be read one way only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("malformed response head: {0}")]
    Parse(&'static str),
    #[error("response head over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("ambiguous response framing: {0}")]
    Framing(&'static str),
}

/// What the encoder adds to the client's headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extra<'a> {
    /// The forwarding headers, written in place of the client's; `None`
    /// for serin's own requests (health probes).
    pub(crate) fwd: Option<&'a Forwarding>,
    /// `Host` for a request that named none.
    pub(crate) host: Option<&'a HeaderValue>,
}

/// Writes the request head into `dst`: request line, `headers` (less those
/// `extra` replaces), `extra`'s, and the one framing header `framing` asks
/// for (any framing header in `headers` is skipped: this side decides).
pub(crate) fn encode_head(
    dst: &mut BytesMut,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    extra: &Extra<'_>,
    framing: ReqFraming,
) {
    let size = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>();
    // The forwarding headers: at most ~250 bytes past a client's `Via` and
    // `X-Forwarded-For`.
    let fwd = extra.fwd.map_or(0, |f| f.xff.len() + f.via.len() + 256);
    dst.reserve(method.as_str().len() + target.len() + size + fwd);
    dst.put_slice(method.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(target.as_bytes());
    dst.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        // Framing is this side's; an expectation was the client's with
        // serin, which answered it (hyper sends `100 Continue`).
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || extra.fwd.is_some_and(|f| f.replaces(name))
        {
            continue;
        }
        line(dst, name, value);
    }
    if let Some(f) = extra.fwd {
        f.each(|n, v| line(dst, n, v));
    }
    if let Some(host) = extra.host {
        line(dst, &header::HOST, host);
    }
    match framing {
        ReqFraming::None => {}
        ReqFraming::Length(n) => {
            dst.put_slice(b"content-length: ");
            dst.put_slice(itoa_u64(n).as_bytes());
            dst.put_slice(b"\r\n");
        }
        ReqFraming::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    dst.put_slice(b"\r\n");
}

/// One `name: value` header line.
pub(crate) fn line(dst: &mut BytesMut, name: &HeaderName, value: &HeaderValue) {
    dst.put_slice(name.as_str().as_bytes());
    dst.put_slice(b": ");
    dst.put_slice(value.as_bytes());
    dst.put_slice(b"\r\n");
}

/// Decimal digits of `n` without an allocation.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_u64(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start }
}

/// Parses a response head at the start of `buf`; on success the head is
/// split off `buf` (header values share its bytes, no copy) and what
/// follows it stays. `Ok(None)`: the head is not complete yet.
///
/// # Errors
/// A malformed head, one over [`MAX_HEAD`], or framing that could be read
/// two ways.
pub(crate) fn parse_head(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, WireError> {
    // Uninitialised slots: no 4 KiB of empty headers written per answer.
    let mut lines =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut lines) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(WireError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::TooLarge),
        Err(e) => return Err(WireError::Parse(parse_error(e))),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(WireError::Parse("status"))?;
    let version = match resp.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let n = resp.headers.len();
    // The head is frozen once and parsed again in place, so every value is
    // a slice of it (no copy, no allocation per header); a head is a few
    // hundred bytes, which httparse reads in well under a microsecond.
    let head = buf.split_to(len).freeze();
    let mut lines =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut again = httparse::Response::new(&mut []);
    config
        .parse_response_with_uninit_headers(&mut again, &head, &mut lines)
        .map_err(|e| WireError::Parse(parse_error(e)))?;
    let mut headers = HeaderMap::with_capacity(n);
    for h in again.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| WireError::Parse("header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value))
            .map_err(|_| WireError::Parse("header value"))?;
        headers.append(name, value);
    }
    let framing = framing(method, status, &headers)?;
    // An HTTP/1.0 message with Transfer-Encoding: close after it (RFC 9112 §6.1).
    let te_on_10 = version == Version::HTTP_10 && headers.contains_key(header::TRANSFER_ENCODING);
    let keep_alive = keep_alive(version, &headers) && framing != RespFraming::Close && !te_on_10;
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "line ending",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::Version => "version",
        _ => "head",
    }
}

/// How the body of a response to `method` with `status` is framed
/// (RFC 9112 §6.3).
fn framing(method: &Method, status: StatusCode, h: &HeaderMap) -> Result<RespFraming, WireError> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(RespFraming::None);
    }
    let te = h.contains_key(header::TRANSFER_ENCODING);
    let cl = content_length(h)?;
    match (te, cl) {
        (true, Some(_)) => Err(WireError::Framing("content-length and transfer-encoding")),
        (true, None) if last_coding_is_chunked(h) => Ok(RespFraming::Chunked),
        // Another last coding: the body runs to the close (§6.3 rule 4).
        (true, None) => Ok(RespFraming::Close),
        (false, Some(n)) => Ok(RespFraming::Length(n)),
        (false, None) => Ok(RespFraming::Close),
    }
}

/// One `Content-Length` value (repeats must agree), all digits.
fn content_length(h: &HeaderMap) -> Result<Option<u64>, WireError> {
    let mut seen = None;
    for v in h.get_all(header::CONTENT_LENGTH) {
        let b = v.as_bytes();
        if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
            return Err(WireError::Framing("invalid content-length"));
        }
        let n: u64 = std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(WireError::Framing("invalid content-length"))?;
        match seen {
            Some(prev) if prev != n => return Err(WireError::Framing("two content-lengths")),
            _ => seen = Some(n),
        }
    }
    Ok(seen)
}

fn last_coding_is_chunked(h: &HeaderMap) -> bool {
    h.get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
}

/// Whether the version keeps the connection open after this response.
fn keep_alive(version: Version, h: &HeaderMap) -> bool {
    let has = |token: &str| {
        h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if version == Version::HTTP_11 {
        !has("close")
    } else {
        has("keep-alive")
    }
}

/// The request's framing: the client's `Content-Length` when it sent one
/// (hyper checked it against the body), else the body's exact size when
/// known, else chunked. A POST, PUT or PATCH without a body still says
/// `content-length: 0`, as hyper's client does.
pub(crate) fn request_framing(
    method: &Method,
    headers: &HeaderMap,
    exact: Option<u64>,
    ended: bool,
) -> ReqFraming {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let payload = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    match (declared, exact) {
        (Some(n), _) => ReqFraming::Length(n),
        (None, Some(0)) | (None, None) if ended => {
            if payload {
                ReqFraming::Length(0)
            } else {
                ReqFraming::None
            }
        }
        (None, Some(n)) => ReqFraming::Length(n),
        (None, None) => ReqFraming::Chunked,
    }
}

/// The chunk-size line for `len` bytes of data.
pub(crate) fn chunk_line(len: usize, dst: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&buf[i..]);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
