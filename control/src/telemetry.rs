//! Per-version telemetry measured in-process: attempts, errors by kind,
//! fallbacks and latency histograms, in sliding windows of 1 s slots.
//!
//! # Design
//! The request path calls [`VersionStats::record`]: a relaxed load of the
//! on/off switch, then lock, count, record into an HdrHistogram, unlock —
//! on the calling thread's own shard (`telemetry/shard.rs`). Each thread gets a shard
//! index once, round-robin, so runtime workers write to different shards on
//! different cache lines: no two requests share a lock or a cache line, and
//! the mutex is always uncontended (two atomic operations, no parking). The
//! lock is never held across an await and recording never allocates after a
//! thread's first sample.
//!
//! Once a slot (1 s) a background task calls [`Telemetry::tick`], which
//! folds every `VersionStats`: it takes each shard's counters and swaps its
//! histogram for a cleared spare (the shard is locked only for the swap),
//! merges them into one slot and keeps it packed in the ring (`hist.rs`:
//! non-zero buckets only, ~2 bytes each, instead of a 70 KB dense array).
//! Readers ([`VersionStats::window`]) merge slots under the ring's lock,
//! which `record` never takes, and lock each shard only to copy its
//! histogram, so neither the fold nor a reader stalls a writer for more
//! than a few microseconds once a second.
//!
//! The fold also publishes the slot to Prometheus (`serin_requests_total`,
//! `serin_request_duration_seconds`, see [`crate::metrics`]), so `/metrics`
//! lags by at most one slot. Recording into the exporter's own handles on
//! the request path would make every worker increment the same atomic and
//! push into the same queue, the very sharing the shards avoid.
//!
//! Time is `tokio::time::Instant`, so tests drive windows with a paused
//! clock. Which slots a window reads is described in `telemetry/window.rs`.
//!
//! Memory per version: see [`VersionStats`] (~1.6 MB for 15 minutes at
//! 1k rps with latencies spread 1–200 ms; 2–16 KB while idle).

mod hist;

mod shard;
mod stats;
mod window;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

pub(crate) use crate::outcome::Outcome;
pub use shard::SignalValues;
#[cfg(feature = "fleet")]
pub(crate) use stats::SlotSummary;
pub use stats::VersionStats;
pub(crate) use window::WindowStats;

use shard::lock;
use stats::Scratch;

/// The registry: one [`VersionStats`] per (route, version) and one per
/// route, for the life of the process (config reloads find the same ones).
/// Share it as `Arc<Telemetry>` and run [`Telemetry::spawn`] once.
pub struct Telemetry {
    settings: Settings,
    enabled: Arc<AtomicBool>,
    routes: RwLock<HashMap<Arc<str>, RouteEntry>>,
    scratch: Mutex<Scratch>,
}

/// Sizes every `VersionStats` of a registry shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    slot: Duration,
    retention: Duration,
    shards: usize,
}

#[derive(Debug, Default)]
struct RouteEntry {
    total: Option<Arc<VersionStats>>,
    versions: HashMap<Arc<str>, Arc<VersionStats>>,
    /// Requests that forced their version (`[routes.override]`), apart.
    forced: HashMap<Arc<str>, Arc<VersionStats>>,
    /// Mirrored copies (`[routes.mirror]`), apart.
    mirrored: HashMap<Arc<str>, Arc<VersionStats>>,
}

/// Stats kept apart from a version's own, and from Prometheus.
#[derive(Debug, Clone, Copy)]
enum Apart {
    Forced,
    Mirrored,
}

// === impl Apart ===

impl Apart {
    fn of(self, e: &RouteEntry) -> &HashMap<Arc<str>, Arc<VersionStats>> {
        match self {
            Apart::Forced => &e.forced,
            Apart::Mirrored => &e.mirrored,
        }
    }

    fn of_mut(self, e: &mut RouteEntry) -> &mut HashMap<Arc<str>, Arc<VersionStats>> {
        match self {
            Apart::Forced => &mut e.forced,
            Apart::Mirrored => &mut e.mirrored,
        }
    }
}

// === impl Telemetry ===

