//! Run-time fault switches of one fake version.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The faults a [`FakeHandle`](crate::FakeHandle) injects, changeable while it serves.
///
/// Every switch is one atomic read with `Relaxed` ordering on the serving
/// path: a change shows up on the next request, with no lock and no ordering
/// promise between two switches flipped together.
#[derive(Debug, Default)]
pub struct Faults {
    /// `f64::to_bits` of the fraction of requests answered 500.
    error_rate: AtomicU64,
    latency_ns: AtomicU64,
    jitter_ns: AtomicU64,
    hang: AtomicBool,
    refuse: AtomicBool,
    close_mid_headers: AtomicBool,
    /// 0 means no override.
    status: AtomicU16,
    health_fail: AtomicBool,
    health_hang: AtomicBool,
    /// `f64::to_bits` of the share of answers carrying [`SIGNAL_HEADER`]: 1.
    signal_rate: AtomicU64,
    /// Answers so far, for an exact share.
    answers: AtomicU64,
}

/// The quality-signal header a fake version sets (`set_signal_rate`).
pub const SIGNAL_HEADER: &str = "x-quality-flag";

// === impl Faults ===

impl Faults {
    /// Answers this fraction of requests (not `/health`) with 500.
    ///
    /// The rate is clamped to `0.0..=1.0`; NaN counts as 0.
    pub fn set_error_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.error_rate.store(rate.to_bits(), Relaxed);
    }

    /// The fraction of requests answered 500.
    pub fn error_rate(&self) -> f64 {
        f64::from_bits(self.error_rate.load(Relaxed))
    }

    /// Adds this fixed delay before the response headers of every request.
    pub fn set_latency(&self, latency: Duration) {
        self.latency_ns.store(saturating_nanos(latency), Relaxed);
    }

    /// The fixed delay added before the response headers.
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_ns.load(Relaxed))
    }

    /// Adds a uniform random extra delay in `0..=jitter` on top of the latency.
    pub fn set_latency_jitter(&self, jitter: Duration) {
        self.jitter_ns.store(saturating_nanos(jitter), Relaxed);
    }

    /// The upper bound of the random extra delay.
    pub fn latency_jitter(&self) -> Duration {
        Duration::from_nanos(self.jitter_ns.load(Relaxed))
    }

    /// While on, requests are read but never answered; the connection stays
    /// open. A request already held is answered once the switch goes off,
    /// like a version that recovers from a stall.
    pub fn set_hang(&self, on: bool) {
        self.hang.store(on, Relaxed);
    }

    /// Whether requests hang.
    pub fn hang(&self) -> bool {
        self.hang.load(Relaxed)
    }

    /// While on, a new connection is reset (RST) as soon as it is accepted,
    /// without reading, and a request arriving on an already open connection
    /// closes that connection without an answer.
    ///
    /// To make the port refuse connections outright, shut the handle down.
    pub fn set_refuse(&self, on: bool) {
        self.refuse.store(on, Relaxed);
    }

    /// Whether connections are reset.
    pub fn refuse(&self) -> bool {
        self.refuse.load(Relaxed)
    }

    /// While on, a new connection gets its request head read and then a
    /// truncated status line (`HTTP/1.1 200 OK\r\nContent-Le`) before the
    /// close; a request on an already open connection closes it unanswered.
    pub fn set_close_mid_headers(&self, on: bool) {
        self.close_mid_headers.store(on, Relaxed);
    }

    /// Whether responses are cut in the middle of the headers.
    pub fn close_mid_headers(&self) -> bool {
        self.close_mid_headers.load(Relaxed)
    }

    /// Answers every request (`/health` included) with this status instead
    /// of its own; 0 or anything outside `100..=999` removes the override.
    pub fn set_status(&self, status: u16) {
        let status = if (100..=999).contains(&status) {
            status
        } else {
            0
        };
        self.status.store(status, Relaxed);
    }

    /// The status override, if one is set.
    pub fn status(&self) -> Option<u16> {
        match self.status.load(Relaxed) {
            0 => None,
            status => Some(status),
        }
    }

    /// While on, `/health` answers 503 and every other path is unaffected.
    pub fn set_health_fail(&self, on: bool) {
        self.health_fail.store(on, Relaxed);
    }

    /// Whether `/health` fails.
    pub fn health_fail(&self) -> bool {
        self.health_fail.load(Relaxed)
    }

    /// While on, `/health` is read but never answered (every other path is
    /// unaffected); a held health request is answered once it goes off.
    pub fn set_health_hang(&self, on: bool) {
        self.health_hang.store(on, Relaxed);
    }

    /// Whether `/health` hangs.
    pub fn health_hang(&self) -> bool {
        self.health_hang.load(Relaxed)
    }

    /// Sets [`SIGNAL_HEADER`]`: 1` on this share of answers, exactly: the
    /// n-th answer carries it when `floor(n * rate)` steps up (30% is 3 in
    /// every 10). The rest carry no header. Clamped to `0.0..=1.0`.
    pub fn set_signal_rate(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.signal_rate.store(rate.to_bits(), Relaxed);
    }

    /// Whether the next answer carries the signal.
    pub(crate) fn signal(&self) -> bool {
        let rate = f64::from_bits(self.signal_rate.load(Relaxed));
        if rate <= 0.0 {
            return false;
        }
        let n = self.answers.fetch_add(1, Relaxed) as f64;
        ((n + 1.0) * rate).floor() > (n * rate).floor()
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.set_signal_rate(0.0);
        self.set_error_rate(0.0);
        self.set_latency(Duration::ZERO);
        self.set_latency_jitter(Duration::ZERO);
        self.set_hang(false);
        self.set_refuse(false);
        self.set_close_mid_headers(false);
        self.set_status(0);
        self.set_health_fail(false);
        self.set_health_hang(false);
    }

    /// The delay to add to one request: latency plus a random share of jitter.
    pub(crate) fn delay(&self) -> Duration {
        let fixed = self.latency_ns.load(Relaxed);
        let jitter = self.jitter_ns.load(Relaxed);
        let extra = if jitter == 0 {
            0
        } else {
            fastrand::u64(0..=jitter)
        };
        Duration::from_nanos(fixed.saturating_add(extra))
    }

    /// Whether this request draws an injected 500.
    pub(crate) fn draw_error(&self) -> bool {
        let rate = self.error_rate();
        // The comparison keeps the common case (rate 0) free of an RNG call.
        rate > 0.0 && (rate >= 1.0 || fastrand::f64() < rate)
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
