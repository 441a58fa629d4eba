//! Recording shards: where the request path writes.
//!
//! Every thread is given a shard index once (round-robin, at its first
//! record), so each runtime worker thread writes its own shard. A shard's
//! mutex is then only ever taken by that thread and, once a second, by the
//! fold or a reader for a few microseconds: uncontended, it costs one
//! atomic swap each way and never parks. Threads outnumbering the shards
//! share one, which stays correct and costs a little contention.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;

use serin_config::MAX_SIGNALS;

use super::{hist, Outcome};

/// Counters of a shard, a slot or a window. `requests` counts every
/// attempt, failed ones included. Serialized as a fleet's replicas send
/// each other their slots (`SlotSummary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Counts {
    pub(crate) requests: u64,
    pub(crate) status_5xx: u64,
    pub(crate) connect: u64,
    pub(crate) timeout: u64,
    pub(crate) fallbacks: u64,
    /// Client requests ended by the client (route stats only): counted in
    /// `requests`, never in `errors`, without a latency sample.
    pub(crate) client_timeout: u64,
    pub(crate) client_abort: u64,
    /// Mirrored copies compared with the live answer, and those that
    /// differed (a mirror's stats only).
    pub(crate) compared: u64,
    pub(crate) mismatched: u64,
    /// The route's quality signals, by index (`[[routes.signals]]`).
    pub(crate) signals: [SignalCount; MAX_SIGNALS],
}

/// One quality signal's tally.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignalCount {
    /// Answers that carried the signal's header with a readable value.
    pub reported: u64,
    /// Of those, the ones true or above 0.
    pub hits: u64,
    /// The sum of the values reported (true is 1, false 0).
    pub sum: f64,
}

/// What one answer reported of the route's quality signals, by index;
/// `None` where its header was absent or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SignalValues(pub [Option<f64>; MAX_SIGNALS]);

/// What one shard gathered since the last fold.
#[derive(Debug, Default)]
pub(crate) struct Active {
    pub(crate) counts: Counts,
    /// Made at the shard's first record and then kept: the fold swaps its
    /// contents out, never drops it, so recording does not allocate.
    pub(crate) hist: Option<Histogram<u32>>,
}

/// One shard, alone on its cache lines (128 bytes: adjacent-line
/// prefetching pairs 64-byte lines) so two threads never false-share.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Shard {
    active: Mutex<Active>,
}

/// A version's shards; the count is a power of two.
#[derive(Debug)]
pub(crate) struct Shards {
    shards: Box<[Shard]>,
    mask: usize,
}

thread_local! {
    /// This thread's shard number, `usize::MAX` until its first record.
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Next shard number to hand out.
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

/// Shard count for this machine: twice the cores (spare room so worker
/// threads rarely collide), a power of two in 8..=64. An unused shard costs
/// ~256 bytes; its 70 KB histogram is made only when a thread writes to it.
pub(crate) fn default_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 2).next_power_of_two().clamp(8, 64)
}

/// Locks ignoring poison: a panic elsewhere cannot leave counters in a state
/// worse than "a sample may be missing", so telemetry carries on.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[inline]
fn thread_index() -> usize {
    THREAD_INDEX
        .try_with(|slot| {
            let mut i = slot.get();
            if i == usize::MAX {
                i = NEXT_INDEX.fetch_add(1, Ordering::Relaxed);
                slot.set(i);
            }
            i
        })
        // Only during thread-local teardown; any shard is correct.
        .unwrap_or(0)
}

// === impl Counts ===

impl Counts {
    #[inline]
    pub(crate) fn record(&mut self, outcome: Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Success => {}
            Outcome::Status5xx => self.status_5xx += 1,
            Outcome::Connect => self.connect += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::ClientTimeout => self.client_timeout += 1,
            Outcome::ClientAbort => self.client_abort += 1,
        }
    }

    pub(crate) fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.status_5xx += other.status_5xx;
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.fallbacks += other.fallbacks;
        self.client_timeout += other.client_timeout;
        self.client_abort += other.client_abort;
        self.compared += other.compared;
        self.mismatched += other.mismatched;
        for (s, o) in self.signals.iter_mut().zip(&other.signals) {
            s.add(o);
        }
    }

    /// Counts what one answer reported.
    #[inline]
    pub(crate) fn record_signals(&mut self, values: &SignalValues) {
        for (s, v) in self.signals.iter_mut().zip(values.0) {
            if let Some(v) = v {
                s.reported += 1;
                s.hits += u64::from(v > 0.0);
                s.sum += v;
            }
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.status_5xx + self.connect + self.timeout
    }

    /// Attempts per outcome, in [`Outcome::ALL`] order.
    pub(crate) fn by_outcome(&self) -> [u64; 6] {
        let client = self.client_timeout + self.client_abort;
        [
            self.requests - self.errors() - client,
            self.status_5xx,
            self.connect,
            self.timeout,
            self.client_timeout,
            self.client_abort,
        ]
    }

    pub(crate) fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

// === impl SignalCount ===

impl SignalCount {
    pub(crate) fn add(&mut self, other: &SignalCount) {
        self.reported += other.reported;
        self.hits += other.hits;
        self.sum += other.sum;
    }
}

// === impl SignalValues ===

impl SignalValues {
    /// Reads one header's value: `1`/`true`/`yes` and `0`/`false`/`no`
    /// (any case), or a finite number; anything else is not a report.
    pub fn parse(value: &[u8]) -> Option<f64> {
        let text = std::str::from_utf8(value).ok()?.trim();
        for (word, v) in [("true", 1.0), ("yes", 1.0), ("false", 0.0), ("no", 0.0)] {
            if text.eq_ignore_ascii_case(word) {
                return Some(v);
            }
        }
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// Whether any signal was reported.
    pub fn any(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }
}

// === impl Active ===

impl Active {
    #[inline]
    pub(crate) fn record(&mut self, outcome: Outcome, micros: u64) {
        self.counts.record(outcome);
        // How long a client took to give up says nothing of the route's
        // latency: no sample.
        if outcome.is_client() {
            return;
        }
        self.hist
            .get_or_insert_with(hist::new)
            .saturating_record(micros);
    }
}

// === impl Shard ===

impl Shard {
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Active> {
        lock(&self.active)
    }
}

// === impl Shards ===

impl Shards {
    /// `count` is rounded up to a power of two.
    pub(crate) fn new(count: usize) -> Self {
        let count = count.max(1).next_power_of_two();
        Self {
            shards: (0..count).map(|_| Shard::default()).collect(),
            mask: count - 1,
        }
    }

    /// The calling thread's shard.
    #[inline]
    pub(crate) fn local(&self) -> &Shard {
        &self.shards[thread_index() & self.mask]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter()
    }

    /// Heap bytes held: the shard array and the histograms made so far.
    pub(crate) fn heap_bytes(&self) -> usize {
        let hists: usize = self
            .iter()
            .map(|s| {
                s.lock()
                    .hist
                    .as_ref()
                    .map_or(0, |h| h.distinct_values() * std::mem::size_of::<u32>())
            })
            .sum();
        std::mem::size_of_val(&*self.shards) + hists
    }
}
