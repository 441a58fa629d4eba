//! The one place the engine's decisions change anything: each
//! [`Decision`] becomes an event, a verdict, or an action through
//! `actions.rs` (saved, audited and swapped by `Live::update`).

use serin_config::Route;

use super::actions;
use super::decide::Decision;
use super::Verdicts;
use crate::event::{Actor, Draft};
use crate::{Live, LiveError};

/// Carries out `d` for route `r`.
///
/// # Errors
/// The action was refused or could not be saved: nothing changed.
pub(super) fn apply(
    live: &Live,
    verdicts: &Verdicts,
    r: &Route,
    d: Decision,
) -> Result<(), LiveError> {
    let name = r.name.as_str();
    match d {
        Decision::Note(kind, reason) => {
            live.shared()
                .events
                .record(Draft::new(Actor::Engine, kind, reason).route(name));
            Ok(())
        }
        Decision::Verdict(v) => {
            verdicts.set(name, v);
            Ok(())
        }
        Decision::StartRollout => {
            actions::promote(live, name, Actor::Engine, "rollout started").map(drop)
        }
        Decision::Rollback { mode, reason, .. } => {
            super::rollback(live, name, mode, Actor::Engine, &reason).map(drop)
        }
        Decision::Pause { reason, .. } => {
            super::pause(live, name, Actor::Engine, &reason).map(drop)
        }
        Decision::GradualStep { step, reason } => {
            actions::rollback_step(live, name, step, &reason).map(drop)
        }
        Decision::Complete { reason } => {
            actions::complete(live, name, Actor::Engine, &reason).map(drop)
        }
        Decision::RolloutStep { reason } => {
            actions::promote(live, name, Actor::Engine, &reason).map(drop)
        }
    }
}
