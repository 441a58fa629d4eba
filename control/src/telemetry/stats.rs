//! `VersionStats`: one version's (or one route's) recording shards, folded
//! slots and Prometheus handles.

use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::hist::{self, Packed};
use super::shard::{lock, Counts, Shards, SignalValues};
use super::window::{cutoff, Ring, Slot, WindowStats};
use super::{Outcome, Settings};
use crate::metrics::Exports;

/// Telemetry of one (route, version), or of one route end to end as the
/// client sees it; get it from [`Telemetry`](super::Telemetry) and keep the
/// `Arc` in the compiled snapshot.
///
/// Memory: 256 bytes a shard while idle (twice the cores, 8 to 64: 2 KB on
/// 2 cores); each thread that records adds its shard's 70 KB dense
/// histogram (so about `workers × 70 KB`), and each second with
/// traffic adds a folded slot of ~80 bytes plus ~2 bytes per distinct
/// latency bucket. At 1k rps with latencies spread 1–200 ms a slot is about
/// 1.7 KB, so 15 minutes take ~1.6 MB (measured by a test); at 10 rps,
/// ~90 KB of slots.
pub struct VersionStats {
    route: Arc<str>,
    version: Option<Arc<str>>,
    /// Shared with the registry: `Telemetry::set_enabled` flips them all.
    enabled: Arc<AtomicBool>,
    settings: Settings,
    shards: Shards,
    /// Folded slots. Taken by the fold and by readers, never by `record`.
    ring: Mutex<Ring>,
    /// Slots the other replicas of a fleet folded (`inject`), read by
    /// [`fleet_window`](Self::fleet_window) only.
    remote: Mutex<Ring>,
    /// `None` for forced requests' stats: they are not in Prometheus.
    exports: Option<Exports>,
}

/// A folded slot as the replicas of a fleet send it to each other.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SlotSummary {
    /// When the slot closed, by the wall clock (replicas share no
    /// monotonic clock).
    pub ended: std::time::SystemTime,
    pub counts: Counts,
    /// Latencies, packed (`hist.rs`).
    pub samples: Packed,
}

/// `t` by the wall clock.
fn wall(t: Instant) -> std::time::SystemTime {
    std::time::SystemTime::now() - Instant::now().saturating_duration_since(t)
}

/// The fold's reusable histograms, one set per registry, so a tick
/// allocates only the packed slots it keeps.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// Cleared; swapped into a shard in exchange for its full histogram.
    spare: Histogram<u32>,
    /// The slot being folded, all shards merged.
    acc: Histogram<u32>,
    buf: Vec<u8>,
}

// === impl VersionStats ===

impl VersionStats {
    pub(crate) fn new(
        route: Arc<str>,
        version: Option<Arc<str>>,
        enabled: Arc<AtomicBool>,
        settings: Settings,
        export: bool,
    ) -> Self {
        let exports = export.then(|| match &version {
            Some(v) => Exports::version(&route, v),
            None => Exports::route(&route),
        });
        Self {
            shards: Shards::new(settings.shards),
            route,
            version,
            enabled,
            settings,
            ring: Mutex::default(),
            remote: Mutex::default(),
            exports,
        }
    }

