//! The circuit breaker of one (route, version): its state as atomics the
//! request path reads, and the transitions.
//!
//! Who decides what: closed → open is decided by the monitor task
//! (`breaker.rs`) from the version's telemetry window, never on the
//! request path. The request path only admits or refuses (one atomic load
//! when closed) and, while half-open, hands out probe permits and reports
//! their results — a compare-and-swap each, so a recovered version closes
//! as soon as its probes succeed instead of a tick later.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use std::time::Duration;

use tokio::time::Instant;

/// Where a breaker stands. `repr(u8)` is the gauge value of
/// `serin_breaker_state` (0 closed, 1 half-open, 2 open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

/// Whether a request may try this version now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: go ahead.
    Yes,
    /// Half-open: go ahead as one of the probes; report the result.
    Probe,
    /// Open, or half-open with every probe permit taken: skip at once.
    No,
}

/// One version's breaker. Kept across table swaps (the registry hands out
/// the same `Arc` for the same route and version).
#[derive(Debug)]
pub struct Breaker {
    state: AtomicU8,
    /// Nanoseconds since `epoch` when an open breaker may half-open.
    open_until: AtomicU64,
    /// Nanoseconds since `epoch` when the breaker last closed: the window
    /// that may open it again starts there, so old failures do not count twice.
    closed_at: AtomicU64,
    /// Probe permits left while half-open.
    permits: AtomicU32,
    /// Successful probes while half-open.
    successes: AtomicU32,
    /// Probes needed to close; set when half-opening.
    probes: AtomicU32,
    /// Half-open periods so far: a permit handed back belongs to the
    /// period that gave it out, never to a later one.
    half_opens: AtomicU32,
    open_for: AtomicU64,
    epoch: Instant,
}

// === impl BreakerState ===

impl BreakerState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::HalfOpen,
            2 => Self::Open,
            _ => Self::Closed,
        }
    }

    /// `closed`, `half_open` or `open`, as in the status API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

// === impl Breaker ===

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Self {
        Self {
            state: AtomicU8::new(BreakerState::Closed as u8),
            open_until: AtomicU64::new(0),
            closed_at: AtomicU64::new(0),
            permits: AtomicU32::new(0),
            successes: AtomicU32::new(0),
            probes: AtomicU32::new(1),
            half_opens: AtomicU32::new(0),
            open_for: AtomicU64::new(30_000_000_000),
            epoch: Instant::now(),
        }
    }

    /// The current state (an open breaker past its `open_for` still reads
    /// open until a request or the monitor half-opens it).
    #[inline]
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Acquire))
    }

    /// How long the breaker has been closed (the longest it may look back).
    pub fn closed_for(&self) -> Duration {
        self.now()
            .saturating_sub(Duration::from_nanos(self.closed_at.load(Acquire)))
    }

    /// Admits a request, half-opening an open breaker whose time is up.
    #[inline]
    pub fn admit(&self) -> Admit {
        match self.state() {
            BreakerState::Closed => Admit::Yes,
            BreakerState::Open => {
                if self.try_half_open() {
                    self.take_permit()
                } else {
                    Admit::No
                }
            }
            BreakerState::HalfOpen => self.take_permit(),
        }
    }

    /// Reports the result of an attempt admitted as `Admit::Probe`.
    pub fn probe_result(&self, ok: bool) {
        if self.state() != BreakerState::HalfOpen {
            return;
        }
        if !ok {
            self.open_from(BreakerState::HalfOpen);
            return;
        }
        let done = self.successes.fetch_add(1, AcqRel) + 1;
        if done >= self.probes.load(Acquire)
            && self
                .state
                .compare_exchange(
                    BreakerState::HalfOpen as u8,
                    BreakerState::Closed as u8,
                    AcqRel,
                    Acquire,
                )
                .is_ok()
        {
            self.closed_at.store(self.now_nanos(), Release);
        }
    }

    /// Hands back the permit of a probe that ended with nothing to say
    /// about the version (its client left, or the client's own body
    /// failed): the next request probes instead. A client cannot hold a
    /// breaker open by abandoning its probes, nor close one.
    /// `period` is [`half_open_period`](Self::half_open_period) as read
    /// when the probe was admitted: a permit from an earlier half-open
    /// period is not handed to this one.
    pub fn probe_abandoned(&self, period: u32) {
        if self.state() == BreakerState::HalfOpen && self.half_opens.load(Acquire) == period {
            self.permits.fetch_add(1, AcqRel);
        }
    }

    /// The current half-open period's number (read it with a probe
    /// admission, for [`probe_abandoned`](Self::probe_abandoned)).
    pub fn half_open_period(&self) -> u32 {
        self.half_opens.load(Acquire)
    }

    /// Closes the breaker whatever its state (its route lost its
    /// `[routes.breaker]` section). Returns the state it had.
    pub fn reset(&self) -> BreakerState {
        let was = BreakerState::from_u8(self.state.swap(BreakerState::Closed as u8, AcqRel));
        if was != BreakerState::Closed {
            self.closed_at.store(self.now_nanos(), Release);
        }
        was
    }

    /// Opens a closed breaker for `open_for`, then `probes` probes decide.
    /// Returns false when it was not closed.
    pub fn trip(&self, open_for: Duration, probes: u32) -> bool {
        self.open_for.store(open_for.as_nanos() as u64, Release);
        self.probes.store(probes.max(1), Release);
        self.open_from(BreakerState::Closed)
    }

    /// Half-opens an open breaker whose time is up (the monitor calls this
    /// for idle versions; requests do it themselves).
    pub fn try_half_open(&self) -> bool {
        if self.now_nanos() < self.open_until.load(Acquire) {
            return false;
        }
        // Only the request that wins the swap hands out the permits; the
        // others see half-open with no permit yet and skip, which is safe.
        if self
            .state
            .compare_exchange(
                BreakerState::Open as u8,
                BreakerState::HalfOpen as u8,
                AcqRel,
                Acquire,
            )
            .is_err()
        {
            return false;
        }
        self.successes.store(0, Release);
        self.half_opens.fetch_add(1, AcqRel);
        self.permits.store(self.probes.load(Acquire), Release);
        true
    }

    fn open_from(&self, from: BreakerState) -> bool {
        let until = self.now_nanos() + self.open_for.load(Acquire);
        self.open_until.store(until, Release);
        self.state
            .compare_exchange(from as u8, BreakerState::Open as u8, AcqRel, Acquire)
            .is_ok()
    }

    fn take_permit(&self) -> Admit {
        let taken = self
            .permits
            .fetch_update(AcqRel, Acquire, |p| p.checked_sub(1))
            .is_ok();
        if taken {
            Admit::Probe
        } else {
            Admit::No
        }
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    fn now_nanos(&self) -> u64 {
        self.now().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests;
