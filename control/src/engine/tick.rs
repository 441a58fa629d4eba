//! One engine evaluation of every route with a `[routes.rollback]`.

use std::collections::HashMap;

use serin_config::{Action, Rollback, Route};
use tokio::time::Instant;

use super::actions::{self, canaries, stable_of};
use super::levels::{judge, judge_level, Evidence, Hit, Verdict};
use super::{RollbackMode, Track};
use crate::breaker::BreakerState;
use crate::event::{Actor, Draft};
use crate::persist::{LiveState, Phase};
use crate::{Live, LiveError, RouteSnap};

const LEVELS: [&str; 3] = ["critical", "warning", "watch"];

/// Judges every route once and acts where a level has held for `confirm`.
pub(super) fn evaluate(live: &Live, tracks: &mut HashMap<String, Track>) {
    let config = live.config();
    let state = live.state();
    let snap = live.snapshot();
    for r in &config.routes {
        let Some(rb) = &r.rollback else { continue };
        let Some(rsnap) = snap.routes.iter().find(|x| *x.name == r.name) else {
            continue;
        };
        let track = tracks.entry(r.name.clone()).or_default();
        if let Err(e) = route(live, r, rb, rsnap, &state, track) {
            tracing::warn!(route = %r.name, error = %e, "engine action failed");
        }
    }
}

fn route(
    live: &Live,
    r: &Route,
    rb: &Rollback,
    rsnap: &RouteSnap,
    state: &LiveState,
    track: &mut Track,
) -> Result<(), LiveError> {
    let now = Instant::now();
    let rs = state.routes.get(&r.name);
    let phase = rs.map(|s| s.phase).unwrap_or_default();
    // Timing belongs to one phase and step: a rollback, a step, a resume or
    // a hand action starts it afresh (confirm, step waits, acted flags).
    let key = rs.map(|s| (s.phase, s.step, s.since.clone()));
    if track.key != key {
        *track = Track {
            key,
            since: Some(now),
            ..Track::default()
        };
    }
    // A route with a rollout and no decision yet starts it.
    if phase == Phase::Stable && r.rollout.is_some() && !state.routes.contains_key(&r.name) {
        track.step_at = Some(now);
        return actions::promote(live, &r.name, Actor::Engine, "rollout started").map(drop);
    }
    if matches!(phase, Phase::RolledBack | Phase::Promoted) {
        set_verdict(live, r, track, phase.as_str());
        return Ok(());
    }
    let cs = canaries(r, state);
    if cs.is_empty() {
        set_verdict(live, r, track, "no canary");
        return Ok(());
    }

    let stable = rsnap.versions.iter().find(|v| *v.name == *stable_of(r));
    let stable_w = stable.map(|v| v.stats.window(rb.window));
    let stable_w = stable_w.as_ref().filter(|w| w.requests > 0);
    let mut verdicts = [Verdict::Clear, Verdict::Clear, Verdict::Clear];
    let mut shadow_hits = Vec::new();
    let mut abort_hit = None;
    for c in &cs {
        let Some(v) = rsnap.versions.iter().find(|v| *v.name == **c) else {
            continue;
        };
        let w = v.stats.window(rb.window);
        let ev = Evidence {
            canary: &w,
            stable: stable_w,
            // Half-open counts too: an idle canary's breaker half-opens on
            // its own, and a level must not clear for that.
            breaker_open: v.breaker.state() != BreakerState::Closed,
            unhealthy: v.health.is_unhealthy(),
            health_detail: v.health.last_failures(),
            min_requests: rb.min_requests,
        };
        for (i, rules) in [&rb.critical, &rb.warning, &rb.watch]
            .into_iter()
            .enumerate()
        {
            verdicts[i] = worse(
                std::mem::replace(&mut verdicts[i], Verdict::Clear),
                judge_level(rules, &ev),
            );
        }
        shadow_hits.extend(
            rb.shadow
                .iter()
                .filter_map(|s| judge(s, &ev))
                .map(|h| format!("{c}: {h}")),
        );
        let abort_rule = rb.gradual.as_ref().and_then(|g| g.abort_if.as_ref());
        if let (Some(rule), Phase::RollingBack) = (abort_rule, phase) {
            // Judged on what the canary did since this step began (with
            // min_requests), not on the window that started the rollback.
            let since = track.since.map_or(rb.window, |t| (now - t).min(rb.window));
            let recent = v.stats.window(since);
            let ev = Evidence {
                canary: &recent,
                ..ev
            };
            if let Verdict::Breached(h) = judge_level(std::slice::from_ref(rule), &ev) {
                abort_hit = abort_hit.or(Some(format!("{c}: {h}")));
            }
        }
    }
    note_transitions(live, r, rb.min_requests, &verdicts, track, now);
    note_shadow(live, r, shadow_hits, track);

    for i in 0..2 {
        let (Some(since), Verdict::Breached(hit)) = (track.breached[i], &verdicts[i]) else {
            continue;
        };
        if now - since < rb.confirm || track.acted[i] {
            continue;
        }
        // A gradual rollback already answers the warning level; a critical
        // breach during it goes to 0 at once.
        let action = match (phase, i) {
            (Phase::RollingBack, 0) => Action::Immediate,
            (Phase::RollingBack, _) => continue,
            (_, 0) => rb.on_critical,
            _ => rb.on_warning,
        };
        act(live, r, rb, phase, action, LEVELS[i], hit)?;
        // Only a decision that took effect is done; a failed one is retried.
        track.acted[i] = true;
        return Ok(());
    }
    if phase == Phase::RollingBack {
        return gradual(live, r, rb, state, abort_hit, track, now);
    }
    if phase == Phase::Progressing {
        return rollout(live, r, rb, &verdicts, track, now);
    }
    Ok(())
}

