//! Folded slots and the windows read from them.
//!
//! A slot holds what was recorded between two ticks and is stamped with the
//! tick that closed it. A window of length `d` read at `now` takes the
//! slots whose midpoint (`end - slot / 2`) lies within `[now - d, now]`,
//! plus what the shards gathered since the last tick: with 1 s slots a 5 s
//! window covers 5 s ± 0.5 s of traffic, and traffic from 10 s ago is never
//! in it.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::hist::{self, Dense, Packed};
use serin_config::MAX_SIGNALS;

use super::shard::{Counts, SignalCount};

/// What one tick folded. Slots with no traffic are not stored at all.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) end: Instant,
    pub(crate) counts: Counts,
    pub(crate) samples: Packed,
}

/// Folded slots, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    slots: VecDeque<Slot>,
}

/// One version (or one route end to end) over a window: counts and the
/// merged latency histogram. Latencies of every attempt are in it, failed
/// ones included (a timeout counts as slow, as a user would see it).
#[derive(Debug, Clone)]
pub struct WindowStats {
    /// The window asked for.
    pub window: Duration,
    /// Attempts (per version) or client requests (per route).
    pub requests: u64,
    /// `connect_errors + timeouts + status_5xx`.
    pub errors: u64,
    /// Attempts that found no connection (refused, reset, DNS, TLS).
    pub connect_errors: u64,
    /// Attempts without response headers within the version's timeout.
    pub timeouts: u64,
    /// Attempts answered with a 5xx status.
    pub status_5xx: u64,
    /// Failed attempts of this version handed down the fallback chain.
    pub fallbacks: u64,
    /// Client requests whose body stalled past `body_read_timeout` (route
    /// stats only; in `requests`, not in `errors`).
    pub client_timeouts: u64,
    /// Client requests the client abandoned before its answer (route stats
    /// only; in `requests`, not in `errors`).
    pub client_aborts: u64,
    /// Mirrored copies compared with the live answer (a mirror's stats).
    pub compared: u64,
    /// Of those, the ones whose answer differed.
    pub mismatched: u64,
    /// The route's quality signals, by index.
    pub signals: [SignalCount; MAX_SIGNALS],
    /// Latencies in µs, 1 µs to 60 s, 3 significant digits.
    hist: Histogram<u64>,
}

/// The earliest slot end a window of `window` at `now` includes; `None`
/// includes every slot (the window reaches back before the clock's origin).
pub(crate) fn cutoff(now: Instant, window: Duration, slot: Duration) -> Option<Instant> {
    now.checked_sub(window).map(|start| start + slot / 2)
}

// === impl Ring ===

impl Ring {
    pub(crate) fn push(&mut self, slot: Slot) {
        self.slots.push_back(slot);
    }

    /// Adds `slot` where its end puts it (slots from several replicas
    /// arrive out of order).
    pub(crate) fn insert(&mut self, slot: Slot) {
        let at = self.slots.partition_point(|s| s.end <= slot.end);
        self.slots.insert(at, slot);
    }

    /// Drops slots that ended before `cutoff`.
    pub(crate) fn prune(&mut self, cutoff: Option<Instant>) {
        let Some(cutoff) = cutoff else { return };
        while self.slots.front().is_some_and(|s| s.end < cutoff) {
            self.slots.pop_front();
        }
    }

    /// Slots that ended at or after `cutoff`, newest first.
    pub(crate) fn since(&self, cutoff: Option<Instant>) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .rev()
            .take_while(move |s| cutoff.is_none_or(|c| s.end >= c))
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Heap bytes held by the slots.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self
                .slots
                .iter()
                .map(|s| s.samples.heap_bytes())
                .sum::<usize>()
    }
}

// === impl WindowStats ===

