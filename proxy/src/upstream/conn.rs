//! One upstream HTTP/1.1 connection, driven by the request's own task: the
//! head and body written, the response head read, no connection task and no
//! channel between them (Pingora's shape). The response body then reads the
//! same socket as the client takes it (`response.rs`), and hands the
//! connection back to its pool when the body ends cleanly.
//!
//! An idle connection is a socket and nothing else: its read buffer is
//! released when it goes back to the pool and made again for the next
//! request, so an idle pooled connection costs no buffer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use http::Method;
use http_body::Body;
use tokio::io::{AsyncReadExt, AsyncWrite};

use super::io::Io;
use super::wire::{self, Head, ReqFraming, WireError};
use crate::body::{BodyError, UpstreamBody};

/// Read buffer made for each exchange.
const READ_BUF: usize = 8 * 1024;

/// A kept body this small goes out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;

/// An answer that comes while the request body is still going is read into
/// the buffer up to this much, so a version that answers as it reads (an
/// echo, a streaming handler) never waits on serin.
const EARLY_MAX: usize = 1024 * 1024;

/// A version that answered early and then takes no more of the body for
/// this long has stopped reading it: the rest is not sent.
const EARLY_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// An upstream connection: the socket, and bytes read past what was used.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) io: Io,
    /// Empty, with no capacity, while the connection idles in a pool.
    pub(crate) buf: BytesMut,
}

/// Why an exchange failed before a response head.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The socket failed, or closed before a whole response head.
    #[error("upstream connection: {0}")]
    Io(#[from] io::Error),
    /// The version closed before a single byte of an answer.
    #[error("the version closed the connection before answering")]
    Closed,
    /// The response head was malformed or ambiguous.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The client's request body failed on the way: the client's fault.
    #[error(transparent)]
    Body(BodyError),
}

/// A response head, and whether the request went out whole (a version that
/// answered and stopped taking the body leaves the rest unsent, so the
/// connection is not reused).
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) head: Head,
    pub(crate) sent_whole: bool,
}

/// How far an exchange got, for the pool's retry rule.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Progress {
    /// Bytes of the request written.
    pub(crate) written: usize,
    /// Frames taken from the request body.
    pub(crate) body_taken: bool,
    /// Bytes of an answer arrived.
    pub(crate) answered: bool,
}

// === impl Conn ===

