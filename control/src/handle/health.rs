//! Active health checks: the health of one (route, version) as an atomic
//! the request path reads, and the transitions probe results drive.
//!
//! Who does what: the prober task (`health.rs`) probes every version
//! of a route with `[routes.health_check]` and feeds each result to
//! [`Health::observe`]; the pick skips a version while
//! [`Health::is_unhealthy`] (one atomic load); the rollback engine reads the
//! same bit for its `unhealthy` rule and quotes [`Health::last_failures`].
//! Counters and failure reasons sit behind a control-side lock the request
//! path never takes.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::*};
use std::sync::Mutex;

/// What the health check says about a version. `repr(u8)` is the stored
/// value; `Unknown` (no verdict yet) counts as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    Unknown = 0,
    Healthy = 1,
    Unhealthy = 2,
}

/// One version's health. Kept across table swaps (the registry hands out
/// the same `Arc` for the same route and version).
#[derive(Debug, Default)]
pub struct Health {
    state: AtomicU8,
    tally: Mutex<Tally>,
}

/// A change of state made by one probe result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state the result found.
    pub before: HealthState,
    /// The state it left.
    pub after: HealthState,
    /// The probe results that decided, e.g. `3 failed probes (HTTP 503, timeout, HTTP 503)`.
    pub reason: String,
}

/// The last probe results, control-side only.
#[derive(Debug, Default)]
struct Tally {
    /// Consecutive successes (reset by a failure).
    successes: u32,
    /// Consecutive failures (reset by a success).
    failures: u32,
    /// Failures in the latest run of failures. Unlike `failures`, a success
    /// does not clear it (the next failure does), so the reason of an
    /// unhealthy verdict can still be quoted while recovery probes succeed.
    run: u32,
    /// The last [`REASONS`] failures of that run, oldest first.
    reasons: VecDeque<Failure>,
    last_ok: bool,
}

/// Failure reasons kept for the reason text.
const REASONS: usize = 5;

// === impl HealthState ===

impl HealthState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Healthy,
            2 => Self::Unhealthy,
            _ => Self::Unknown,
        }
    }

    /// `healthy`, `unhealthy` or `unknown`, as in the status API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Health ===

impl Health {
    /// A version nobody has probed yet (`unknown`).
    pub fn new() -> Self {
        Self::default()
    }

    /// True while the health check says the version is down. The pick and
    /// the rollback engine read this; `unknown` is not unhealthy.
    #[inline]
    pub fn is_unhealthy(&self) -> bool {
        self.state.load(Relaxed) == HealthState::Unhealthy as u8
    }

    /// The current state.
    pub fn state(&self) -> HealthState {
        HealthState::from_u8(self.state.load(Acquire))
    }

    /// `healthy`, `unhealthy` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        self.state().as_str()
    }

    /// The latest run of failed probes, e.g. `3 failed probes (HTTP 500,
    /// timeout, HTTP 500)`, for the engine's reason text; `no failed probes`
    /// when there was none since the check started.
    pub fn last_failures(&self) -> String {
        self.tally().describe_failures()
    }

    /// Feeds one probe result (`Ok` = 2xx/3xx) under the route's thresholds
    /// and returns the transition it caused, if any. From `unknown`, the
    /// first threshold reached decides.
    pub fn observe(
        &self,
        result: Result<(), Failure>,
        unhealthy_after: u32,
        healthy_after: u32,
    ) -> Option<Transition> {
        let mut tally = self.tally();
        let before = self.state();
        let (after, reason) = match result {
            Ok(()) => {
                tally.successes = tally.successes.saturating_add(1);
                tally.failures = 0;
                tally.last_ok = true;
                let n = tally.successes;
                (n >= healthy_after.max(1) && before != HealthState::Healthy)
                    .then(|| (HealthState::Healthy, successes(n)))?
            }
            Err(failure) => {
                if tally.last_ok || tally.run == 0 {
                    tally.run = 0;
                    tally.reasons.clear();
                }
                tally.last_ok = false;
                tally.run = tally.run.saturating_add(1);
                if tally.reasons.len() == REASONS {
                    tally.reasons.pop_front();
                }
                tally.reasons.push_back(failure);
                tally.successes = 0;
                tally.failures = tally.failures.saturating_add(1);
                let n = tally.failures;
                (n >= unhealthy_after.max(1) && before != HealthState::Unhealthy)
                    .then(|| (HealthState::Unhealthy, tally.describe_failures()))?
            }
        };
        // The tally lock serialises writers, so the swap cannot race another
        // observe; readers see the new state with one load.
        self.state.store(after as u8, Release);
        Some(Transition {
            before,
            after,
            reason,
        })
    }

    /// Forgets the counters (not the state): the check restarted with new
    /// settings, so earlier results do not count towards its thresholds.
    pub fn restart_counts(&self) {
        let mut tally = self.tally();
        tally.successes = 0;
        tally.failures = 0;
    }

    /// Back to `unknown` with nothing counted (the check was removed).
    /// Returns the state it had.
    pub fn reset(&self) -> HealthState {
        let mut tally = self.tally();
        *tally = Tally::default();
        HealthState::from_u8(self.state.swap(HealthState::Unknown as u8, AcqRel))
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // Every field is valid after any partial update, so poisoning is ignored.
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// === impl Tally ===

impl Tally {
    fn describe_failures(&self) -> String {
        if self.run == 0 {
            return "no failed probes".to_owned();
        }
        let noun = if self.run == 1 { "probe" } else { "probes" };
        let more = if self.run as usize > self.reasons.len() {
            "…, "
        } else {
            ""
        };
        let list: Vec<String> = self.reasons.iter().map(ToString::to_string).collect();
        format!("{} failed {noun} ({more}{})", self.run, list.join(", "))
    }
}

fn successes(n: u32) -> String {
    let noun = if n == 1 { "probe" } else { "probes" };
    format!("{n} successful {noun}")
}

/// Why a probe failed; `Display` is the word in reasons (`HTTP 503`, `timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An answer outside 2xx/3xx.
    Status(u16),
    /// No response headers (or no connection) within the timeout.
    Timeout,
    /// The connection was refused.
    Refused,
    /// The connection was reset or closed before an answer.
    Reset,
    /// Anything else (bad address, protocol error).
    Error,
}

// === impl Failure ===

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(code) => write!(f, "HTTP {code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Refused => f.write_str("refused"),
            Self::Reset => f.write_str("reset"),
            Self::Error => f.write_str("error"),
        }
    }
}