impl WindowStats {
    pub(crate) fn empty(window: Duration) -> Self {
        Self {
            window,
            requests: 0,
            errors: 0,
            connect_errors: 0,
            timeouts: 0,
            status_5xx: 0,
            fallbacks: 0,
            client_timeouts: 0,
            client_aborts: 0,
            compared: 0,
            mismatched: 0,
            signals: [SignalCount::default(); MAX_SIGNALS],
            hist: hist::new(),
        }
    }

    pub(crate) fn add_counts(&mut self, c: &Counts) {
        self.requests += c.requests;
        self.errors += c.errors();
        self.connect_errors += c.connect;
        self.timeouts += c.timeout;
        self.status_5xx += c.status_5xx;
        self.fallbacks += c.fallbacks;
        self.client_timeouts += c.client_timeout;
        self.client_aborts += c.client_abort;
        self.compared += c.compared;
        self.mismatched += c.mismatched;
        for (s, o) in self.signals.iter_mut().zip(&c.signals) {
            s.add(o);
        }
    }

    pub(crate) fn add_slots<'a>(&mut self, slots: impl Iterator<Item = &'a Slot>) {
        let mut dense: Option<Dense> = None;
        for slot in slots {
            self.add_counts(&slot.counts);
            dense.get_or_insert_with(Dense::new).add(&slot.samples);
        }
        if let Some(mut dense) = dense {
            dense.drain_into(&mut self.hist);
        }
    }

    pub(crate) fn add_hist(&mut self, h: &Histogram<u32>) {
        for v in h.iter_recorded() {
            self.hist
                .saturating_record_n(v.value_iterated_to(), u64::from(v.count_at_value()));
        }
    }

    /// `errors / requests`; `None` for an empty window.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    /// Answers with response headers: what a signal could be reported on.
    pub fn answered(&self) -> u64 {
        self.requests
            - self.connect_errors
            - self.timeouts
            - self.client_timeouts
            - self.client_aborts
    }

    /// `NAME_rate` of signal `i`: answers that reported it true or above 0,
    /// of every answer (an answer without the header reports nothing
    /// wrong); `None` with no answers.
    pub fn signal_rate(&self, i: usize) -> Option<f64> {
        let s = self.signals.get(i)?;
        let answered = self.answered();
        (answered > 0).then(|| s.hits as f64 / answered as f64)
    }

    /// `NAME_mean` of signal `i`: the mean of the values reported; `None`
    /// when none was.
    pub fn signal_mean(&self, i: usize) -> Option<f64> {
        let s = self.signals.get(i)?;
        (s.reported > 0).then(|| s.sum / s.reported as f64)
    }

    /// `mirror_mismatch_rate`: mirrored answers that differed from the
    /// live one, of those compared; `None` before any comparison.
    pub fn mismatch_rate(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.mismatched as f64 / self.compared as f64)
    }

    /// `1 - error_rate`; `None` for an empty window.
    pub fn availability(&self) -> Option<f64> {
        self.error_rate().map(|r| 1.0 - r)
    }

    /// The latency at percentile `q` (0 to 100, e.g. 99.9), to 3 significant
    /// digits (the highest value of its bucket); `None` with no samples.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        (!self.hist.is_empty())
            .then(|| Duration::from_micros(self.hist.value_at_percentile(q.clamp(0.0, 100.0))))
    }

    /// Mean latency; `None` with no samples.
    pub fn mean(&self) -> Option<Duration> {
        (!self.hist.is_empty()).then(|| Duration::from_secs_f64(self.hist.mean() / 1e6))
    }

    /// Requests per second over the window (0 for a zero window).
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// Samples slower than `threshold` (to histogram precision: a sample in
    /// the threshold's own bucket is not counted). Lets a percentile rule
    /// judge a window too small for the percentile itself, e.g. "more than
    /// 1 in 100 above 3 s" with 40 samples.
    pub fn count_above(&self, threshold: Duration) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.hist.len() - self.hist.count_between(0, hist::micros(threshold))
    }

    /// Latency samples in the window: `requests` less the client outcomes.
    pub fn samples(&self) -> u64 {
        self.hist.len()
    }

    /// The merged histogram, values in µs.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}
