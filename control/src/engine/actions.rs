//! Engine actions on a route's live state — by the engine or by hand (the
//! REST API): roll back, step a rollout, pause, resume. Each is one or two
//! `Live::update` calls, so each change is saved, audited and swapped.

use std::collections::BTreeMap;

use serin_config::{Config, Route};

use super::RollbackMode;
use crate::event::{Actor, Draft, Event, EventKind};
use crate::persist::{now, LiveState, Phase};
use crate::{Live, LiveError};

/// The route's configuration.
pub(super) fn route_cfg<'a>(config: &'a Config, route: &str) -> Result<&'a Route, LiveError> {
    config
        .routes
        .iter()
        .find(|r| r.name == route)
        .ok_or_else(|| LiveError::NoRoute(route.to_owned()))
}

/// The version that gets traffic back: `rollback.stable`, else the first.
pub(super) fn stable_of(route: &Route) -> &str {
    route
        .rollback
        .as_ref()
        .map_or(route.versions[0].name.as_str(), |r| r.stable.as_str())
}

/// Live weights: the file's under the state's overrides.
pub(super) fn weights(route: &Route, state: &LiveState) -> BTreeMap<String, f64> {
    let o = state.weights.get(&route.name);
    route
        .versions
        .iter()
        .map(|v| {
            let w = o.and_then(|o| o.get(&v.name)).copied().unwrap_or(v.weight);
            (v.name.clone(), w)
        })
        .collect()
}

/// The versions the engine judges: those other than the stable one that
/// have traffic, and the version `[routes.mirror]` copies to, judged before
/// any user is sent to it (a canary at weight 0).
pub(super) fn canaries(route: &Route, state: &LiveState) -> Vec<String> {
    let mut out = live_canaries(route, state);
    if let Some(m) = &route.mirror {
        if m.to != stable_of(route) && !out.contains(&m.to) {
            out.push(m.to.clone());
        }
    }
    out
}

/// Versions other than the stable one that have traffic.
fn live_canaries(route: &Route, state: &LiveState) -> Vec<String> {
    let stable = stable_of(route);
    weights(route, state)
        .into_iter()
        .filter(|(n, w)| n != stable && *w > 0.0)
        .map(|(n, _)| n)
        .collect()
}

/// The canaries' share of the route, in [0, 1].
pub(super) fn canary_share(route: &Route, state: &LiveState, canaries: &[String]) -> f64 {
    let w = weights(route, state);
    let total: f64 = w.values().sum();
    if total <= 0.0 {
        return 0.0;
    }
    canaries.iter().filter_map(|c| w.get(c)).sum::<f64>() / total
}

/// Sets the canaries' share to `share` (weights out of 100): the stable
/// version gets the rest, the canaries split their share as their weights
/// did (evenly when they had none), every other version gets 0.
pub(super) fn set_share(route: &Route, state: &mut LiveState, canaries: &[String], share: f64) {
    let before = weights(route, state);
    let stable = stable_of(route).to_owned();
    let old: f64 = canaries.iter().filter_map(|c| before.get(c)).sum();
    let out = state.weights.entry(route.name.clone()).or_default();
    for v in &route.versions {
        let w = if v.name == stable {
            100.0 * (1.0 - share)
        } else if canaries.contains(&v.name) {
            let part = if old > 0.0 {
                before.get(&v.name).copied().unwrap_or(0.0) / old
            } else {
                1.0 / canaries.len() as f64
            };
            100.0 * share * part
        } else {
            0.0
        };
        out.insert(v.name.clone(), round(w));
    }
}

/// Weights to 1e-6 of a percent: no float dust in the status API.
fn round(w: f64) -> f64 {
    (w * 1e6).round() / 1e6
}

fn canary_id(route: &Route, name: &str) -> Option<(String, String)> {
    route
        .versions
        .iter()
        .find(|v| v.name == name)
        .map(|v| (v.name.clone(), v.url.to_string()))
}

