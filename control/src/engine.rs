//! The rollout and rollback engine. (Being written: the actions below are
//! the API the REST handlers call; the periodic evaluator lands next.)

use serde::Deserialize;

use crate::event::{Actor, Event};
use crate::{Live, LiveError};

/// How a rollback takes the canary's traffic away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackMode {
    /// Canary weights → 0 in one swap.
    Immediate,
    /// Down the route's `gradual.steps`, one every `gradual.every`.
    Gradual,
}

/// Rolls `route` back by hand or by the engine.
///
/// # Errors
/// Unknown route, a route with nothing to roll back, or a failed save.
pub fn rollback(live: &Live, route: &str, mode: RollbackMode, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    let _ = (live, mode, actor, reason);
    Err(LiveError::Refused(format!("route {route}: rollback is not available yet")))
}

/// Moves `route`'s rollout to its next step (or to 100% without steps).
///
/// # Errors
/// As [`rollback`].
pub fn promote(live: &Live, route: &str, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    let _ = (live, actor, reason);
    Err(LiveError::Refused(format!("route {route}: promote is not available yet")))
}

/// Freezes `route`'s rollout.
///
/// # Errors
/// As [`rollback`].
pub fn pause(live: &Live, route: &str, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    let _ = (live, actor, reason);
    Err(LiveError::Refused(format!("route {route}: pause is not available yet")))
}

/// Unfreezes `route`'s rollout; also brings a rolled-back canary back.
///
/// # Errors
/// As [`rollback`].
pub fn resume(live: &Live, route: &str, actor: Actor, reason: &str) -> Result<Event, LiveError> {
    let _ = (live, actor, reason);
    Err(LiveError::Refused(format!("route {route}: resume is not available yet")))
}