impl Telemetry {
    /// 1 s slots kept for [`serin_config::MAX_WINDOW`] (15 minutes): the
    /// longest window the routing file accepts. Installs the Prometheus recorder
    /// ([`crate::metrics::install`], once per process) first, so the handles
    /// every `VersionStats` resolves at registration are live ones.
    pub fn new() -> Self {
        crate::metrics::install();
        Self {
            settings: Settings {
                slot: Duration::from_secs(1),
                retention: serin_config::MAX_WINDOW,
                shards: shard::default_count(),
            },
            enabled: Arc::new(AtomicBool::new(true)),
            routes: RwLock::default(),
            scratch: Mutex::new(Scratch::new()),
        }
    }

    /// Keeps slots for `retention` (the longest window any rule or breaker
    /// reads). Set it before the first `version`/`route` call.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.settings.retention = retention;
        self
    }

    /// Folds every `slot` instead of every second (tests, coarse setups).
    /// Set it before the first `version`/`route` call.
    pub fn with_slot(mut self, slot: Duration) -> Self {
        self.settings.slot = slot;
        self
    }

    /// The slot length.
    pub fn slot(&self) -> Duration {
        self.settings.slot
    }

    /// How long slots are kept.
    pub fn retention(&self) -> Duration {
        self.settings.retention
    }

    /// Per-attempt stats of `version` of `route`: made on first use, then
    /// the same `Arc` for the life of the registry.
    pub fn version(&self, route: &str, version: &str) -> Arc<VersionStats> {
        if let Some(s) = self.read(|routes| routes.get(route)?.versions.get(version).cloned()) {
            return s;
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let (route, entry) = Self::entry(&mut routes, route);
        entry
            .versions
            .entry(version.into())
            .or_insert_with_key(|version| Arc::new(self.stats(route, Some(version.clone()))))
            .clone()
    }

    /// Stats of the requests that forced `version` of `route` (a header or
    /// cookie of `[routes.override]`): kept apart from the version's own,
    /// so rules judge users' traffic only, and not exported to Prometheus.
    pub fn forced(&self, route: &str, version: &str) -> Arc<VersionStats> {
        self.apart(route, version, Apart::Forced)
    }

    /// Stats of the copies `[routes.mirror]` sends to `version` of `route`,
    /// with their comparisons: apart from the version's own (no user saw
    /// these answers) and not exported to Prometheus.
    pub fn mirrored(&self, route: &str, version: &str) -> Arc<VersionStats> {
        self.apart(route, version, Apart::Mirrored)
    }

    fn apart(&self, route: &str, version: &str, kind: Apart) -> Arc<VersionStats> {
        if let Some(s) = self.read(|routes| kind.of(routes.get(route)?).get(version).cloned()) {
            return s;
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let (route, entry) = Self::entry(&mut routes, route);
        kind.of_mut(entry)
            .entry(version.into())
            .or_insert_with_key(|version| {
                Arc::new(VersionStats::new(
                    route,
                    Some(version.clone()),
                    self.enabled.clone(),
                    self.settings,
                    false,
                ))
            })
            .clone()
    }

    /// End-to-end stats of `route` as the client sees it (one record per
    /// client request, whatever the fallback chain did); same `Arc` rule.
    pub fn route(&self, route: &str) -> Arc<VersionStats> {
        if let Some(s) = self.read(|routes| routes.get(route)?.total.clone()) {
            return s;
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let (route, entry) = Self::entry(&mut routes, route);
        entry
            .total
            .get_or_insert_with(|| Arc::new(self.stats(route, None)))
            .clone()
    }

    /// Every version registered under `route`, sorted by name.
    pub fn versions(&self, route: &str) -> Vec<Arc<VersionStats>> {
        let mut all: Vec<Arc<VersionStats>> = self
            .read(|routes| Some(routes.get(route)?.versions.values().cloned().collect()))
            .unwrap_or_default();
        all.sort_by(|a, b| a.version().cmp(&b.version()));
        all
    }

    /// Forgets stats `keep` rejects, called as `(route, None)` for a route's
    /// end-to-end stats and `(route, Some(version))` for each version (e.g.
    /// after a reload removed them). Their Prometheus series stay.
    pub fn retain(&self, mut keep: impl FnMut(&str, Option<&str>) -> bool) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.retain(|route, entry| {
            entry.total.take_if(|_| !keep(route, None));
            entry.versions.retain(|v, _| keep(route, Some(v)));
            entry.forced.retain(|v, _| keep(route, Some(v)));
            entry.mirrored.retain(|v, _| keep(route, Some(v)));
            entry.total.is_some() || !entry.versions.is_empty()
        });
    }

    /// Turns recording on or off everywhere at once (a benchmark compares
    /// the two in one run). Off, `record` returns after one relaxed load.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Whether `record` records.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The `serin_fallbacks_total{route,from,to}` counter: resolve it when
    /// compiling a table, increment it on the request path (a fallback is
    /// the rare path, so one shared atomic is fine there).
    pub fn fallback_counter(&self, route: &str, from: &str, to: &str) -> ::metrics::Counter {
        crate::metrics::fallback_counter(route, from, to)
    }

    /// Closes the current slot of every stats (see the module doc). Called
    /// every slot by [`spawn`](Self::spawn); tests call it by hand.
    pub fn tick(&self) {
        let now = Instant::now();
        // Collected first so registration never waits for a whole fold.
        let all: Vec<Arc<VersionStats>> = self
            .read(|routes| {
                Some(
                    routes
                        .values()
                        .flat_map(|e| {
                            e.total
                                .iter()
                                .chain(e.versions.values())
                                .chain(e.forced.values())
                                .chain(e.mirrored.values())
                        })
                        .cloned()
                        .collect(),
                )
            })
            .unwrap_or_default();
        let mut scratch = lock(&self.scratch);
        for stats in &all {
            stats.fold(now, &mut scratch);
        }
    }

    /// The folding task: [`tick`](Self::tick) every slot on the tokio
    /// clock, plus the Prometheus exporter's upkeep. It holds only a `Weak`,
    /// so it ends once every other `Arc` is gone (or when aborted).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let this: Weak<Self> = Arc::downgrade(self);
        let slot = self.settings.slot;
        tokio::spawn(async move {
            let mut every = tokio::time::interval_at(Instant::now() + slot, slot);
            // A late tick folds a longer slot rather than a burst of empty ones.
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(this) = this.upgrade() else { break };
                this.tick();
                drop(this);
                crate::metrics::upkeep();
            }
        })
    }

    fn read<T>(&self, f: impl FnOnce(&HashMap<Arc<str>, RouteEntry>) -> Option<T>) -> Option<T> {
        f(&self.routes.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn entry<'a>(
        routes: &'a mut HashMap<Arc<str>, RouteEntry>,
        route: &str,
    ) -> (Arc<str>, &'a mut RouteEntry) {
        let key: Arc<str> = match routes.get_key_value(route) {
            Some((k, _)) => k.clone(),
            None => route.into(),
        };
        let entry = routes.entry(key.clone()).or_default();
        (key, entry)
    }

    fn stats(&self, route: Arc<str>, version: Option<Arc<str>>) -> VersionStats {
        VersionStats::new(route, version, self.enabled.clone(), self.settings, true)
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = self.read(|r| Some(r.len())).unwrap_or(0);
        f.debug_struct("Telemetry")
            .field("settings", &self.settings)
            .field("enabled", &self.is_enabled())
            .field("routes", &routes)
            .finish_non_exhaustive()
    }
}

/// A 60 s window of `ok` successes and `errors` 5xx answers, each taking
/// `latency`, from a registry of its own (unit tests of the rules).
#[cfg(test)]
pub(crate) fn test_window(ok: u64, errors: u64, latency: Duration) -> WindowStats {
    let t = Telemetry::new();
    let v = t.version("r", "v");
    for _ in 0..ok {
        v.record(Outcome::Success, latency);
    }
    for _ in 0..errors {
        v.record(Outcome::Status5xx, latency);
    }
    v.window(Duration::from_secs(60))
}

#[cfg(test)]
mod tests;
