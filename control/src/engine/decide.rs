//! The engine's judgement of one route at one instant, as a pure function
//! of what it sees ([`View`]), what it remembers ([`Track`]) and the time:
//! [`decide`] says what should happen; `apply.rs` is the only place that
//! changes live state. No clock, no I/O and no `Live` here, so every rule
//! of timing is unit-tested on made-up instants (`decide/tests.rs`).

use std::time::Duration;

use serin_config::{Action, Rollback, Rollout, Rule};
use tokio::time::Instant;

use super::levels::{judge, judge_level, Evidence, Hit, Verdict};
use super::RollbackMode;
use crate::event::EventKind;
use crate::persist::Phase;
use crate::telemetry::WindowStats;

/// A rollback level: its rules, and what it does once confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Acts by `on_critical` (default: roll back at once).
    Critical,
    /// Acts by `on_warning` (default: roll back gradually).
    Warning,
    /// Records `level_breached` and never acts.
    Watch,
}

/// The route's verdict, as the status API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteVerdict {
    /// Every level judged, none breached.
    Clear,
    /// Too few requests for a traffic rule to say anything.
    Inconclusive,
    /// The worst breached level.
    Breached(Level),
    /// No version but the stable one has traffic.
    NoCanary,
    /// Nothing to judge in this phase (rolled back, promoted).
    Done(Phase),
}

/// Which phase and step the route's saved state is in: timing (confirm,
/// step waits) belongs to one of these and starts afresh with the next.
pub(crate) type StepKey = (Phase, Option<usize>, Option<String>);

/// What the engine sees of one route now.
#[derive(Debug)]
pub(crate) struct View<'a> {
    pub(crate) rb: &'a Rollback,
    pub(crate) rollout: Option<&'a Rollout>,
    pub(crate) phase: Phase,
    /// The rollout's or the gradual rollback's step.
    pub(crate) step: Option<usize>,
    /// The saved phase, step and its start.
    pub(crate) key: StepKey,
    /// Whether the route has live state of its own (a rollout or rollback
    /// began, an operator's hand): a rollout starts only on one without.
    pub(crate) has_state: bool,
    /// The route mirrors to its canary: a rollout waits for the copies'
    /// verdict (every level clear) before its first step.
    pub(crate) mirror_first: bool,
    /// The stable version over `window`, when it had traffic.
    pub(crate) stable: Option<WindowStats>,
    pub(crate) canaries: Vec<Canary>,
}

/// One canary as the engine sees it.
#[derive(Debug)]
pub(crate) struct Canary {
    pub(crate) name: String,
    /// Over the rollback's `window`.
    pub(crate) window: WindowStats,
    /// Since the current step began (at most `window`), for `abort_if`;
    /// `None` before the step has run at all.
    pub(crate) since_step: Option<WindowStats>,
    /// Its mirrored copies over `window`, when the route mirrors to it.
    pub(crate) mirror: Option<WindowStats>,
    pub(crate) breaker_open: bool,
    pub(crate) unhealthy: bool,
    pub(crate) health_detail: String,
}

/// What the engine remembers of one route between judgements (lost on
/// restart, which only restarts confirmation: decisions are in the saved
/// state).
#[derive(Debug, Default)]
pub(crate) struct Track {
    key: Option<StepKey>,
    /// When the current phase and step began, as the engine saw it.
    since: Option<Instant>,
    /// Since when each level has been breached.
    breached: [Option<Instant>; 3],
    /// Whether the current breach of each level has acted.
    acted: [bool; 3],
    /// Since when no level has been breached.
    clear_since: Option<Instant>,
    /// When the current rollout or gradual step's wait began.
    step_at: Option<Instant>,
    verdict: Option<RouteVerdict>,
    /// Shadow rules holding, as (canary, rule index).
    shadow: Vec<(String, usize)>,
}

