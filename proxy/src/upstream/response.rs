//! A version's response body, read from its connection as the client
//! takes it: by `Content-Length`, chunked (trailers passed on), or until
//! the version closes. When the body ends cleanly on a connection that may
//! carry another request, the connection goes back to its pool right there,
//! in the request's own task: nothing is spawned to wait for it.
//!
//! A body dropped before its end (the client left) closes the connection:
//! what is left of the response could not be told from the next one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use super::conn::Conn;
use super::wire::RespFraming;
use super::{Key, Pool};

/// Where a reusable connection goes when its response ends.
pub(crate) type Home = Option<(Arc<Pool>, Key)>;

/// Longest chunk-size line (with extensions) or trailer section accepted.
const MAX_LINE: usize = 4096;

/// The body of a version's response.
#[derive(Debug)]
pub(crate) struct RespBody {
    state: State,
    /// Hashes the body for `[routes.mirror]`'s comparison; `None` (the
    /// rule) costs one branch per frame.
    tee: Option<Box<crate::mirror::Tee>>,
}

#[derive(Debug)]
enum State {
    /// Ended (or never had a body).
    Done,
    /// Reading from the connection.
    Reading(Reading),
    /// A `101`: no body; the connection is the tunnel's.
    Upgraded(Conn),
    /// An HTTP/2 version's stream (boxed: hyper's body is large, and
    /// HTTP/1.1 is the hot path).
    H2(Box<H2Body>),
}

#[derive(Debug)]
struct H2Body {
    body: hyper::body::Incoming,
    /// Told when trailers carry a non-zero `grpc-status` (a gRPC error
    /// after the response head).
    grpc: Option<Arc<serin_control::VersionStats>>,
}

#[derive(Debug)]
struct Reading {
    conn: Conn,
    decoder: Decoder,
    /// Where the connection goes when the body ends, if it may be reused.
    home: Home,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Length(u64),
    Close,
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

/// The version broke the body off or framed it badly.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RespBodyError {
    #[error("upstream body: {0}")]
    Io(#[from] io::Error),
    #[error("upstream body: the version closed the connection mid-body")]
    Truncated,
    #[error("upstream body: bad chunked framing")]
    Chunked,
    #[error("upstream body: {0}")]
    H2(#[from] hyper::Error),
}

// === impl RespBody ===

impl RespBody {
    /// The body framed as `framing` on `conn`; `home` takes the connection
    /// back when the body ends cleanly (`None`: it closes then).
    pub(crate) fn new(conn: Conn, framing: RespFraming, home: Home) -> Self {
        let decoder = match framing {
            RespFraming::None | RespFraming::Length(0) => {
                let mut me = Self {
                    state: State::Done,
                    tee: None,
                };
                me.finish_with(conn, home);
                return me;
            }
            RespFraming::Length(n) => Decoder::Length(n),
            RespFraming::Chunked => Decoder::Size,
            RespFraming::Close => Decoder::Close,
        };
        Self {
            state: State::Reading(Reading {
                conn,
                decoder,
                home,
            }),
            tee: None,
        }
    }

    /// An HTTP/2 version's response body.
    pub(crate) fn h2(body: hyper::body::Incoming) -> Self {
        Self {
            state: State::H2(Box::new(H2Body { body, grpc: None })),
            tee: None,
        }
    }

    /// Whether this is a gRPC-capable (HTTP/2) body whose trailers have yet
    /// to come.
    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.state, State::H2(_))
    }

    /// Counts a non-zero `grpc-status` in this body's trailers as an error
    /// of the version `stats` belongs to.
    pub(crate) fn report_grpc_to(&mut self, stats: Arc<serin_control::VersionStats>) {
        if let State::H2(h) = &mut self.state {
            h.grpc = Some(stats);
        }
    }

    /// A `101`'s: the connection waits for the tunnel.
    pub(crate) fn upgraded(conn: Conn) -> Self {
        Self {
            state: State::Upgraded(conn),
            tee: None,
        }
    }

