//! Request bodies going upstream: streamed, or kept so a fallback attempt
//! can send the same bytes again; both cut when the client stalls.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Why the client's request body ended before its end: the client's fault,
/// never the version's (see `classify`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Reset, closed early, or malformed (a bad chunk size).
    #[error("request body failed: {0}")]
    Client(#[from] hyper::Error),
    /// No bytes for `body_read_timeout`.
    #[error("request body made no progress for {0:?}")]
    Stalled(Duration),
}

/// The client's body, cut with [`BodyError::Stalled`] when no frame comes
/// for `timeout` (an upload that stops mid-way must not hold a connection
/// and an upstream request open forever).
#[derive(Debug)]
pub(crate) struct ClientBody {
    inner: Incoming,
    timeout: Duration,
    /// Made on the first wait and reset after progress: one allocation per
    /// body that ever waits, none per frame.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Set while the body streams to a version: how far it has gone.
    upload: Option<Arc<Upload>>,
}

/// How far a streamed request body has gone to its version, written by
/// the body as the version's connection pulls it and read by the attempt's
/// clock (`fallback::timed`): a version's `timeout` runs from the moment
/// the request is wholly sent, so a slow but progressing upload is never
/// the version's timeout. Made only for a body that streams (one
/// allocation per upload, none for a request without a body).
#[derive(Debug)]
pub(crate) struct Upload {
    base: Instant,
    /// Nanoseconds after `base`, plus one, when the last byte was taken;
    /// 0 while the body is still going.
    sent: AtomicU64,
    /// Nanoseconds after `base` when the version's connection last asked
    /// for more, shifted left once; the low bit set when that ask found
    /// nothing (the body waits for the client, whose own clock,
    /// `body_read_timeout`, then governs). One word, so a reader never sees
    /// one half of an update.
    pulled: AtomicU64,
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Going: waiting for the client's next bytes, or for the version to
    /// take more (`pulled` is when it last did).
    Sending { waiting: bool, pulled: Instant },
    /// Wholly taken at this instant.
    Sent(Instant),
}

/// The body of one upstream attempt. An enum, not a box: no allocation per
/// request to erase the type.
#[derive(Debug)]
pub(crate) enum UpstreamBody {
    /// The client's body, streamed through (one attempt only).
    Stream(ClientBody),
    /// A kept body, replayable (cloning `Bytes` is a reference count).
    Full(Option<Bytes>),
    /// The part read while trying to keep the body, then the rest streamed:
    /// the body was larger than `max_replay_body`, so no fallback.
    Prefixed(Option<Bytes>, ClientBody),
}

/// What reading a body for replay found.
#[derive(Debug)]
pub(crate) enum Kept {
    /// The whole body, at most the limit.
    Whole(Bytes),
    /// Over the limit: what was read, and the rest of the stream.
    TooLarge(Bytes, ClientBody),
}

/// Reads `body` whole if it is at most `limit` bytes; stops reading as soon
/// as it is over the limit, so a large upload is never buffered.
///
/// # Errors
/// When the client's body fails (reset, malformed chunk) or stalls.
pub(crate) async fn keep(mut body: ClientBody, limit: u64) -> Result<Kept, BodyError> {
    let hint = body.size_hint();
    if hint.exact() == Some(0) || body.is_end_stream() {
        return Ok(Kept::Whole(Bytes::new()));
    }
    if hint.lower() > limit {
        return Ok(Kept::TooLarge(Bytes::new(), body));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() as u64 > limit {
                return Ok(Kept::TooLarge(buf.freeze(), body));
            }
        }
        // Trailers are dropped: a replayed body is sent with a length.
    }
    Ok(Kept::Whole(buf.freeze()))
}

// === impl BodyError ===

impl BodyError {
    /// The fault as the attempt walk names it.
    pub(crate) fn fault(&self) -> crate::classify::BodyFault {
        match self {
            Self::Stalled(_) => crate::classify::BodyFault::Stalled,
            Self::Client(_) => crate::classify::BodyFault::Broken,
        }
    }
}

// === impl ClientBody ===

