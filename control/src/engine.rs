//! The rollout and rollback engine. Every tick (`[engine] tick`, default
//! 100 ms), at once when a breaker opens, and at the instant a confirm or
//! a step wait ends, it reads each canary's telemetry window and the
//! stable version's (windows include the current slot's requests, so a
//! judgement is never more than a tick behind the traffic), judges the
//! route's levels (`decide.rs`, a pure function unit-tested on made-up
//! instants) and applies what was decided (`apply.rs`) through
//! `Live::update` — so every decision is saved, audited with its numbers,
//! and swapped into the table in one store.
//!
//! A level is *breached* while any of its rules holds (with `min_requests`
//! in the window for traffic rules); it *acts* once breached continuously
//! for `confirm`. Too few requests is `inconclusive`: never a rollback,
//! never a promotion. A rollout step waits until every level has been
//! clear for `confirm` (no flapping).

mod actions;
mod apply;
mod decide;
pub(crate) mod levels;
mod tick;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use decide::RouteVerdict;

use crate::event::{Actor, Event, EventKind};
use crate::{Live, LiveError};

/// How a rollback takes the canary's traffic away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RollbackMode {
    /// Canary weights → 0 in one swap.
    Immediate,
    /// Down the route's `gradual.steps`, one every `gradual.every`.
    Gradual,
}

/// The engine's latest verdict per route, for the status API.
#[derive(Debug, Default)]
pub struct Verdicts {
    map: Mutex<BTreeMap<String, RouteVerdict>>,
}

// === impl Verdicts ===

impl Verdicts {
    /// The verdict of `route`, if the engine judged it.
    pub fn get(&self, route: &str) -> Option<RouteVerdict> {
        self.lock().get(route).copied()
    }

    fn set(&self, route: &str, verdict: RouteVerdict) {
        self.lock().insert(route.to_owned(), verdict);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RouteVerdict>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One serin's engine: the task that judges and acts, and the verdicts
/// it reached (what `GET /api/v1/status` quotes).
#[derive(Debug, Default)]
pub struct Engine {
    verdicts: Verdicts,
}

// === impl Engine ===

impl Engine {
    /// The latest verdict per route.
    pub fn verdicts(&self) -> &Verdicts {
        &self.verdicts
    }

    /// Runs the engine over `live` every `tick` (and sooner when a route
    /// asks) until aborted.
    pub fn spawn(self: Arc<Self>, live: Arc<Live>, tick: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(run(self, live, tick))
    }
}

async fn run(engine: Arc<Engine>, live: Arc<Live>, tick: Duration) {
    let mut tracks: HashMap<String, decide::Track> = HashMap::new();
    let mut events = live.shared().events.subscribe();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            e = events.recv() => match e {
                // A breaker that opens is judged at once, not a tick later.
                Ok(e) if e.kind == EventKind::BreakerOpened => {}
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => {}
            },
        }
        // Decisions fsync the state file and the audit log: off the
        // runtime's workers, which serve requests.
        let (l, e) = (live.clone(), engine.clone());
        let (t, wake) = match tokio::task::spawn_blocking(move || {
            let wake = tick::evaluate(&l, &e.verdicts, &mut tracks);
            (tracks, wake)
        })
        .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "engine tick failed");
                (HashMap::new(), None)
            }
        };
        tracks = t;
        let now = tokio::time::Instant::now();
        let tick_at = now + tick;
        // A wake already past (the pass took longer) is served at once.
        next = wake.map_or(tick_at, |w| w.clamp(now, tick_at));
    }
}

/// Rolls `route` back by hand or by the engine: `immediate` records
/// `rollback_started` then `rollback_completed` (canaries at 0, the stable
/// version gets their share, one swap); `gradual` steps down the route's
/// `gradual.steps`, one every `gradual.every`.
///
/// # Errors
/// Unknown route, no canary to roll back, no gradual steps, or a failed save.
pub(crate) fn rollback(
    live: &Live,
    route: &str,
    mode: RollbackMode,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    actions::rollback(live, route, mode, actor, reason)
}

/// Sends all of `route`'s traffic to version `to` at once (a rollback to
/// a chosen release, not only to `stable`): `to` at 100, every other
/// version at 0, the route `rolled_back` until `resume`.
///
/// # Errors
/// Unknown route or version, `to` is the canary being rolled back, or a
/// failed save.
pub(crate) fn rollback_to(
    live: &Live,
    route: &str,
    to: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    actions::rollback_to(live, route, to, actor, reason)
}

/// Moves `route`'s rollout to its next step (or to 100% without steps);
/// 100% makes the route `promoted`.
///
/// # Errors
/// Unknown route, a promoted or rolled-back route, or a failed save.
pub(crate) fn promote(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    actions::promote(live, route, actor, reason)
}

/// Freezes `route`'s rollout or gradual rollback.
///
/// # Errors
/// Unknown route, nothing to pause, or a failed save.
pub(crate) fn pause(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    actions::pause(live, route, actor, reason)
}

/// Unfreezes `route`; brings a rolled-back canary back (at the first
/// rollout step, or at its file weight).
///
/// # Errors
/// Unknown route, nothing to resume, or a failed save.
pub(crate) fn resume(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    actions::resume(live, route, actor, reason)
}