fn set_phase(
    state: &mut LiveState,
    route: &str,
    phase: Phase,
    step: Option<usize>,
    canary: Option<(String, String)>,
) {
    let rs = state.routes.entry(route.to_owned()).or_default();
    rs.phase = phase;
    rs.step = step;
    rs.since = Some(now());
    if canary.is_some() {
        rs.canary = canary;
    }
}

/// Rolls `route` back (see `engine::rollback`). An immediate rollback is
/// one state change (canaries to 0) announced by a `rollback_started`
/// event: a crash between the two leaves the route as it was, never half
/// rolled back.
pub(super) fn rollback(
    live: &Live,
    route: &str,
    mode: RollbackMode,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    let no_canary = || LiveError::Refused(format!("route {route} has no canary to roll back"));
    // A canary no user reaches yet (the mirror's, at weight 0) has no
    // steps to go down: it is rolled back at once.
    let mode = match mode {
        RollbackMode::Gradual => {
            let config = live.config();
            let r = route_cfg(&config, route)?;
            let state = live.state();
            if canary_share(r, &state, &canaries(r, &state)) <= 0.0 {
                RollbackMode::Immediate
            } else {
                mode
            }
        }
        RollbackMode::Immediate => mode,
    };
    match mode {
        RollbackMode::Immediate => {
            let config = live.config();
            if canaries(route_cfg(&config, route)?, &live.state()).is_empty() {
                return Err(no_canary());
            }
            live.shared().events.record(
                Draft::new(
                    actor,
                    EventKind::RollbackStarted,
                    format!("{reason}; immediate"),
                )
                .route(route),
            );
            crate::metrics::rollback(route, "immediate");
            complete(live, route, actor, reason)
        }
        RollbackMode::Gradual => {
            let draft = Draft::new(
                actor,
                EventKind::RollbackStarted,
                format!("{reason}; gradual"),
            );
            let started = live.update(draft.route(route), |config, state| {
                let r = route_cfg(config, route)?;
                let cs = canaries(r, state);
                let canary = cs
                    .first()
                    .and_then(|c| canary_id(r, c))
                    .ok_or_else(no_canary)?;
                let steps = gradual_steps(r)?;
                let share = canary_share(r, state, &cs);
                // Start at the first step below where the canary is now.
                let at = steps
                    .iter()
                    .position(|s| *s < share)
                    .unwrap_or(steps.len() - 1);
                set_share(r, state, &cs, steps[at]);
                let phase = if steps[at] <= 0.0 {
                    Phase::RolledBack
                } else {
                    Phase::RollingBack
                };
                set_phase(state, route, phase, Some(at), Some(canary));
                Ok(())
            })?;
            crate::metrics::rollback(route, "gradual");
            // A canary already at or below every step but 0% went straight
            // to 0: that is the rollback's end, recorded as every end is.
            if live.state().routes.get(route).map(|s| s.phase) == Some(Phase::RolledBack) {
                let done = Draft::new(
                    actor,
                    EventKind::RollbackCompleted,
                    format!("{reason}; gradual: the first step down is 0%"),
                );
                live.shared().events.record(done.route(route));
                crate::incident::close(live, route, actor);
            }
            Ok(started)
        }
    }
}

fn gradual_steps(r: &Route) -> Result<Vec<f64>, LiveError> {
    r.rollback
        .as_ref()
        .and_then(|rb| rb.gradual.as_ref())
        .map(|g| g.steps.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            LiveError::Refused(format!(
                "route {} has no [routes.rollback] gradual steps",
                r.name
            ))
        })
}