impl ClientBody {
    /// `inner`, cut after `timeout` without progress.
    pub(crate) fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
            armed: false,
            upload: None,
        }
    }

    /// Starts tracking this body's way to a version; `None` for a body that
    /// has already ended (nothing to send: the request is sent at once).
    pub(crate) fn track(&mut self) -> Option<Arc<Upload>> {
        if self.inner.is_end_stream() {
            return None;
        }
        let upload = Arc::new(Upload::new());
        self.upload = Some(upload.clone());
        Some(upload)
    }
}

// === impl Upload ===

impl Upload {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            sent: AtomicU64::new(0),
            pulled: AtomicU64::new(0),
        }
    }

    /// Nanoseconds after `base`, below 2^62 (146 years).
    fn nanos(&self, at: Instant) -> u64 {
        let n = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(n).unwrap_or(u64::MAX).min(1 << 62)
    }

    fn at(&self, nanos: u64) -> Instant {
        self.base + Duration::from_nanos(nanos)
    }

    /// The version's connection asked for more at `now`; `waiting`: there
    /// was nothing yet. While the wait goes on its start is kept, so
    /// [`waited_for_client`](Self::waited_for_client) can tell how long.
    pub(crate) fn pulled(&self, now: Instant, waiting: bool) {
        if waiting && self.pulled.load(Relaxed) & 1 == 1 {
            return;
        }
        self.pulled
            .store(self.nanos(now) << 1 | u64::from(waiting), Relaxed);
    }

    /// The last byte was taken at `now`.
    pub(crate) fn finished(&self, now: Instant) {
        let _ = self
            .sent
            .compare_exchange(0, self.nanos(now) + 1, Relaxed, Relaxed);
    }

    /// Whether the body has waited at least `long` for the client's next
    /// bytes, up to now: a pause between two TCP segments is not that.
    pub(crate) fn waited_for_client(&self, long: Duration) -> bool {
        matches!(self.phase(), Phase::Sending { waiting: true, pulled } if pulled.elapsed() >= long)
    }

    /// Where the upload stands now.
    pub(crate) fn phase(&self) -> Phase {
        match self.sent.load(Relaxed) {
            0 => {
                let pulled = self.pulled.load(Relaxed);
                Phase::Sending {
                    waiting: pulled & 1 == 1,
                    pulled: self.at(pulled >> 1),
                }
            }
            n => Phase::Sent(self.at(n - 1)),
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let me = self.get_mut();
        let polled = Pin::new(&mut me.inner).poll_frame(cx);
        if let Some(u) = &me.upload {
            let now = Instant::now();
            u.pulled(now, polled.is_pending());
            // A body with a length ends with its last frame: hyper asks
            // `is_end_stream` and does not poll again.
            if matches!(polled, Poll::Ready(None)) || me.inner.is_end_stream() {
                u.finished(now);
            }
        }
        match polled {
            Poll::Ready(frame) => {
                me.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(BodyError::Client)))
            }
            Poll::Pending => {
                let deadline = Instant::now() + me.timeout;
                let timer = me
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !me.armed {
                    timer.as_mut().reset(deadline);
                    me.armed = true;
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Stalled(me.timeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// A replayable body of `bytes`.
    pub(crate) fn full(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Self::Full(None)
        } else {
            Self::Full(Some(bytes))
        }
    }

    /// Tracks the client's part of this body on its way (see [`Upload`]);
    /// `None` for kept bytes, which are sent at once.
    pub(crate) fn track(&mut self) -> Option<Arc<Upload>> {
        match self {
            Self::Stream(b) | Self::Prefixed(_, b) => b.track(),
            Self::Full(_) => None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Self::Stream(b) => Pin::new(b).poll_frame(cx),
            Self::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
            Self::Prefixed(prefix, rest) => match prefix.take() {
                Some(d) if !d.is_empty() => Poll::Ready(Some(Ok(Frame::data(d)))),
                _ => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Stream(b) => b.is_end_stream(),
            Self::Full(b) => b.is_none(),
            Self::Prefixed(p, rest) => {
                p.as_ref().is_none_or(Bytes::is_empty) && rest.is_end_stream()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Stream(b) => b.size_hint(),
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |d| d.len() as u64)),
            Self::Prefixed(p, rest) => {
                let n = p.as_ref().map_or(0, |d| d.len() as u64);
                let r = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(r.lower() + n);
                if let Some(u) = r.upper() {
                    hint.set_upper(u + n);
                }
                hint
            }
        }
    }
}