/// The worse of two verdicts: breached > inconclusive > clear.
fn worse(a: Verdict, b: Verdict) -> Verdict {
    match (&a, &b) {
        (Verdict::Breached(_), _) => a,
        (_, Verdict::Breached(_)) => b,
        (Verdict::Inconclusive { .. }, _) => a,
        _ => b,
    }
}

/// Records a level starting or ending a breach, and the route's verdict.
fn note_transitions(
    live: &Live,
    r: &Route,
    min_requests: u64,
    verdicts: &[Verdict; 3],
    track: &mut Track,
    now: Instant,
) {
    for (i, v) in verdicts.iter().enumerate() {
        match (v, track.breached[i]) {
            (Verdict::Breached(hit), None) => {
                track.breached[i] = Some(now);
                record(live, r, "level_breached", format!("{}: {hit}", LEVELS[i]));
            }
            (Verdict::Breached(_), Some(_)) => {}
            (_, Some(_)) => {
                track.breached[i] = None;
                track.acted[i] = false;
                record(
                    live,
                    r,
                    "level_cleared",
                    format!("{}: no rule holds", LEVELS[i]),
                );
            }
            (_, None) => {}
        }
    }
    let breached = verdicts
        .iter()
        .position(|v| matches!(v, Verdict::Breached(_)));
    if breached.is_some() {
        track.clear_since = None;
    } else if track.clear_since.is_none() {
        track.clear_since = Some(now);
    }
    let inconclusive = verdicts.iter().find_map(|v| match v {
        Verdict::Inconclusive { requests } => Some(*requests),
        _ => None,
    });
    let word = match (breached, inconclusive) {
        (Some(i), _) => format!("breached: {}", LEVELS[i]),
        (None, Some(_)) => "inconclusive".to_owned(),
        (None, None) => "clear".to_owned(),
    };
    if let (Some(n), true) = (inconclusive, breached.is_none() && track.verdict != word) {
        record(
            live,
            r,
            "inconclusive",
            format!(
                "{n} requests in the window, fewer than min_requests {min_requests}: no verdict"
            ),
        );
    }
    set_verdict(live, r, track, &word);
}

fn note_shadow(live: &Live, r: &Route, hits: Vec<String>, track: &mut Track) {
    for h in hits.iter().filter(|h| !track.shadow.contains(h)) {
        record(live, r, "shadow_breached", format!("shadow: {h}"));
    }
    track.shadow = hits;
}

fn set_verdict(live: &Live, r: &Route, track: &mut Track, word: &str) {
    track.verdict = word.to_owned();
    live.shared().verdicts.set(&r.name, word);
}