/// All traffic to `to` (see `engine::rollback_to`).
pub(super) fn rollback_to(
    live: &Live,
    route: &str,
    to: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    // The same checks as in the change, before `rollback_started` is
    // recorded: a refused call leaves no event.
    check_to(route_cfg(&live.config(), route)?, &live.state(), to)?;
    let reason = format!("{reason}; all traffic to {to}");
    let draft = Draft::new(actor, EventKind::RollbackStarted, reason.clone());
    live.shared().events.record(draft.route(route));
    crate::metrics::rollback(route, "immediate");
    live.update(
        Draft::new(actor, EventKind::RollbackCompleted, reason).route(route),
        |config, state| {
            let r = route_cfg(config, route)?;
            check_to(r, state, to)?;
            let cs = canaries(r, state);
            let out = state.weights.entry(route.to_owned()).or_default();
            for v in &r.versions {
                out.insert(v.name.clone(), if v.name == to { 100.0 } else { 0.0 });
            }
            let canary = cs.iter().find(|c| *c != to).and_then(|c| canary_id(r, c));
            set_phase(state, route, Phase::RolledBack, None, canary);
            Ok(())
        },
    )
    .inspect(|_| crate::incident::close(live, route, actor))
}

/// `to` is a version of `r` other than its only canary.
fn check_to(r: &Route, state: &LiveState, to: &str) -> Result<(), LiveError> {
    if !r.versions.iter().any(|v| v.name == to) {
        return Err(LiveError::NoVersion(r.name.clone(), to.to_owned()));
    }
    if canaries(r, state) == [to] {
        return Err(LiveError::Refused(format!(
            "{to} is the canary of route {}: roll back to another version, or promote it",
            r.name
        )));
    }
    Ok(())
}

/// Takes the canaries of `route` to 0 at once: the end of any rollback.
pub(super) fn complete(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    live.update(
        Draft::new(actor, EventKind::RollbackCompleted, reason).route(route),
        |config, state| {
            let r = route_cfg(config, route)?;
            let cs = canaries(r, state);
            set_share(r, state, &cs, 0.0);
            let canary = cs.first().and_then(|c| canary_id(r, c));
            set_phase(state, route, Phase::RolledBack, None, canary);
            Ok(())
        },
    )
    .inspect(|_| crate::incident::close(live, route, actor))
}

/// One gradual-rollback step down (to `step`).
pub(super) fn rollback_step(
    live: &Live,
    route: &str,
    step: usize,
    reason: &str,
) -> Result<Event, LiveError> {
    live.update(
        Draft::new(Actor::Engine, EventKind::RollbackStep, reason).route(route),
        |config, state| {
            let r = route_cfg(config, route)?;
            let steps = gradual_steps(r)?;
            let cs = canaries(r, state);
            let share = steps.get(step).copied().unwrap_or(0.0);
            set_share(r, state, &cs, share);
            let phase = if share <= 0.0 {
                Phase::RolledBack
            } else {
                Phase::RollingBack
            };
            set_phase(state, route, phase, Some(step), None);
            Ok(())
        },
    )
}

/// Moves the rollout one step (or to 100% without `[routes.rollout]`).
/// Every check is made on the state being changed, under `Live`'s lock, so
/// a promote racing a rollback cannot undo it.
pub(super) fn promote(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    let draft = Draft::new(actor, EventKind::RolloutStep, reason).route(route);
    live.update_with(draft, |config, state, draft| {
        let r = route_cfg(config, route)?;
        let rs = state.routes.get(route).cloned().unwrap_or_default();
        if matches!(
            rs.phase,
            Phase::Promoted | Phase::RolledBack | Phase::RollingBack
        ) {
            return Err(LiveError::Refused(format!(
                "route {route} is {}: nothing to promote",
                rs.phase.as_str()
            )));
        }
        let steps = r
            .rollout
            .as_ref()
            .map(|o| o.steps.clone())
            .unwrap_or_default();
        let next = rs.step.map_or(0, |s| s + 1);
        let share = steps.get(next).copied().unwrap_or(1.0);
        let cs = match &rs.canary {
            Some((name, _)) if r.versions.iter().any(|v| v.name == *name) => vec![name.clone()],
            _ => rollout_canaries(r, state),
        };
        let Some(canary) = cs.first().and_then(|c| canary_id(r, c)) else {
            return Err(LiveError::Refused(format!(
                "route {route} has no canary to promote"
            )));
        };
        set_share(r, state, &cs, share);
        let promoted = share >= 1.0;
        let phase = if promoted {
            Phase::Promoted
        } else {
            Phase::Progressing
        };
        set_phase(
            state,
            route,
            phase,
            Some(next.min(steps.len())),
            Some(canary),
        );
        draft.kind = if promoted {
            EventKind::Promoted
        } else {
            EventKind::RolloutStep
        };
        draft.reason = format!("{}; canary to {}%", draft.reason, round(share * 100.0));
        Ok(())
    })
}

