//! Request bodies going upstream: streamed, or kept so a fallback attempt
//! can send the same bytes again.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// The body of one upstream attempt. An enum, not a box: no allocation per
/// request to erase the type.
#[derive(Debug)]
pub(crate) enum UpstreamBody {
    /// The client's body, streamed through (one attempt only).
    Stream(Incoming),
    /// A kept body, replayable (cloning `Bytes` is a reference count).
    Full(Option<Bytes>),
    /// The part read while trying to keep the body, then the rest streamed:
    /// the body was larger than `max_replay_body`, so no fallback.
    Prefixed(Option<Bytes>, Incoming),
}

/// What reading a body for replay found.
#[derive(Debug)]
pub(crate) enum Kept {
    /// The whole body, at most the limit.
    Whole(Bytes),
    /// Over the limit: what was read, and the rest of the stream.
    TooLarge(Bytes, Incoming),
}

/// Reads `body` whole if it is at most `limit` bytes; stops reading as soon
/// as it is over the limit, so a large upload is never buffered.
///
/// # Errors
/// When the client's body fails (reset, malformed chunk).
pub(crate) async fn keep(mut body: Incoming, limit: u64) -> Result<Kept, hyper::Error> {
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
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
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