fn record(live: &Live, r: &Route, kind: &'static str, reason: String) {
    live.shared()
        .events
        .record(Draft::new(Actor::Engine, kind, reason).route(&r.name));
}

/// A level held for `confirm`: do what the route says.
fn act(
    live: &Live,
    r: &Route,
    rb: &Rollback,
    phase: Phase,
    action: Action,
    level: &str,
    hit: &Hit,
) -> Result<(), LiveError> {
    let reason = format!("{level}: {}", hit.held(rb.confirm));
    if rb.dry_run {
        record(
            live,
            r,
            "dry_run",
            format!("would {}: {reason}", word(action)),
        );
        return Ok(());
    }
    match action {
        Action::Immediate => super::rollback(
            live,
            &r.name,
            RollbackMode::Immediate,
            Actor::Engine,
            &reason,
        )
        .map(drop),
        Action::Gradual => {
            super::rollback(live, &r.name, RollbackMode::Gradual, Actor::Engine, &reason).map(drop)
        }
        Action::Pause if phase == Phase::Progressing => {
            super::pause(live, &r.name, Actor::Engine, &reason).map(drop)
        }
        Action::Pause | Action::Alert => {
            record(live, r, "alert", reason);
            Ok(())
        }
    }
}

fn word(a: Action) -> &'static str {
    match a {
        Action::Immediate => "roll back immediately",
        Action::Gradual => "roll back gradually",
        Action::Pause => "pause",
        Action::Alert => "alert",
    }
}

/// A gradual rollback in progress: abort to 0 when `abort_if` holds, else
/// one step down every `gradual.every`.
fn gradual(
    live: &Live,
    r: &Route,
    rb: &Rollback,
    state: &LiveState,
    abort: Option<String>,
    track: &mut Track,
    now: Instant,
) -> Result<(), LiveError> {
    let step_now = state.routes.get(&r.name).and_then(|s| s.step);
    let (Some(g), Some(_)) = (&rb.gradual, step_now) else {
        // Rolling back with no step to go down: finish the rollback.
        return actions::complete(
            live,
            &r.name,
            Actor::Engine,
            "rollback: no gradual step left",
        )
        .map(drop);
    };
    if let Some(hit) = abort {
        track.step_at = None;
        return actions::complete(live, &r.name, Actor::Engine, &format!("abort_if: {hit}"))
            .map(drop);
    }
    let at = *track.step_at.get_or_insert(now);
    if now - at < g.every {
        return Ok(());
    }
    let step = step_now.map_or(0, |s| s + 1);
    track.step_at = Some(now);
    let share = g.steps.get(step).copied().unwrap_or(0.0);
    let reason = format!(
        "gradual: step {} of {}, canary to {}%",
        step + 1,
        g.steps.len(),
        share * 100.0
    );
    if share <= 0.0 {
        return actions::complete(live, &r.name, Actor::Engine, &reason).map(drop);
    }
    actions::rollback_step(live, &r.name, step, &reason).map(drop)
}

/// A progressing rollout moves on after `every` with every level clear for
/// at least `confirm` and enough requests to know.
fn rollout(
    live: &Live,
    r: &Route,
    rb: &Rollback,
    verdicts: &[Verdict; 3],
    track: &mut Track,
    now: Instant,
) -> Result<(), LiveError> {
    let Some(o) = &r.rollout else { return Ok(()) };
    // The rollout ends at its last step: only a step of 100% promotes; a
    // route whose steps stop short stays there (promote by hand goes on).
    let step = live
        .state()
        .routes
        .get(&r.name)
        .and_then(|s| s.step)
        .unwrap_or(0);
    if step + 1 >= o.steps.len() {
        return Ok(());
    }
    let at = *track.step_at.get_or_insert(now);
    let clear = verdicts.iter().all(|v| *v == Verdict::Clear);
    let settled = track.clear_since.is_some_and(|t| now - t >= rb.confirm);
    if !clear || !settled || now - at < o.every {
        return Ok(());
    }
    track.step_at = Some(now);
    let reason = format!(
        "rollout: every level clear for {} and the step held {}",
        serin_config::format_duration(rb.confirm),
        serin_config::format_duration(o.every)
    );
    actions::promote(live, &r.name, Actor::Engine, &reason).map(drop)
}