/// One thing to do. Events that change no state are `Note`s; the others
/// are the engine's actions, each one saved, audited change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Note(EventKind, String),
    Verdict(RouteVerdict),
    /// The route's rollout begins at its first step.
    StartRollout,
    Rollback {
        level: Level,
        mode: RollbackMode,
        reason: String,
    },
    Pause {
        level: Level,
        reason: String,
    },
    /// One gradual step down, to `step`.
    GradualStep {
        step: usize,
        reason: String,
    },
    /// The canaries to 0: the end of a rollback.
    Complete {
        reason: String,
    },
    /// The rollout's next step.
    RolloutStep {
        reason: String,
    },
}

/// `decide`'s answer: what to do now, and when to look again at the
/// latest (a confirm or a step wait that ends before the next tick).
#[derive(Debug, Default)]
pub(crate) struct Decided {
    pub(crate) decisions: Vec<Decision>,
    pub(crate) wake: Option<Instant>,
}

// === impl Level ===

impl Level {
    pub const ALL: [Self; 3] = [Self::Critical, Self::Warning, Self::Watch];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Watch => "watch",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Critical => 0,
            Self::Warning => 1,
            Self::Watch => 2,
        }
    }

    /// This level's rules on `rb`.
    pub fn rules(self, rb: &Rollback) -> &[Rule] {
        match self {
            Self::Critical => &rb.critical,
            Self::Warning => &rb.warning,
            Self::Watch => &rb.watch,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RouteVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Clear => f.write_str("clear"),
            Self::Inconclusive => f.write_str("inconclusive"),
            Self::Breached(l) => write!(f, "breached: {l}"),
            Self::NoCanary => f.write_str("no canary"),
            Self::Done(p) => f.write_str(p.as_str()),
        }
    }
}

// === impl Track ===

impl Track {
    /// How long the step `key` has run, as far as this track knows (zero
    /// for a step it has not seen yet).
    pub(crate) fn step_age(&self, key: &StepKey, now: Instant) -> Duration {
        match (&self.key, self.since) {
            (Some(k), Some(since)) if k == key => now - since,
            _ => Duration::ZERO,
        }
    }

    /// An action of `level` did not take effect: it is decided again.
    pub(crate) fn retry(&mut self, level: Level) {
        self.acted[level.index()] = false;
    }
}

// === impl Decided ===

impl Decided {
    fn push(&mut self, d: Decision) {
        self.decisions.push(d);
    }

    fn wake_at(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }
}

