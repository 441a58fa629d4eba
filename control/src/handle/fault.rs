//! A version's drill fault switch: what the request path reads per
//! attempt (one relaxed load while no drill runs) and what a drill arms.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// What a drill injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// A fraction `rate` of attempts answer 500 without reaching the version.
    InjectErrors,
    /// Every attempt waits `latency` before it is sent.
    InjectLatency,
    /// A fraction `rate` of attempts fail as if the version were unreachable.
    PartialOutage,
}

/// What the request path does for one attempt under a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// Send as usual.
    None,
    /// Do not send: a 5xx.
    Error,
    /// Do not send: unreachable.
    Outage,
    /// Wait this long, then send.
    Delay(Duration),
}

/// One version's fault switch; the same `Arc` across table swaps.
#[derive(Debug, Default)]
pub struct Fault {
    active: AtomicBool,
    scenario: AtomicU8,
    /// `rate` as f64 bits.
    rate: AtomicU64,
    latency_ns: AtomicU64,
    /// Nanoseconds after `epoch()` when the drill ends.
    until_ns: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

// === impl Fault ===

impl Fault {
    /// Whether a drill is on (one relaxed load: the request path's cost).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// What this attempt should do; turns the drill off once it is over.
    pub fn inject(&self) -> Injection {
        if !self.active() {
            return Injection::None;
        }
        let now = Instant::now().saturating_duration_since(epoch()).as_nanos() as u64;
        if now >= self.until_ns.load(Acquire) {
            self.active.store(false, Release);
            return Injection::None;
        }
        let hit = || fastrand::f64() < f64::from_bits(self.rate.load(Relaxed));
        match self.scenario.load(Relaxed) {
            0 if hit() => Injection::Error,
            2 if hit() => Injection::Outage,
            1 => Injection::Delay(Duration::from_nanos(self.latency_ns.load(Relaxed))),
            _ => Injection::None,
        }
    }

    /// Whether a drill is on and not over (an idle version never reaches
    /// [`Fault::inject`], which would turn an expired drill off).
    pub fn running(&self) -> bool {
        let now = Instant::now().saturating_duration_since(epoch()).as_nanos() as u64;
        self.active() && now < self.until_ns.load(Acquire)
    }

    pub(crate) fn arm(&self, scenario: Scenario, rate: f64, latency: Duration, duration: Duration) {
        let s = match scenario {
            Scenario::InjectErrors => 0,
            Scenario::InjectLatency => 1,
            Scenario::PartialOutage => 2,
        };
        self.scenario.store(s, Relaxed);
        self.rate.store(rate.to_bits(), Relaxed);
        self.latency_ns.store(latency.as_nanos() as u64, Relaxed);
        let until = Instant::now().saturating_duration_since(epoch()) + duration;
        self.until_ns.store(until.as_nanos() as u64, Release);
        self.active.store(true, Release);
    }
}

// === impl Scenario ===

impl Scenario {
    /// The name the API takes and events write: `inject_errors`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InjectErrors => "inject_errors",
            Self::InjectLatency => "inject_latency",
            Self::PartialOutage => "partial_outage",
        }
    }

    /// The seed runbooks' expected response time for this drill.
    pub fn expected(self) -> Duration {
        match self {
            Self::InjectErrors => Duration::from_secs(5 * 60),
            Self::InjectLatency => Duration::from_secs(10 * 60),
            Self::PartialOutage => Duration::from_secs(15 * 60),
        }
    }
}
