//! One engine pass over every route with a `[routes.rollback]`: build each
//! route's [`View`] from the live table, [`decide`], and apply. Windows are
//! read as the fleet saw them (`fleet_window`: this replica's slots and the
//! other replicas'; alone, this replica's), and in a fleet only the
//! elected leader decides.

use std::collections::HashMap;
use std::time::Duration;

use serin_config::Route;
use tokio::time::Instant;

use super::actions::{canaries, stable_of};
use super::apply::apply;
use super::decide::{decide, Canary, Decision, Track, View};
use super::Verdicts;
use crate::handle::BreakerState;
use crate::persist::{LiveState, Phase};
use crate::{Live, RouteSnap};

/// Judges every route once and applies what was decided. Returns the
/// earliest instant a route asked to be looked at again.
pub(super) fn evaluate(
    live: &Live,
    verdicts: &Verdicts,
    tracks: &mut HashMap<String, Track>,
) -> Option<Instant> {
    if !live.decides() {
        // A follower in a fleet: the leader judges. Its own judgement
        // starts afresh if it is elected.
        tracks.clear();
        return None;
    }
    let config = live.config();
    let state = live.state();
    let snap = live.snapshot();
    let now = Instant::now();
    let mut wake: Option<Instant> = None;
    for r in &config.routes {
        if r.rollback.is_none() {
            continue;
        }
        let Some(rsnap) = snap.routes.iter().find(|x| *x.name == r.name) else {
            continue;
        };
        let track = tracks.entry(r.name.clone()).or_default();
        let Some(view) = view(r, rsnap, &state, track, now) else {
            continue;
        };
        let decided = decide(&view, track, now);
        wake = match (wake, decided.wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for d in decided.decisions {
            let level = match &d {
                Decision::Rollback { level, .. } | Decision::Pause { level, .. } => Some(*level),
                _ => None,
            };
            if let Err(e) = apply(live, verdicts, r, d) {
                tracing::warn!(route = %r.name, error = %e, "engine action failed");
                // Only a decision that took effect is done; a failed one
                // is decided again.
                if let Some(l) = level {
                    track.retry(l);
                }
                break;
            }
        }
    }
    tracks.retain(|name, _| config.routes.iter().any(|r| r.name == *name));
    wake
}

/// What the engine sees of `r` now: the saved phase and step, and each
/// canary's window and the stable version's over `window`.
fn view<'a>(
    r: &'a Route,
    rsnap: &RouteSnap,
    state: &LiveState,
    track: &Track,
    now: Instant,
) -> Option<View<'a>> {
    let rb = r.rollback.as_ref()?;
    let rs = state.routes.get(&r.name);
    let phase = rs.map(|s| s.phase).unwrap_or_default();
    let key = rs.map_or((phase, None, None), |s| (s.phase, s.step, s.since.clone()));
    // `abort_if` judges what the canary did since this step began, not the
    // window that started the rollback.
    let abort_if = rb.gradual.as_ref().is_some_and(|g| g.abort_if.is_some());
    let age = match (phase, abort_if) {
        (Phase::RollingBack, true) => track.step_age(&key, now).min(rb.window),
        _ => Duration::ZERO,
    };
    let stable = rsnap
        .versions
        .iter()
        .find(|v| *v.name == *stable_of(r))
        .map(|v| v.stats.fleet_window(rb.window))
        .filter(|w| w.requests > 0);
    let canaries = canaries(r, state)
        .into_iter()
        .filter_map(|c| {
            let v = rsnap.versions.iter().find(|v| *v.name == *c)?;
            // A version no user is sent to yet is judged on its mirrored
            // copies: what it would have answered them.
            let on_copies = v.mirrored.is_some() && v.weight <= 0.0;
            let judged = match &v.mirrored {
                Some(m) if on_copies => m,
                _ => &v.stats,
            };
            Some(Canary {
                window: judged.fleet_window(rb.window),
                since_step: (!age.is_zero()).then(|| v.stats.fleet_window(age)),
                mirror: v.mirrored.as_ref().map(|m| m.fleet_window(rb.window)),
                // Half-open counts too: an idle canary's breaker
                // half-opens on its own, and a level must not clear for that.
                // Copies never pass the breaker: one a chain opened says
                // nothing of them, and nothing would close it.
                breaker_open: !on_copies && v.breaker.state() != BreakerState::Closed,
                unhealthy: v.health.is_unhealthy(),
                health_detail: v.health.last_failures(),
                name: c,
            })
        })
        .collect();
    Some(View {
        rb,
        rollout: r.rollout.as_ref(),
        phase,
        step: rs.and_then(|s| s.step),
        key,
        has_state: rs.is_some(),
        mirror_first: r.mirror.as_ref().is_some_and(|m| m.to != stable_of(r)),
        stable,
        canaries,
    })
}