/// The rollout's canaries: the live ones, else those the file gives a
/// weight (a route whose canary was rolled back and resumed), else the last
/// version in the file other than the stable one — how a new version is
/// written in: appended, at weight 0, for the rollout to bring in (a
/// previous release kept at weight 0 for the fallback chain, above it, is
/// not part of the rollout).
fn rollout_canaries(r: &Route, state: &LiveState) -> Vec<String> {
    let live = live_canaries(r, state);
    if !live.is_empty() {
        return live;
    }
    let stable = stable_of(r);
    // The version the route mirrors to is the one its copies judged.
    if let Some(m) = r.mirror.as_ref().filter(|m| m.to != stable) {
        return vec![m.to.clone()];
    }
    let others = r.versions.iter().filter(|v| v.name != stable);
    let weighted: Vec<String> = others
        .clone()
        .filter(|v| v.weight > 0.0)
        .map(|v| v.name.clone())
        .collect();
    if !weighted.is_empty() {
        return weighted;
    }
    others.last().map(|v| v.name.clone()).into_iter().collect()
}

/// Freezes the rollout (or a gradual rollback).
pub(super) fn pause(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    live.update(
        Draft::new(actor, EventKind::Paused, reason).route(route),
        |config, state| {
            route_cfg(config, route)?;
            let rs = state.routes.entry(route.to_owned()).or_default();
            match rs.phase {
                Phase::Paused => Err(LiveError::Refused(format!(
                    "route {route} is already paused"
                ))),
                Phase::RolledBack | Phase::Promoted | Phase::RollingBack => {
                    Err(LiveError::Refused(format!(
                        "route {route} is {}: nothing to pause",
                        rs.phase.as_str()
                    )))
                }
                _ => {
                    rs.phase = Phase::Paused;
                    rs.since = Some(now());
                    Ok(())
                }
            }
        },
    )
}

/// Unfreezes a paused route; brings a rolled-back canary back (to the
/// first rollout step when the route has a rollout, else to its file weight).
pub(super) fn resume(
    live: &Live,
    route: &str,
    actor: Actor,
    reason: &str,
) -> Result<Event, LiveError> {
    live.update(
        Draft::new(actor, EventKind::Resumed, reason).route(route),
        |config, state| {
            let r = route_cfg(config, route)?;
            let rs = state.routes.get(route).cloned().unwrap_or_default();
            match rs.phase {
                Phase::Paused => {
                    let phase = if r.rollout.is_some() {
                        Phase::Progressing
                    } else {
                        Phase::Stable
                    };
                    set_phase(state, route, phase, rs.step, None);
                    Ok(())
                }
                Phase::RolledBack | Phase::RollingBack => {
                    state.weights.remove(route);
                    match r.rollout.as_ref().and_then(|o| o.steps.first()) {
                        Some(&first) => {
                            let cs = rollout_canaries(r, state);
                            set_share(r, state, &cs, first);
                            set_phase(state, route, Phase::Progressing, Some(0), None);
                        }
                        None => {
                            state.routes.remove(route);
                        }
                    }
                    Ok(())
                }
                p => Err(LiveError::Refused(format!(
                    "route {route} is {}: nothing to resume",
                    p.as_str()
                ))),
            }
        },
    )
}