/// Judges the route of `view` at `now`. A level is breached while any of
/// its rules holds and acts once breached continuously for `confirm`; a
/// rollout step waits `every` with every level clear for `confirm`; a
/// gradual rollback steps down every `gradual.every` unless `abort_if`
/// holds on the traffic since the step began.
pub(crate) fn decide(view: &View<'_>, track: &mut Track, now: Instant) -> Decided {
    let mut out = Decided::default();
    if track.key.as_ref() != Some(&view.key) {
        let next_gradual_step = view.phase == Phase::RollingBack
            && track
                .key
                .as_ref()
                .is_some_and(|k| k.0 == Phase::RollingBack);
        if next_gradual_step {
            // One gradual rollback, step after step: a breach keeps its
            // timing (a critical one still goes to 0 at confirm, whatever
            // `every` is); only the step's own clock starts again.
            track.key = Some(view.key.clone());
            track.since = Some(now);
            track.step_at = None;
        } else {
            *track = Track {
                key: Some(view.key.clone()),
                since: Some(now),
                ..Track::default()
            };
        }
    }
    let may_start = view.phase == Phase::Stable && view.rollout.is_some() && !view.has_state;
    if may_start && !view.mirror_first {
        track.step_at = Some(now);
        out.push(Decision::StartRollout);
        return out;
    }
    if matches!(view.phase, Phase::RolledBack | Phase::Promoted) {
        verdict(track, RouteVerdict::Done(view.phase), &mut out);
        return out;
    }
    if view.canaries.is_empty() {
        verdict(track, RouteVerdict::NoCanary, &mut out);
        return out;
    }
    let rb = view.rb;
    let mut levels = [Verdict::Clear, Verdict::Clear, Verdict::Clear];
    let mut shadow = Vec::new();
    let mut abort = None;
    for c in &view.canaries {
        let ev = Evidence {
            canary: &c.window,
            stable: view.stable.as_ref(),
            mirror: c.mirror.as_ref(),
            breaker_open: c.breaker_open,
            unhealthy: c.unhealthy,
            health_detail: c.health_detail.clone(),
            min_requests: rb.min_requests,
        };
        for level in Level::ALL {
            let i = level.index();
            let old = std::mem::replace(&mut levels[i], Verdict::Clear);
            levels[i] = worse(old, judge_level(level.rules(rb), &ev));
        }
        for (i, rule) in rb.shadow.iter().enumerate() {
            if let Some(hit) = judge(rule, &ev) {
                shadow.push((c.name.clone(), i, hit));
            }
        }
        let abort_rule = rb.gradual.as_ref().and_then(|g| g.abort_if.as_ref());
        if let (Some(rule), Some(recent), Phase::RollingBack) =
            (abort_rule, &c.since_step, view.phase)
        {
            let ev = Evidence {
                canary: recent,
                ..ev
            };
            if let Verdict::Breached(h) = judge_level(std::slice::from_ref(rule), &ev) {
                abort = abort.or(Some(format!("{}: {h}", c.name)));
            }
        }
    }
    transitions(rb.min_requests, &levels, track, now, &mut out);
    note_shadow(shadow, track, &mut out);

    for level in [Level::Critical, Level::Warning] {
        let i = level.index();
        let (Some(since), Verdict::Breached(hit)) = (track.breached[i], &levels[i]) else {
            continue;
        };
        if track.acted[i] {
            continue;
        }
        // A gradual rollback already answers the warning level; a critical
        // breach during it goes to 0 at once.
        let action = match (view.phase, level) {
            (Phase::RollingBack, Level::Critical) => Action::Immediate,
            (Phase::RollingBack, _) => continue,
            (_, Level::Critical) => rb.on_critical,
            _ => rb.on_warning,
        };
        let due = since + rb.confirm;
        if now < due {
            out.wake_at(due);
            continue;
        }
        track.acted[i] = true;
        out.push(act(view, level, action, hit));
        return out;
    }
    match view.phase {
        Phase::RollingBack => gradual(view, abort, track, now, &mut out),
        Phase::Progressing => rollout(view, &levels, track, now, &mut out),
        // A mirrored canary's rollout starts once its copies are judged
        // clear: no user meets it before then.
        _ if may_start && levels.iter().all(|l| *l == Verdict::Clear) => {
            track.step_at = Some(now);
            out.push(Decision::StartRollout);
        }
        _ => {}
    }
    out
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

/// Levels starting or ending a breach, and the route's verdict.
fn transitions(
    min_requests: u64,
    levels: &[Verdict; 3],
    track: &mut Track,
    now: Instant,
    out: &mut Decided,
) {
    for level in Level::ALL {
        let i = level.index();
        match (&levels[i], track.breached[i]) {
            (Verdict::Breached(hit), None) => {
                track.breached[i] = Some(now);
                out.push(Decision::Note(
                    EventKind::LevelBreached,
                    format!("{level}: {hit}"),
                ));
            }
            (Verdict::Breached(_), Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                track.breached[i] = None;
                track.acted[i] = false;
                out.push(Decision::Note(
                    EventKind::LevelCleared,
                    format!("{level}: no rule holds"),
                ));
            }
        }
    }
    let breached = Level::ALL
        .into_iter()
        .find(|l| matches!(levels[l.index()], Verdict::Breached(_)));
    if breached.is_some() {
        track.clear_since = None;
    } else if track.clear_since.is_none() {
        track.clear_since = Some(now);
    }
    let inconclusive = levels.iter().find_map(|v| match v {
        Verdict::Inconclusive { requests } => Some(*requests),
        _ => None,
    });
    let v = match (breached, inconclusive) {
        (Some(l), _) => RouteVerdict::Breached(l),
        (None, Some(_)) => RouteVerdict::Inconclusive,
        (None, None) => RouteVerdict::Clear,
    };
    if let (RouteVerdict::Inconclusive, Some(n)) = (v, inconclusive) {
        if track.verdict != Some(v) {
            out.push(Decision::Note(
                EventKind::Inconclusive,
                format!("{n} requests in the window, fewer than min_requests {min_requests}: no verdict"),
            ));
        }
    }
    verdict(track, v, out);
}

fn verdict(track: &mut Track, v: RouteVerdict, out: &mut Decided) {
    if track.verdict != Some(v) {
        track.verdict = Some(v);
        out.push(Decision::Verdict(v));
    }
}

/// A shadow rule is recorded when it starts to hold, once per holding.
fn note_shadow(hits: Vec<(String, usize, Hit)>, track: &mut Track, out: &mut Decided) {
    let holding: Vec<(String, usize)> = hits.iter().map(|(c, i, _)| (c.clone(), *i)).collect();
    for (c, i, hit) in hits {
        if !track.shadow.iter().any(|(tc, ti)| *tc == c && *ti == i) {
            out.push(Decision::Note(
                EventKind::ShadowBreached,
                format!("shadow: {c}: {hit}"),
            ));
        }
    }
    track.shadow = holding;
}

/// A level confirmed: what the route says to do (or, with `dry_run`,
/// what it would have done).
fn act(view: &View<'_>, level: Level, action: Action, hit: &Hit) -> Decision {
    let reason = format!("{level}: {}", hit.held(view.rb.confirm));
    if view.rb.dry_run {
        return Decision::Note(
            EventKind::DryRun,
            format!("would {}: {reason}", word(action)),
        );
    }
    match action {
        Action::Immediate => Decision::Rollback {
            level,
            mode: RollbackMode::Immediate,
            reason,
        },
        Action::Gradual => Decision::Rollback {
            level,
            mode: RollbackMode::Gradual,
            reason,
        },
        Action::Pause if view.phase == Phase::Progressing => Decision::Pause { level, reason },
        Action::Pause | Action::Alert => Decision::Note(EventKind::Alert, reason),
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

/// A gradual rollback: to 0 when `abort_if` holds, else one step down
/// every `gradual.every`, on to 0 whatever the levels say meanwhile (the
/// decision was taken; `pause` stops it by hand).
fn gradual(
    view: &View<'_>,
    abort: Option<String>,
    track: &mut Track,
    now: Instant,
    out: &mut Decided,
) {
    let (Some(g), Some(step)) = (&view.rb.gradual, view.step) else {
        out.push(Decision::Complete {
            reason: "rollback: no gradual step left".to_owned(),
        });
        return;
    };
    if let Some(hit) = abort {
        track.step_at = None;
        out.push(Decision::Complete {
            reason: format!("abort_if: {hit}"),
        });
        return;
    }
    let at = *track.step_at.get_or_insert(now);
    if now < at + g.every {
        out.wake_at(at + g.every);
        return;
    }
    track.step_at = Some(now);
    let next = step + 1;
    let share = g.steps.get(next).copied().unwrap_or(0.0);
    let reason = format!(
        "gradual: step {} of {}, canary to {}%",
        next + 1,
        g.steps.len(),
        share * 100.0
    );
    out.push(if share <= 0.0 {
        Decision::Complete { reason }
    } else {
        Decision::GradualStep { step: next, reason }
    });
}

/// A progressing rollout moves on after `every`, with every level clear
/// for at least `confirm` and enough requests to know. It ends at its last
/// step: only a step of 100% promotes.
fn rollout(
    view: &View<'_>,
    levels: &[Verdict; 3],
    track: &mut Track,
    now: Instant,
    out: &mut Decided,
) {
    let Some(o) = view.rollout else { return };
    let step = view.step.unwrap_or(0);
    if step + 1 >= o.steps.len() {
        return;
    }
    let at = *track.step_at.get_or_insert(now);
    let (true, Some(clear)) = (
        levels.iter().all(|v| *v == Verdict::Clear),
        track.clear_since,
    ) else {
        return;
    };
    let due = (at + o.every).max(clear + view.rb.confirm);
    if now < due {
        out.wake_at(due);
        return;
    }
    track.step_at = Some(now);
    out.push(Decision::RolloutStep {
        reason: format!(
            "rollout: every level clear for {} and the step held {}",
            serin_config::format_duration(view.rb.confirm),
            serin_config::format_duration(o.every)
        ),
    });
}

#[cfg(test)]
mod tests;
