//! The rollout and rollback engine: every tick (default 1 s, and at once
//! when a breaker opens) it reads each canary's telemetry window and the
//! stable version's, judges the route's levels, and acts through
//! `Live::update` — so every decision is saved, audited with its numbers,
//! and swapped into the table in one store.
//!
//! A level is *breached* while any of its rules holds (with `min_requests`
//! in the window for traffic rules); it *acts* once breached continuously
//! for `confirm`. Too few requests is `inconclusive`: never a rollback,
//! never a promotion. A rollout step waits until every level has been
//! clear for `confirm` (no flapping).

mod actions;
pub mod levels;
mod tick;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::event::{Actor, Event};
use crate::{Live, LiveError};

/// How a rollback takes the canary's traffic away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackMode {
    /// Canary weights → 0 in one swap.
    Immediate,
    /// Down the route's `gradual.steps`, one every `gradual.every`.
    Gradual,
}

/// The engine's latest verdict per route, for the status API.
#[derive(Debug, Default)]
pub struct Verdicts {
    map: Mutex<BTreeMap<String, String>>,
}

/// In-memory timing of one route (lost on restart, which only restarts
/// confirmation: the decisions themselves are in the saved state).
#[derive(Debug, Default)]
struct Track {
    /// The persisted (phase, step, since) this timing belongs to.
    key: Option<(crate::persist::Phase, Option<usize>, Option<String>)>,
    /// When this phase and step began, as the engine saw it.
    since: Option<Instant>,
    /// Since when each level (critical, warning, watch) has been breached.
    breached: [Option<Instant>; 3],
    /// Since when no level has been breached.
    clear_since: Option<Instant>,
    /// Whether the current breach of each level has acted already.
    acted: [bool; 3],
    /// When the current rollout or gradual step began.
    step_at: Option<Instant>,
    /// Last verdict word, to record changes only.
    verdict: String,
    /// Shadow rules holding now (to record changes only).
    shadow: Vec<String>,
}

// === impl Verdicts ===

impl Verdicts {
    /// The verdict of `route`, if the engine judged it.
    pub fn get(&self, route: &str) -> Option<String> {
        self.lock().get(route).cloned()
    }

    fn set(&self, route: &str, verdict: &str) {
        self.lock().insert(route.to_owned(), verdict.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the engine every `tick` until aborted.
pub fn spawn(live: Arc<Live>, tick: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tracks: HashMap<String, Track> = HashMap::new();
        let mut events = live.shared().events.subscribe();
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                e = events.recv() => match e {
                    // A breaker that opens is judged at once, not a tick later.
                    Ok(e) if e.kind == "breaker_opened" => {}
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => {}
                },
            }
            // Decisions fsync the state file and the audit log: off the
            // runtime's workers, which serve requests.
            let l = live.clone();
            tracks = match tokio::task::spawn_blocking(move || {
                tick::evaluate(&l, &mut tracks);
                tracks
            })
            .await
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "engine tick failed");
                    HashMap::new()
                }
            };
        }
    })
}

/// Rolls `route` back by hand or by the engine: `immediate` records
/// `rollback_started` then `rollback_completed` (canaries at 0, the stable
/// version gets their share, one swap); `gradual` steps down the route's
/// `gradual.steps`, one every `gradual.every`.
///
/// # Errors
/// Unknown route, no canary to roll back, no gradual steps, or a failed save.
pub fn rollback(
    live: &Live,
    route: &str,
    mode: RollbackMode,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    actions::rollback(live, route, mode, actor, reason)
}

/// Moves `route`'s rollout to its next step (or to 100% without steps);
/// 100% makes the route `promoted`.
///
/// # Errors
/// Unknown route, a promoted or rolled-back route, or a failed save.
pub fn promote(live: &Live, route: &str, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    actions::promote(live, route, actor, reason)
}

/// Freezes `route`'s rollout or gradual rollback.
///
/// # Errors
/// Unknown route, nothing to pause, or a failed save.
pub fn pause(live: &Live, route: &str, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    actions::pause(live, route, actor, reason)
}

/// Unfreezes `route`; brings a rolled-back canary back (at the first
/// rollout step, or at its file weight).
///
/// # Errors
/// Unknown route, nothing to resume, or a failed save.
pub fn resume(live: &Live, route: &str, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    actions::resume(live, route, actor, reason)
}
