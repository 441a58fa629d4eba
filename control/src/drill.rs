//! Rollback drills (the seed runbooks' quarterly rehearsals), inside serin:
//! a fault injected into one version's responses for a while — errors at a
//! rate, added latency, or a partial outage — and a report of how fast the
//! engine saw it and pulled the version: detection (fault start → first
//! breach), decision (breach → action), rollback (action → canary at 0).
//!
//! The request path reads one atomic per attempt
//! ([`Fault::active`](crate::handle::Fault::active)); the
//! rest happens only while a drill runs.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::event::{Actor, Draft, Event, EventKind};
use crate::handle::Scenario;
use crate::{Live, LiveError};

/// A drill as asked for (`POST /api/v1/drills`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillSpec {
    pub route: String,
    pub version: String,
    pub scenario: Scenario,
    /// Fraction of attempts for `inject_errors` / `partial_outage`, 0 to 1.
    /// Default 0.5.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub rate: Option<f64>,
    /// Added latency for `inject_latency`, e.g. `"2s"`.
    #[serde(default)]
    #[schema(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", example = "2s")]
    pub latency: Option<String>,
    /// How long the fault lasts, 1s to 1h, e.g. `"60s"`. Default 60s.
    #[serde(default)]
    #[schema(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$", example = "60s")]
    pub duration: Option<String>,
}

/// A drill's report (`GET /api/v1/drills/{id}`); times in seconds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DrillReport {
    pub id: String,
    pub spec: DrillSpec,
    pub state: &'static str,
    pub started: String,
    pub duration_s: f64,
    /// Fault start → first `level_breached` of the route.
    pub detection_s: Option<f64>,
    /// First breach → `rollback_started` (or the route's first action).
    pub decision_s: Option<f64>,
    /// `rollback_started` → `rollback_completed` (canary weight 0).
    pub rollback_s: Option<f64>,
    /// Fault start → canary at 0.
    pub total_s: Option<f64>,
    /// Requests of the route that failed for the client during the drill.
    pub client_errors: u64,
    /// Requests of the route during the drill.
    pub client_requests: u64,
    /// The seed runbooks' expectation for this scenario, in seconds.
    pub expected_under_s: f64,
    /// Events of the route since the drill began.
    pub events: Vec<Event>,
}

/// Drills run and done, by id.
#[derive(Debug, Default)]
pub struct Drills {
    runs: Mutex<Vec<Run>>,
}

#[derive(Debug, Clone)]
struct Run {
    id: String,
    spec: DrillSpec,
    started: SystemTime,
    started_at: Instant,
    duration: Duration,
    first_seq: u64,
}

// === impl Drills ===

impl Drills {
    /// Starts a drill; returns its report so far.
    ///
    /// # Errors
    /// Unknown route or version, a bad rate, latency or duration, or a drill
    /// already running on that version.
    pub fn start(&self, live: &Live, spec: DrillSpec) -> Result<DrillReport, LiveError> {
        let bad = |m: String| LiveError::Invalid(m);
        let snap = live.snapshot();
        let route = snap
            .routes
            .iter()
            .find(|r| *r.name == *spec.route)
            .ok_or_else(|| LiveError::NoRoute(spec.route.clone()))?;
        let version = route
            .versions
            .iter()
            .find(|v| *v.name == *spec.version)
            .ok_or_else(|| LiveError::NoVersion(spec.route.clone(), spec.version.clone()))?;
        let rate = spec.rate.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&rate) {
            return Err(bad(format!("rate must be between 0 and 1, got {rate}")));
        }
        let parse = |s: &Option<String>, default: Duration| match s {
            Some(s) => serin_config::parse_duration(s).map_err(bad),
            None => Ok(default),
        };
        let latency = parse(&spec.latency, Duration::from_secs(2))?;
        let duration = parse(&spec.duration, Duration::from_secs(60))?;
        if duration.is_zero() || duration > Duration::from_secs(3600) {
            return Err(bad("duration must be between 1s and 1h".into()));
        }
        if version.drill.running() {
            return Err(LiveError::Refused(format!(
                "a drill is already running on {}/{}",
                spec.route, spec.version
            )));
        }
        let start = live.shared().events.record(
            Draft::new(
                Actor::Api,
                EventKind::DrillStarted,
                format!(
                    "{} on {} for {}",
                    spec.scenario.as_str(),
                    spec.version,
                    serin_config::format_duration(duration)
                ),
            )
            .route(&spec.route)
            .version(&spec.version),
        );
        version.drill.arm(spec.scenario, rate, latency, duration);
        let run = {
            // Numbered d1, d2, … in the order this process started them.
            let mut runs = self.lock();
            let run = Run {
                id: format!("d{}", runs.len() + 1),
                spec,
                started: SystemTime::now(),
                started_at: Instant::now(),
                duration,
                first_seq: start.seq,
            };
            runs.push(run.clone());
            run
        };
        Ok(report(live, &run))
    }

    /// The report of drill `id`.
    pub fn report(&self, live: &Live, id: &str) -> Option<DrillReport> {
        let run = self.lock().iter().find(|r| r.id == id).cloned()?;
        Some(report(live, &run))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Run>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn report(live: &Live, run: &Run) -> DrillReport {
    let events = live
        .shared()
        .events
        .since(run.first_seq - 1, Some(&run.spec.route));
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e.kind == kind)
            .and_then(|e| humantime::parse_rfc3339(&e.time).ok())
    };
    let secs = |a: Option<SystemTime>, b: Option<SystemTime>| {
        Some(b?.duration_since(a?).unwrap_or_default().as_secs_f64())
    };
    let start = Some(run.started);
    let breach = at("level_breached");
    let action = at("rollback_started")
        .or_else(|| at("paused"))
        .or_else(|| at("alert"));
    let done = at("rollback_completed");
    let elapsed = run.started_at.elapsed().min(run.duration);
    let w = live
        .snapshot()
        .routes
        .iter()
        .find(|r| *r.name == *run.spec.route)
        .map(|r| r.stats.window(elapsed.max(Duration::from_secs(1))));
    DrillReport {
        id: run.id.clone(),
        spec: run.spec.clone(),
        state: if run.started_at.elapsed() < run.duration {
            "running"
        } else {
            "done"
        },
        started: humantime::format_rfc3339_millis(run.started).to_string(),
        duration_s: run.duration.as_secs_f64(),
        detection_s: secs(start, breach),
        decision_s: secs(breach, action),
        rollback_s: secs(action, done),
        total_s: secs(start, done),
        client_errors: w.as_ref().map_or(0, |w| w.errors),
        client_requests: w.as_ref().map_or(0, |w| w.requests),
        expected_under_s: run.spec.scenario.expected().as_secs_f64(),
        events,
    }
}
