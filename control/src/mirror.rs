//! What a route's mirror did (`[routes.mirror]`): copies sent, shed and
//! skipped, and the last answers that differed from the live ones, for
//! `GET /api/v1/routes/{route}/mirror`. The copies themselves are sent by
//! the data plane's mirror task; their outcomes and comparisons are
//! telemetry (`Telemetry::mirrored`).
//!
//! Nothing here is on the request path but [`MirrorLog::start`] (one
//! atomic add) for a request chosen to be copied.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::Serialize;

/// Mismatched samples kept per mirror.
pub(crate) const SAMPLES: usize = 20;

/// One mirror's counters and samples; the same across reloads (a
/// [`Registry`](crate::handle::Registry) per (route, version)).
#[derive(Debug, Default)]
pub struct MirrorLog {
    sent: AtomicU64,
    shed: AtomicU64,
    skipped: AtomicU64,
    in_flight: AtomicUsize,
    samples: Mutex<VecDeque<Mismatch>>,
    mismatches: OnceLock<metrics::Counter>,
}

/// A copy in flight: gives its place in the queue back when dropped.
#[derive(Debug)]
pub struct InFlight {
    log: Arc<MirrorLog>,
}

/// Counters as the API shows them.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct MirrorCounts {
    /// Copies sent to the mirrored version since the process started.
    pub sent: u64,
    /// Copies not sent because `queue` copies were already in flight.
    pub shed: u64,
    /// Requests chosen for a copy whose body was over `max_body`.
    pub skipped: u64,
    /// Copies in flight now.
    pub in_flight: usize,
}

/// One copy whose answer differed from the live one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    /// RFC 3339, UTC.
    pub time: String,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// What differed: `status`, `body`, `header:NAME`.
    pub differs: Vec<String>,
    pub live: Answer,
    pub mirror: Answer,
}

/// One side of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// `null` when the copy got no answer (refused, timed out).
    pub status: Option<u16>,
    /// Body bytes seen.
    pub body_bytes: u64,
    /// A 64-bit hash of the body, hex; `null` when the body was not
    /// compared or did not arrive whole.
    pub body_hash: Option<String>,
    /// The compared headers' values (absent ones omitted).
    pub headers: BTreeMap<String, String>,
}

// === impl MirrorLog ===

impl MirrorLog {
    /// Takes a place among `queue` copies in flight, or counts the copy as
    /// shed and returns `None`.
    pub fn start(self: &Arc<Self>, queue: usize) -> Option<InFlight> {
        if self.in_flight.fetch_add(1, Relaxed) >= queue {
            self.in_flight.fetch_sub(1, Relaxed);
            self.shed.fetch_add(1, Relaxed);
            return None;
        }
        self.sent.fetch_add(1, Relaxed);
        Some(InFlight { log: self.clone() })
    }

    /// Counts a request chosen for a copy whose body was too large.
    pub fn skipped(&self) {
        self.skipped.fetch_add(1, Relaxed);
    }

    /// Keeps a mismatch (the last [`SAMPLES`]) and counts it in
    /// `serin_mirror_mismatches_total{route,version}`.
    pub fn mismatch(&self, route: &str, version: &str, m: Mismatch) {
        self.mismatches
            .get_or_init(|| crate::metrics::mirror_mismatches(route, version))
            .increment(1);
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(m);
    }

    pub fn counts(&self) -> MirrorCounts {
        MirrorCounts {
            sent: self.sent.load(Relaxed),
            shed: self.shed.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
        }
    }

    /// The last mismatches, newest first.
    pub fn samples(&self) -> Vec<Mismatch> {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        samples.iter().rev().cloned().collect()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.log.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Now, as a sample's `time`.
pub fn stamp() -> String {
    crate::persist::now()
}