    /// The upgraded connection, once (with any bytes the version sent past
    /// its `101` head in its buffer).
    pub(crate) fn take_upgrade(&mut self) -> Option<Conn> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Upgraded(conn) => Some(conn),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// One frame of the body, before the tee sees it.
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RespBodyError>>> {
        let me = self;
        let r = match &mut me.state {
            State::Reading(r) => r,
            State::H2(h) => return h.poll_frame(cx),
            _ => return Poll::Ready(None),
        };
        let step = ready!(r.poll_step(cx));
        match step {
            // The last bytes of a sized body: the connection goes home now,
            // since hyper, told the exact size, may never poll for the end.
            Ok(Step::Frame(f)) if r.decoder == Decoder::Length(0) => {
                if let State::Reading(r) = std::mem::replace(&mut me.state, State::Done) {
                    me.finish_with(r.conn, r.home);
                }
                Poll::Ready(Some(Ok(f)))
            }
            Ok(Step::Frame(f)) => Poll::Ready(Some(Ok(f))),
            Ok(Step::End(trailers)) => {
                if let State::Reading(r) = std::mem::replace(&mut me.state, State::Done) {
                    let home = if r.decoder == Decoder::Close {
                        None
                    } else {
                        r.home
                    };
                    me.finish_with(r.conn, home);
                }
                Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
            }
            Err(e) => {
                me.state = State::Done;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    /// Feeds the body, as it is read, to `tee`.
    pub(crate) fn tee(&mut self, tee: Box<crate::mirror::Tee>) {
        let mut tee = tee;
        // A body already at its end (no body, an HTTP/2 204 or HEAD) is
        // never polled: its (empty) hash is taken now.
        if Body::is_end_stream(self) {
            tee.end();
        }
        self.tee = Some(tee);
    }

    fn finish_with(&mut self, conn: Conn, home: Home) {
        self.state = State::Done;
        // Bytes past the response: the version is out of step; drop it.
        if let (Some((pool, key)), true) = (home, conn.buf.is_empty()) {
            pool.checkin(key, conn.idle());
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = RespBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RespBodyError>>> {
        let me = self.get_mut();
        let polled = me.poll_body(cx);
        if me.tee.is_some() {
            // hyper stops polling a body once its `Content-Length` is
            // written, whether or not the stream has signalled its end.
            let ended = match &polled {
                Poll::Ready(Some(Ok(_))) => {
                    Body::is_end_stream(me) || me.size_hint().exact() == Some(0)
                }
                Poll::Ready(None) => true,
                _ => false,
            };
            if let Some(tee) = me.tee.as_mut() {
                if let Poll::Ready(Some(Ok(f))) = &polled {
                    if let Some(data) = f.data_ref() {
                        tee.data(data);
                    }
                }
                if ended {
                    tee.end();
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Reading(_) => false,
            State::H2(h) => h.body.is_end_stream(),
            _ => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Reading(Reading {
                decoder: Decoder::Length(n),
                ..
            }) => SizeHint::with_exact(*n),
            State::Reading(_) => SizeHint::default(),
            State::H2(h) => h.body.size_hint(),
            _ => SizeHint::with_exact(0),
        }
    }
}

// === impl H2Body ===

impl H2Body {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RespBodyError>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let (Some(Ok(f)), Some(stats)) = (&frame, &self.grpc) {
            let failed = f
                .trailers_ref()
                .and_then(|t| t.get("grpc-status"))
                .is_some_and(|s| s.as_bytes() != b"0");
            if failed {
                stats.record_late_error();
            }
        }
        Poll::Ready(frame.map(|f| f.map_err(RespBodyError::H2)))
    }
}

/// One step of decoding.
enum Step {
    Frame(Frame<Bytes>),
    /// The body ended, with the trailers if it had any.
    End(Option<HeaderMap>),
}

// === impl Reading ===

impl Reading {
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Step, RespBodyError>> {
        loop {
            let buf = &mut self.conn.buf;
            match self.decoder {
                Decoder::Length(0) => return Poll::Ready(Ok(Step::End(None))),
                Decoder::Length(left) if !buf.is_empty() => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    self.decoder = Decoder::Length(left - n as u64);
                    return Poll::Ready(Ok(data(buf.split_to(n).freeze())));
                }
                Decoder::Data(left) if !buf.is_empty() => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    self.decoder = if left == n as u64 {
                        Decoder::DataEnd
                    } else {
                        Decoder::Data(left - n as u64)
                    };
                    return Poll::Ready(Ok(data(buf.split_to(n).freeze())));
                }
                Decoder::Close if !buf.is_empty() => {
                    let all = buf.split().freeze();
                    return Poll::Ready(Ok(data(all)));
                }
                Decoder::DataEnd if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return Poll::Ready(Err(RespBodyError::Chunked));
                    }
                    buf.advance(2);
                    self.decoder = Decoder::Size;
                    continue;
                }
                Decoder::Size => {
                    if let Some(size) = chunk_size(buf)? {
                        self.decoder = if size == 0 {
                            Decoder::Trailers
                        } else {
                            Decoder::Data(size)
                        };
                        continue;
                    }
                }
                Decoder::Trailers => {
                    if let Some(trailers) = trailers(buf)? {
                        return Poll::Ready(Ok(Step::End(trailers)));
                    }
                }
                _ => {}
            }
            // Needs more bytes.
            if self.conn.buf.capacity() - self.conn.buf.len() < 1024 {
                self.conn.buf.reserve(8 * 1024);
            }
            match ready!(self.conn.io.poll_read_into(cx, &mut self.conn.buf)) {
                Ok(0) if self.decoder == Decoder::Close => return Poll::Ready(Ok(Step::End(None))),
                Ok(0) => return Poll::Ready(Err(RespBodyError::Truncated)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
    }
}

fn data(b: Bytes) -> Step {
    Step::Frame(Frame::data(b))
}

/// A chunk-size line at the start of `buf` (extensions ignored), consumed;
/// `None` until the line is whole.
fn chunk_size(buf: &mut bytes::BytesMut) -> Result<Option<u64>, RespBodyError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_LINE {
            Err(RespBodyError::Chunked)
        } else {
            Ok(None)
        };
    };
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").ok_or(RespBodyError::Chunked)?;
    let digits = line
        .iter()
        .position(|&b| b == b';' || b == b' ' || b == b'\t')
        .map_or(line, |p| &line[..p]);
    if digits.is_empty() || digits.len() > 15 {
        return Err(RespBodyError::Chunked);
    }
    let mut size = 0u64;
    for &d in digits {
        let v = (d as char).to_digit(16).ok_or(RespBodyError::Chunked)?;
        size = size * 16 + u64::from(v);
    }
    buf.advance(end + 1);
    Ok(Some(size))
}

/// The trailer section after the last chunk, consumed: `Some(None)` when
/// it is empty, `None` until it is whole.
#[allow(clippy::option_option)] // reason: "not yet" and "none" differ here
fn trailers(buf: &mut bytes::BytesMut) -> Result<Option<Option<HeaderMap>>, RespBodyError> {
    // A bare LF ends a line too (RFC 9112 §2.2 lets a recipient take it).
    for empty in [&b"\r\n"[..], b"\n"] {
        if buf.starts_with(empty) {
            buf.advance(empty.len());
            return Ok(Some(None));
        }
    }
    let lf_lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let lf_crlf = buf.windows(3).position(|w| w == b"\n\r\n").map(|i| i + 3);
    let Some(stop) = lf_lf.into_iter().chain(lf_crlf).min() else {
        return if buf.len() > MAX_LINE {
            Err(RespBodyError::Chunked)
        } else {
            Ok(None)
        };
    };
    let mut lines = [httparse::EMPTY_HEADER; 32];
    let parsed =
        httparse::parse_headers(&buf[..stop], &mut lines).map_err(|_| RespBodyError::Chunked)?;
    let httparse::Status::Complete((_, lines)) = parsed else {
        return Err(RespBodyError::Chunked);
    };
    let mut map = HeaderMap::with_capacity(lines.len());
    for h in lines {
        let name =
            http::HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| RespBodyError::Chunked)?;
        let value = http::HeaderValue::from_bytes(h.value).map_err(|_| RespBodyError::Chunked)?;
        map.append(name, value);
    }
    buf.advance(stop);
    Ok(Some(Some(map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_and_extensions() {
        let mut b = bytes::BytesMut::from(&b"1a;ext=1\r\nrest"[..]);
        assert_eq!(chunk_size(&mut b).unwrap(), Some(26));
        assert_eq!(&b[..], b"rest");
        let mut partial = bytes::BytesMut::from(&b"1a"[..]);
        assert_eq!(chunk_size(&mut partial).unwrap(), None);
        for bad in [&b"\r\n"[..], b"zz\r\n", b"1a\n", b"ffffffffffffffff\r\n"] {
            let mut b = bytes::BytesMut::from(bad);
            assert!(chunk_size(&mut b).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trailer_sections() {
        let mut none = bytes::BytesMut::from(&b"\r\nnext"[..]);
        assert_eq!(trailers(&mut none).unwrap(), Some(None));
        assert_eq!(&none[..], b"next");
        let mut some = bytes::BytesMut::from(&b"grpc-status: 0\r\nx-a: b\r\n\r\n"[..]);
        let t = trailers(&mut some).unwrap().unwrap().unwrap();
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["x-a"], "b");
        assert!(some.is_empty());
        let mut partial = bytes::BytesMut::from(&b"grpc-status: 0\r\n"[..]);
        assert_eq!(trailers(&mut partial).unwrap(), None);
        let mut bare = bytes::BytesMut::from(&b"\nnext"[..]);
        assert_eq!(trailers(&mut bare).unwrap(), Some(None));
        let mut bare = bytes::BytesMut::from(&b"x-a: b\n\nnext"[..]);
        assert_eq!(trailers(&mut bare).unwrap().unwrap().unwrap()["x-a"], "b");
        assert_eq!(&bare[..], b"next");
    }
}