    /// Records one attempt (or, for a route, one client request): its
    /// outcome and its latency (request sent → response headers, or until
    /// the failure). Never waits beyond an uncontended lock of this
    /// thread's shard and never allocates after the thread's first record.
    #[inline]
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        self.shards
            .local()
            .lock()
            .record(outcome, hist::micros(latency));
    }

    /// Records one attempt that answered with quality signals
    /// (`[[routes.signals]]`): [`record`](Self::record) plus what the
    /// answer reported, under the same lock.
    #[inline]
    pub fn record_signals(&self, outcome: Outcome, latency: Duration, values: &SignalValues) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut active = self.shards.local().lock();
        active.record(outcome, hist::micros(latency));
        active.counts.record_signals(values);
    }

    /// Names the route's quality signals, by index, for
    /// `serin_signal_total{route,version,signal}` (a compiled table does,
    /// so a reload that renames them is followed).
    pub fn name_signals(&self, names: &[&str]) {
        if let (Some(e), Some(v)) = (&self.exports, &self.version) {
            e.name_signals(&self.route, v, names);
        }
    }

    /// Counts one mirrored answer compared with the live one (a mirror's
    /// stats, `[routes.mirror]`).
    pub fn record_comparison(&self, matched: bool) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut active = self.shards.local().lock();
        active.counts.compared += 1;
        active.counts.mismatched += u64::from(!matched);
    }

    /// Turns one already recorded success into an error: an answer whose
    /// failure shows only at its end (a gRPC `grpc-status` other than 0 in
    /// the trailers). Counted as a `5xx`; its latency stays recorded.
    #[inline]
    pub fn record_late_error(&self) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        self.shards.local().lock().counts.status_5xx += 1;
    }

    /// Counts a failed attempt of this version handed down the fallback
    /// chain (the attempt itself is recorded with [`record`](Self::record)).
    #[inline]
    pub fn record_fallback(&self) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        self.shards.local().lock().counts.fallbacks += 1;
    }

    /// The last `window` of traffic: folded slots whose midpoint lies
    /// within it plus everything recorded since the last tick. Windows
    /// longer than the retention hold what is retained. Each shard is
    /// locked only for a copy of its histogram.
    pub fn window(&self, window: Duration) -> WindowStats {
        let now = Instant::now();
        let mut out = WindowStats::empty(window);
        // Held throughout so a concurrent fold can neither hide the current
        // shards' samples nor count them twice.
        let ring = lock(&self.ring);
        out.add_slots(ring.since(cutoff(now, window, self.settings.slot)));
        let mut copy: Option<Histogram<u32>> = None;
        for shard in self.shards.iter() {
            let active = shard.lock();
            out.add_counts(&active.counts);
            let Some(h) = active.hist.as_ref().filter(|h| !h.is_empty()) else {
                continue;
            };
            let copy = copy.get_or_insert_with(hist::new);
            if !copy.is_empty() {
                copy.reset();
            }
            // Into an empty histogram of the same shape `add` is a memcpy.
            copy.add(h).expect("same shape");
            drop(active);
            out.add_hist(copy);
        }
        out
    }

    /// The last `span` of folded slots cut into `step`-long windows,
    /// oldest first, every step present (an empty one has no requests):
    /// what the status page draws. A slot belongs to the step its midpoint
    /// lies in, as for [`window`](Self::window); what the shards gathered
    /// since the last tick is not read (it is at most one slot old).
    pub fn series(&self, span: Duration, step: Duration) -> Vec<WindowStats> {
        let now = Instant::now();
        let step = step.max(self.settings.slot);
        let steps = (span.as_nanos() / step.as_nanos()).clamp(1, 3600) as usize;
        let mut out: Vec<WindowStats> = (0..steps).map(|_| WindowStats::empty(step)).collect();
        let half = self.settings.slot / 2;
        let ring = lock(&self.ring);
        let mut slots = ring
            .since(cutoff(now, step * steps as u32, self.settings.slot))
            .peekable();
        // Newest step first: slots come newest first.
        for (ago, stats) in out.iter_mut().rev().enumerate() {
            let start = now.checked_sub(step * (ago as u32 + 1));
            let in_step = |s: &&Slot| start.is_none_or(|start| s.end - half >= start);
            stats.add_slots(std::iter::from_fn(|| slots.next_if(in_step)));
        }
        out
    }

    /// As [`window`](Self::window), with the slots the other replicas of
    /// a fleet sent ([`inject`](Self::inject)) added: what the fleet as a
    /// whole saw. Alone, the same as `window`.
    pub fn fleet_window(&self, window: Duration) -> WindowStats {
        let mut out = self.window(window);
        let remote = lock(&self.remote);
        out.add_slots(remote.since(cutoff(Instant::now(), window, self.settings.slot)));
        out
    }

    /// This replica's folded slots that ended after `after` (`None`: all
    /// retained), oldest first, to send to the rest of a fleet.
    pub fn slots_after(&self, after: Option<Instant>) -> Vec<(Instant, SlotSummary)> {
        let ring = lock(&self.ring);
        let mut out: Vec<(Instant, SlotSummary)> = ring
            .since(None)
            .take_while(|s| after.is_none_or(|a| s.end > a))
            .map(|s| {
                let summary = SlotSummary {
                    ended: wall(s.end),
                    counts: s.counts,
                    samples: s.samples.clone(),
                };
                (s.end, summary)
            })
            .collect();
        out.reverse();
        out
    }

    /// Adds a slot another replica folded, for [`fleet_window`]. Slots past
    /// the retention are dropped.
    ///
    /// [`fleet_window`]: Self::fleet_window
    pub fn inject(&self, slot: &SlotSummary) {
        let now = Instant::now();
        let ago = std::time::SystemTime::now()
            .duration_since(slot.ended)
            .unwrap_or_default();
        let Some(end) = now.checked_sub(ago) else {
            return;
        };
        let mut remote = lock(&self.remote);
        remote.insert(Slot {
            end,
            counts: slot.counts,
            samples: slot.samples.clone(),
        });
        remote.prune(cutoff(now, self.settings.retention, self.settings.slot));
    }

    /// Requests and errors over the last `window`, without histograms:
    /// what the breaker monitor reads ten times a second, at the cost of a
    /// few additions (no allocation).
    pub fn tally(&self, window: Duration) -> Tally {
        let now = Instant::now();
        let mut t = Tally::default();
        let ring = lock(&self.ring);
        for slot in ring.since(cutoff(now, window, self.settings.slot)) {
            t.add(&slot.counts);
        }
        for shard in self.shards.iter() {
            t.add(&shard.lock().counts);
        }
        t
    }

    /// The route's name.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The version's name; `None` for a route's end-to-end stats.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Approximate heap bytes held (shards, histograms, folded slots).
    pub fn heap_bytes(&self) -> usize {
        self.shards.heap_bytes() + lock(&self.ring).heap_bytes() + lock(&self.remote).heap_bytes()
    }

    /// Folded slots currently retained.
    pub fn slots(&self) -> usize {
        lock(&self.ring).len()
    }

    /// Closes the current slot at `now`: takes every shard's counters and
    /// histogram (swapping in a cleared one), stores the merge as one packed
    /// slot, publishes it to Prometheus and drops slots past retention.
    pub(crate) fn fold(&self, now: Instant, scratch: &mut Scratch) {
        let mut ring = lock(&self.ring);
        let mut counts = Counts::default();
        for shard in self.shards.iter() {
            let mut active = shard.lock();
            counts.add(&mem::take(&mut active.counts));
            let Some(h) = active.hist.as_mut().filter(|h| !h.is_empty()) else {
                continue;
            };
            mem::swap(h, &mut scratch.spare);
            drop(active);
            scratch.acc.add(&scratch.spare).expect("same shape");
            scratch.spare.reset();
        }
        if !counts.is_empty() {
            let samples = Packed::pack(&scratch.acc, &mut scratch.buf);
            if let Some(e) = &self.exports {
                e.publish(counts.by_outcome(), samples.iter());
                if counts.signals.iter().any(|s| s.hits > 0) {
                    e.publish_signals(counts.signals.iter().map(|s| s.hits));
                }
            }
            ring.push(Slot {
                end: now,
                counts,
                samples,
            });
        }
        if !scratch.acc.is_empty() {
            scratch.acc.reset();
        }
        ring.prune(cutoff(now, self.settings.retention, self.settings.slot));
    }
}

impl fmt::Debug for VersionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionStats")
            .field("route", &self.route)
            .field("version", &self.version)
            .field("slots", &self.slots())
            .finish_non_exhaustive()
    }
}

// === impl Scratch ===

impl Scratch {
    pub(crate) fn new() -> Self {
        Self {
            spare: hist::new(),
            acc: hist::new(),
            buf: Vec::new(),
        }
    }
}

/// Request and error counts over a window (see [`VersionStats::tally`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: u64,
    pub errors: u64,
}

// === impl Tally ===

impl Tally {
    fn add(&mut self, c: &Counts) {
        self.requests += c.requests;
        self.errors += c.errors();
    }

    /// errors / requests; `None` with no requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}