impl Conn {
    pub(crate) fn new(io: Io) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
        }
    }

    /// Whether an idle connection may carry a request: see [`Io::is_usable`].
    pub(crate) fn is_usable(&mut self) -> bool {
        self.io.is_usable()
    }

    /// Ready for the pool: the buffer released.
    pub(crate) fn idle(mut self) -> Self {
        self.buf = BytesMut::new();
        self
    }

    /// Sends one request (`head` already encoded) with `body` framed as
    /// `framing`, and reads the response head; 1xx interim answers other
    /// than `101` are skipped. An answer that comes while the body is still
    /// going is buffered and the body goes on; only a version that answered
    /// and then stops taking the body gets no more of it.
    ///
    /// # Errors
    /// See [`SendError`]; `progress` says how far the request got.
    pub(crate) async fn send(
        &mut self,
        head: &[u8],
        body: &mut UpstreamBody,
        framing: ReqFraming,
        method: &Method,
        progress: &mut Progress,
    ) -> Result<Answered, SendError> {
        self.buf.reserve(READ_BUF);
        let sent_whole = self.write_request(head, body, framing, progress).await?;
        loop {
            if let Some(head) = wire::parse_head(&mut self.buf, method)? {
                if head.status.is_informational()
                    && head.status != http::StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok(Answered { head, sent_whole });
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(READ_BUF);
            }
            let got = self.io.read_buf(&mut self.buf).await?;
            progress.answered |= got > 0;
            if got == 0 {
                return Err(if self.buf.is_empty() {
                    SendError::Closed
                } else {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-head").into()
                });
            }
        }
    }

    /// Writes the head and the body; `false` when the version answered and
    /// stopped taking the body, or closed (the rest is then left unsent).
    async fn write_request(
        &mut self,
        head: &[u8],
        body: &mut UpstreamBody,
        framing: ReqFraming,
        progress: &mut Progress,
    ) -> Result<bool, SendError> {
        // A small kept body rides in the head's write.
        if let (UpstreamBody::Full(Some(b)), ReqFraming::Length(_)) = (&*body, framing) {
            if b.len() <= INLINE_BODY {
                let mut one = BytesMut::with_capacity(head.len() + b.len());
                one.extend_from_slice(head);
                one.extend_from_slice(b);
                *body = UpstreamBody::Full(None);
                progress.body_taken = true;
                return self.write_watching(&one, progress).await;
            }
        }
        if !self.write_watching(head, progress).await? {
            return Ok(false);
        }
        if framing == ReqFraming::None || body.is_end_stream() && framing != ReqFraming::Chunked {
            return Ok(true);
        }
        let chunked = framing == ReqFraming::Chunked;
        let mut line = BytesMut::new();
        loop {
            // An answer may come while the client is slow to send: buffer it
            // and go on; stop only if the version closed.
            let frame = std::future::poll_fn(|cx| {
                while self.buf.len() < EARLY_MAX {
                    match self.poll_early(cx, progress) {
                        Poll::Ready(Ok(true)) => return Poll::Ready(Ok(None)),
                        Poll::Ready(Ok(false)) => {}
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => break,
                    }
                }
                Pin::new(&mut *body).poll_frame(cx).map(|f| Ok(Some(f)))
            })
            .await?;
            // The version closed: nothing more can be sent.
            let Some(frame) = frame else {
                return Ok(false);
            };
            progress.body_taken = true;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(SendError::Body)?;
            match frame.into_data() {
                Ok(data) if data.is_empty() => {}
                Ok(data) => {
                    if chunked {
                        line.clear();
                        wire::chunk_line(data.len(), &mut line);
                        if !self.write_watching(&line, progress).await? {
                            return Ok(false);
                        }
                    }
                    if !self.write_watching(&data, progress).await? {
                        return Ok(false);
                    }
                    if chunked && !self.write_watching(b"\r\n", progress).await? {
                        return Ok(false);
                    }
                }
                // Trailers go as a chunked body's trailer section.
                Err(frame) => {
                    if let (true, Ok(trailers)) = (chunked, frame.into_trailers()) {
                        let mut t = BytesMut::from(&b"0\r\n"[..]);
                        for (n, v) in &trailers {
                            wire::line(&mut t, n, v);
                        }
                        t.extend_from_slice(b"\r\n");
                        return self.write_watching(&t, progress).await;
                    }
                }
            }
        }
        if chunked {
            return self.write_watching(b"0\r\n\r\n", progress).await;
        }
        Ok(true)
    }

    /// Reads what the version sent while the request was still going out
    /// into the buffer; `true` when it closed (nothing more can be sent).
    fn poll_early(
        &mut self,
        cx: &mut std::task::Context<'_>,
        progress: &mut Progress,
    ) -> Poll<Result<bool, SendError>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_BUF);
        }
        match std::task::ready!(self.io.poll_read_into(cx, &mut self.buf)) {
            Ok(0) => Poll::Ready(Ok(true)),
            Ok(_) => {
                progress.answered = true;
                Poll::Ready(Ok(false))
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Whether a whole final answer head (past any `1xx`) is in the buffer.
    /// Only asked while a write waits on a version that answered early.
    fn final_head_buffered(&self) -> bool {
        let mut probe = self.buf.clone();
        loop {
            match wire::parse_head(&mut probe, &Method::GET) {
                Ok(Some(h))
                    if h.status.is_informational()
                        && h.status != http::StatusCode::SWITCHING_PROTOCOLS => {}
                Ok(Some(_)) | Err(_) => return true,
                Ok(None) => return false,
            }
        }
    }

    /// Writes all of `bytes` (and flushes them through TLS); `false` when
    /// the version answered and then stopped taking them for
    /// [`EARLY_GRACE`], or closed: a version that answers early and stops
    /// reading must not leave this task blocked on a full socket.
    async fn write_watching(
        &mut self,
        bytes: &[u8],
        progress: &mut Progress,
    ) -> Result<bool, SendError> {
        let mut at = 0;
        // Made only when a version answered early and stopped reading.
        let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
        std::future::poll_fn(|cx| loop {
            let io = Pin::new(&mut self.io);
            let blocked = if at < bytes.len() {
                io.poll_write(cx, &bytes[at..]).map_ok(|n| {
                    at += n;
                    progress.written += n;
                    if n > 0 {
                        grace = None;
                    }
                    n == 0
                })
            } else {
                io.poll_flush(cx).map_ok(|()| true)
            };
            match blocked {
                Poll::Ready(Ok(true)) if at == bytes.len() => return Poll::Ready(Ok(true)),
                Poll::Ready(Ok(true)) => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()))
                }
                Poll::Ready(Ok(false)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {}
            }
            // Blocked on the version: take in what it says meanwhile.
            if self.buf.len() < EARLY_MAX {
                match self.poll_early(cx, progress) {
                    Poll::Ready(Ok(true)) => return Poll::Ready(Ok(false)),
                    Poll::Ready(Ok(false)) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if progress.answered && self.final_head_buffered() {
                let grace = grace.get_or_insert_with(|| Box::pin(tokio::time::sleep(EARLY_GRACE)));
                if grace.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(false));
                }
            }
            return Poll::Pending;
        })
        .await
    }
}
