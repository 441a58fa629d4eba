//! Per-connection limits that hyper does not enforce the way serin needs:
//! the header read timeout (slowloris) counted from the first byte of a
//! request, not from the end of the previous one, and a separate idle
//! keep-alive timeout.
//!
//! hyper 1.x starts its own `header_read_timeout` as soon as it waits for a
//! request head, so on a kept-alive connection it also bounds the idle time
//! between requests: with a 10 s header timeout no connection could stay
//! idle for the 60 s keep-alive. serin turns hyper's timer off and keeps
//! both clocks here instead: [`Watched`] stamps every byte read or written,
//! [`InFlight`] counts requests from their head until their response body
//! is done, and the connection task asks [`Activity::verdict`] when its
//! next deadline passes.

mod io;

use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serin_config::Limits;
use tokio::time::Instant;

pub(crate) use io::Watched;

/// What one connection has been doing, shared by its IO, its requests and
/// its watchdog. Times are milliseconds since `start`.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    /// Last byte read or written, or the last response finished.
    last: AtomicU64,
    /// When the bytes of a request head began to arrive, plus one; 0: none.
    head_since: AtomicU64,
    in_flight: AtomicU32,
    /// Whether any request has started on this connection.
    served: AtomicBool,
    /// HTTP/2: no request heads to time, only idleness.
    h2: AtomicBool,
}

/// What the watchdog should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing yet; look again at this instant.
    Wait(Instant),
    /// A request head took longer than `header_read_timeout`: drop the connection.
    HeadTimeout,
    /// No request and no bytes for `idle_timeout`: close it gracefully.
    Idle,
}

/// Counts one request as in flight until dropped (with its response body).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

/// A response body that holds its request's [`InFlight`] until hyper has
/// sent it whole (or dropped it).
#[derive(Debug)]
pub(crate) struct Guarded<B> {
    inner: B,
    _guard: InFlight,
    /// The request's access-log line, written when the body is done;
    /// `None` without `[access_log]` (one branch per frame).
    log: Option<Box<crate::access::Pending>>,
}

// === impl Activity ===

impl Activity {
    /// A new connection; `h2` when ALPN already chose HTTP/2.
    pub(crate) fn new(h2: bool) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(h2),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// Bytes arrived. On an HTTP/1.1 connection with no request in flight
    /// they are the start of the next request head: its clock starts.
    pub(crate) fn on_read(&self) {
        let now = self.now_ms();
        self.last.store(now, Relaxed);
        if !self.h2.load(Relaxed)
            && self.in_flight.load(Relaxed) == 0
            && self.head_since.load(Relaxed) == 0
        {
            self.head_since.store(now + 1, Relaxed);
        }
    }

    /// Bytes left.
    pub(crate) fn on_write(&self) {
        self.last.store(self.now_ms(), Relaxed);
    }

    /// The connection speaks HTTP/2 (prior-knowledge preface seen).
    pub(crate) fn set_h2(&self) {
        self.h2.store(true, Relaxed);
    }

    /// A request head was parsed: its clock stops, the request is in flight.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_since.store(0, Relaxed);
        self.served.store(true, Relaxed);
        InFlight(self.clone())
    }

    /// What the watchdog should do now, given `limits`.
    pub(crate) fn verdict(&self, limits: &Limits) -> Verdict {
        let now = self.now_ms();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (head, idle) = (ms(limits.header_read_timeout), ms(limits.idle_timeout));
        let h2 = self.h2.load(Relaxed);
        if self.in_flight.load(Relaxed) > 0 {
            // Nothing to time while a request runs (its body has its own
            // timeout); look again later, state changes do not wake us.
            return Verdict::Wait(self.at(now.saturating_add(head.min(idle))));
        }
        // HTTP/1.1: the first request's head is timed from the connection's
        // start (a client that connects and sends nothing is slowloris too),
        // later ones from their first byte.
        let head_start = match self.head_since.load(Relaxed) {
            0 if !h2 && !self.served.load(Relaxed) => Some(0),
            0 => None,
            t => Some(t - 1),
        };
        if let Some(t) = head_start.filter(|_| !h2) {
            let deadline = t.saturating_add(head);
            return if now >= deadline {
                Verdict::HeadTimeout
            } else {
                Verdict::Wait(self.at(deadline))
            };
        }
        let deadline = self.last.load(Relaxed).saturating_add(idle);
        if now >= deadline {
            Verdict::Idle
        } else {
            Verdict::Wait(self.at(deadline))
        }
    }
}

// === impl InFlight ===

impl Drop for InFlight {
    fn drop(&mut self) {
        // The response is done: idleness counts from now.
        self.0.on_write();
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

// === impl Guarded ===

impl<B> Guarded<B> {
    /// `inner`, counted as in flight until it is dropped, and logged then
    /// when `log` is given.
    pub(crate) fn new(inner: B, guard: InFlight, log: Option<Box<crate::access::Pending>>) -> Self {
        Self {
            inner,
            _guard: guard,
            log,
        }
    }
}

impl<B> Drop for Guarded<B> {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            log.finish();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Guarded<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let me = self.get_mut();
        let polled = Pin::new(&mut me.inner).poll_frame(cx);
        if let (Some(log), Poll::Ready(Some(Ok(frame)))) = (&mut me.log, &polled) {
            if let Some(data) = frame.data_ref() {
                log.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
