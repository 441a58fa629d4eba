//! The response body of a fake version: one small buffer, or a stream of the
//! download pattern.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// The size of one `/download` chunk.
pub(crate) const CHUNK: usize = 64 * 1024;

/// The pattern's period: a prime, so chunk boundaries never line up with it
/// and a shifted or dropped chunk shows in a byte-for-byte check.
const PERIOD: u64 = 251;

/// Byte `i` of every `/download` body.
pub fn pattern_byte(i: u64) -> u8 {
    // The remainder is below 251, so the cast never truncates.
    (i % PERIOD) as u8
}

/// Enough pattern to slice any chunk from: `CHUNK` bytes from any phase.
pub(crate) fn pattern_buffer() -> Bytes {
    (0..CHUNK as u64 + PERIOD).map(pattern_byte).collect()
}

/// A body that is either complete in memory or generated chunk by chunk.
///
/// An enum rather than a boxed body so that the common response costs no
/// allocation of its own.
#[derive(Debug)]
pub(crate) enum FakeBody {
    /// One buffer, taken on the first poll.
    Full(Option<Bytes>),
    /// `remaining` bytes of the pattern from `offset`, sliced from `pattern`.
    Pattern {
        pattern: Bytes,
        offset: u64,
        remaining: u64,
    },
}

// === impl FakeBody ===

impl FakeBody {
    /// A body of these bytes.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }

    /// An empty body.
    pub(crate) fn empty() -> Self {
        Self::Full(None)
    }

    /// A streamed body of `len` pattern bytes; `pattern` is [`pattern_buffer`].
    pub(crate) fn pattern(pattern: Bytes, len: u64) -> Self {
        Self::Pattern {
            pattern,
            offset: 0,
            remaining: len,
        }
    }
}

impl Body for FakeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = match self.get_mut() {
            Self::Full(bytes) => bytes.take().filter(|b| !b.is_empty()),
            Self::Pattern {
                pattern,
                offset,
                remaining,
            } => {
                if *remaining == 0 {
                    None
                } else {
                    // `len` is at most CHUNK, so both casts are lossless.
                    let len = (*remaining).min(CHUNK as u64) as usize;
                    let start = (*offset % PERIOD) as usize;
                    *offset += len as u64;
                    *remaining -= len as u64;
                    Some(pattern.slice(start..start + len))
                }
            }
        };
        Poll::Ready(frame.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Self::Pattern { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Pattern { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
