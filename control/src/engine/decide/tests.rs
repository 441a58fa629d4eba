//! `decide` on made-up instants: every level, confirm, inconclusive,
//! flapping, gradual with `abort_if`, rollout gates and manual holds.

use std::time::Duration;

use serin_config::{parse_rule, Action, Gradual, Rollback, Rollout};
use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn rules(list: &[&str]) -> Vec<Rule> {
    list.iter().map(|r| parse_rule(r).unwrap()).collect()
}

fn rollback() -> Rollback {
    Rollback {
        stable: "v1".into(),
        window: 10 * S,
        confirm: 2 * S,
        min_requests: 50,
        critical: rules(&["error_rate > 20%"]),
        warning: rules(&["error_rate > 5%"]),
        watch: rules(&["p99 > 500ms"]),
        on_critical: Action::Immediate,
        on_warning: Action::Gradual,
        gradual: Some(Gradual {
            steps: vec![0.5, 0.2, 0.0],
            every: 10 * S,
            abort_if: Some(parse_rule("error_rate > 50%").unwrap()),
        }),
        dry_run: false,
        shadow: Vec::new(),
    }
}

use crate::telemetry::test_window as window;

/// A canary answering `errors` of every 100 requests with 5xx in 5 ms.
fn canary(errors: u64) -> Canary {
    canary_n(100, errors)
}

fn canary_n(n: u64, errors: u64) -> Canary {
    Canary {
        name: "v2".into(),
        window: window(n - errors, errors, 5 * MS),
        since_step: None,
        mirror: None,
        breaker_open: false,
        unhealthy: false,
        health_detail: String::new(),
    }
}

fn view<'a>(rb: &'a Rollback, phase: Phase, step: Option<usize>, c: Canary) -> View<'a> {
    View {
        rb,
        rollout: None,
        phase,
        step,
        key: (phase, step, Some("t0".into())),
        has_state: phase != Phase::Stable,
        mirror_first: false,
        stable: Some(window(100, 0, 5 * MS)),
        canaries: vec![c],
    }
}

fn actions(d: &Decided) -> Vec<&Decision> {
    d.decisions
        .iter()
        .filter(|d| !matches!(d, Decision::Note(..) | Decision::Verdict(_)))
        .collect()
}

fn notes(d: &Decided) -> Vec<(EventKind, &str)> {
    d.decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Note(k, r) => Some((*k, r.as_str())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_critical_breach_acts_when_confirm_ends_and_not_before() {
    let rb = rollback();
    let mut t = Track::default();
    let t0 = Instant::now();
    let v = view(&rb, Phase::Stable, None, canary(40));

    let d = decide(&v, &mut t, t0);
    assert!(actions(&d).is_empty());
    let breached: Vec<_> = notes(&d)
        .into_iter()
        .filter(|(k, _)| *k == EventKind::LevelBreached)
        .collect();
    assert_eq!(breached.len(), 2, "critical and warning: {breached:?}");
    assert_eq!(breached[0].1, "critical: error_rate 40% > 20% (n=100)");
    assert!(d
        .decisions
        .contains(&Decision::Verdict(RouteVerdict::Breached(Level::Critical))));
    // The engine is told to look again exactly when confirm ends.
    assert_eq!(d.wake, Some(t0 + 2 * S));

    let d = decide(&v, &mut t, t0 + 2 * S - MS);
    assert!(actions(&d).is_empty());
    assert!(
        d.decisions.is_empty(),
        "nothing new to say: {:?}",
        d.decisions
    );

    let d = decide(&v, &mut t, t0 + 2 * S);
    assert_eq!(
        actions(&d),
        [&Decision::Rollback {
            level: Level::Critical,
            mode: RollbackMode::Immediate,
            reason: "critical: error_rate 40% > 20% held 2s (n=100)".into()
        }]
    );
    // Acted once per breach. (The warning level, breached as long, acts on
    // its own when the route is still in the same state; a real rollback
    // changes the state, and that starts every level afresh.)
    let d = decide(&v, &mut t, t0 + 3 * S);
    assert!(
        !actions(&d).iter().any(|a| matches!(
            a,
            Decision::Rollback {
                level: Level::Critical,
                ..
            }
        )),
        "{:?}",
        d.decisions
    );
}

#[test]
fn a_failed_action_is_decided_again() {
    let rb = rollback();
    let mut t = Track::default();
    let t0 = Instant::now();
    let v = view(&rb, Phase::Stable, None, canary(40));
    decide(&v, &mut t, t0);
    assert_eq!(actions(&decide(&v, &mut t, t0 + 2 * S)).len(), 1);
    t.retry(Level::Critical);
    assert_eq!(actions(&decide(&v, &mut t, t0 + 2 * S + MS)).len(), 1);
}

#[test]
fn warning_acts_by_on_warning_and_watch_only_records() {
    let rb = rollback();
    let mut t = Track::default();
    let t0 = Instant::now();
    let v = view(&rb, Phase::Stable, None, canary(10));
    decide(&v, &mut t, t0);
    assert!(matches!(
        actions(&decide(&v, &mut t, t0 + 2 * S))[..],
        [Decision::Rollback {
            level: Level::Warning,
            mode: RollbackMode::Gradual,
            ..
        }]
    ));

    let mut t = Track::default();
    let mut c = canary(0);
    c.window = window(100, 0, 900 * MS);
    let v = view(&rb, Phase::Stable, None, c);
    let d = decide(&v, &mut t, t0);
    assert_eq!(
        notes(&d),
        [(EventKind::LevelBreached, "watch: p99 900ms > 500ms (n=100)")]
    );
    assert!(actions(&decide(&v, &mut t, t0 + 60 * S)).is_empty());
}

#[test]
fn flapping_restarts_confirm() {
    let rb = rollback();
    let mut t = Track::default();
    let t0 = Instant::now();
    let bad = view(&rb, Phase::Stable, None, canary(40));
    let good = view(&rb, Phase::Stable, None, canary(0));
    decide(&bad, &mut t, t0);
    let d = decide(&good, &mut t, t0 + S);
    assert!(notes(&d)
        .iter()
        .any(|(k, r)| *k == EventKind::LevelCleared && *r == "critical: no rule holds"));
    decide(&bad, &mut t, t0 + 1500 * MS);
    // Two seconds after the first breach, but only half a second into this one.
    assert!(actions(&decide(&bad, &mut t, t0 + 2 * S)).is_empty());
    assert_eq!(actions(&decide(&bad, &mut t, t0 + 3500 * MS)).len(), 1);
}

#[test]
fn too_few_requests_is_inconclusive_once_per_spell_and_never_acts() {
    let rb = rollback();
    let mut t = Track::default();
    let t0 = Instant::now();
    let few = view(&rb, Phase::Stable, None, canary_n(10, 10));
    let d = decide(&few, &mut t, t0);
    assert_eq!(
        notes(&d),
        [(
            EventKind::Inconclusive,
            "10 requests in the window, fewer than min_requests 50: no verdict"
        )]
    );
    assert!(d
        .decisions
        .contains(&Decision::Verdict(RouteVerdict::Inconclusive)));
    assert!(decide(&few, &mut t, t0 + 10 * S).decisions.is_empty());
    // Clear, then too few again: a new spell, a new event.
    decide(
        &view(&rb, Phase::Stable, None, canary(0)),
        &mut t,
        t0 + 11 * S,
    );
    let d = decide(&few, &mut t, t0 + 12 * S);
    assert_eq!(notes(&d).len(), 1);
}

#[test]
fn breaker_open_needs_no_traffic() {
    let mut rb = rollback();
    rb.critical = rules(&["breaker_open"]);
    let mut t = Track::default();
    let t0 = Instant::now();
    let mut c = canary_n(3, 3);
    c.breaker_open = true;
    let v = view(&rb, Phase::Stable, None, c);
    decide(&v, &mut t, t0);
    assert_eq!(actions(&decide(&v, &mut t, t0 + 2 * S)).len(), 1);
}

#[test]
fn gradual_steps_down_every_and_abort_if_judges_the_step_alone() {
    let rb = rollback();
    let t0 = Instant::now();
    // Warning-level traffic during the rollback: it goes on stepping.
    let mut t = Track::default();
    let v = view(&rb, Phase::RollingBack, Some(0), canary(10));
    let d = decide(&v, &mut t, t0);
    assert!(actions(&d).is_empty());
    assert_eq!(d.wake, Some(t0 + 10 * S));
    assert_eq!(
        actions(&decide(&v, &mut t, t0 + 10 * S)),
        [&Decision::GradualStep {
            step: 1,
            reason: "gradual: step 2 of 3, canary to 20%".into()
        }]
    );
    // The last step (0%) completes the rollback.
    let mut t = Track::default();
    let v = view(&rb, Phase::RollingBack, Some(1), canary(0));
    decide(&v, &mut t, t0);
    assert!(matches!(
        actions(&decide(&v, &mut t, t0 + 10 * S))[..],
        [Decision::Complete { .. }]
    ));

    // abort_if on the traffic since the step began: the window that
    // started the rollback (40%) does not abort; the step's own 60% does.
    let mut t = Track::default();
    let mut c = canary(10);
    c.since_step = Some(window(40, 60, 5 * MS));
    let v = view(&rb, Phase::RollingBack, Some(0), c);
    assert_eq!(
        actions(&decide(&v, &mut t, t0)),
        [&Decision::Complete {
            reason: "abort_if: v2: error_rate 60% > 50% (n=100)".into()
        }]
    );
}

#[test]
fn a_critical_breach_during_a_gradual_rollback_goes_to_zero_at_once() {
    let rb = rollback();
    let mut t = Track::default();
    let t0 = Instant::now();
    let v = view(&rb, Phase::RollingBack, Some(0), canary(40));
    decide(&v, &mut t, t0);
    assert!(matches!(
        actions(&decide(&v, &mut t, t0 + 2 * S))[..],
        [Decision::Rollback {
            level: Level::Critical,
            mode: RollbackMode::Immediate,
            ..
        }]
    ));
}

#[test]
fn a_rollout_starts_once_and_steps_when_clear_for_confirm_and_every() {
    let rb = rollback();
    let ro = Rollout {
        steps: vec![0.1, 0.5, 1.0],
        every: 5 * S,
    };
    let t0 = Instant::now();
    let mut t = Track::default();
    let mut v = view(&rb, Phase::Stable, None, canary(0));
    v.rollout = Some(&ro);
    v.has_state = false;
    v.canaries.clear(); // the new version has weight 0 in the file
    assert_eq!(actions(&decide(&v, &mut t, t0)), [&Decision::StartRollout]);

    let mut v = view(&rb, Phase::Progressing, Some(0), canary(0));
    v.rollout = Some(&ro);
    let mut t = Track::default();
    let d = decide(&v, &mut t, t0);
    assert!(actions(&d).is_empty());
    assert_eq!(d.wake, Some(t0 + 5 * S));
    assert_eq!(
        actions(&decide(&v, &mut t, t0 + 5 * S)),
        [&Decision::RolloutStep {
            reason: "rollout: every level clear for 2s and the step held 5s".into()
        }]
    );

    // A breach in between: the step waits for confirm of clear after it.
    let mut t = Track::default();
    let bad = {
        let mut b = view(&rb, Phase::Progressing, Some(0), canary(6));
        b.rollout = Some(&ro);
        b
    };
    decide(&v, &mut t, t0);
    decide(&bad, &mut t, t0 + S);
    let d = decide(&v, &mut t, t0 + 4 * S);
    assert_eq!(d.wake, Some(t0 + 6 * S));
    assert!(actions(&decide(&v, &mut t, t0 + 5 * S)).is_empty());
    assert_eq!(actions(&decide(&v, &mut t, t0 + 6 * S)).len(), 1);

    // Too few requests never promotes.
    let mut few = view(&rb, Phase::Progressing, Some(0), canary_n(5, 0));
    few.rollout = Some(&ro);
    let mut t = Track::default();
    decide(&few, &mut t, t0);
    assert!(actions(&decide(&few, &mut t, t0 + 60 * S)).is_empty());
}

#[test]
fn a_held_rollout_does_not_step_but_is_still_rolled_back() {
    let rb = rollback();
    let ro = Rollout {
        steps: vec![0.1, 0.5, 1.0],
        every: 5 * S,
    };
    let t0 = Instant::now();
    let mut t = Track::default();
    let mut v = view(&rb, Phase::Paused, Some(0), canary(0));
    v.rollout = Some(&ro);
    decide(&v, &mut t, t0);
    assert!(actions(&decide(&v, &mut t, t0 + 60 * S)).is_empty());

    let mut v = view(&rb, Phase::Paused, Some(0), canary(40));
    v.rollout = Some(&ro);
    decide(&v, &mut t, t0 + 61 * S);
    assert!(matches!(
        actions(&decide(&v, &mut t, t0 + 63 * S))[..],
        [Decision::Rollback {
            level: Level::Critical,
            ..
        }]
    ));
}

#[test]
fn pause_pauses_only_a_progressing_rollout() {
    let mut rb = rollback();
    rb.on_critical = Action::Pause;
    let t0 = Instant::now();
    let mut t = Track::default();
    let v = view(&rb, Phase::Progressing, Some(0), canary(40));
    decide(&v, &mut t, t0);
    assert!(matches!(
        actions(&decide(&v, &mut t, t0 + 2 * S))[..],
        [Decision::Pause { .. }]
    ));
    let mut t = Track::default();
    let v = view(&rb, Phase::Stable, None, canary(40));
    decide(&v, &mut t, t0);
    let d = decide(&v, &mut t, t0 + 2 * S);
    assert!(actions(&d).is_empty());
    assert!(notes(&d).iter().any(|(k, _)| *k == EventKind::Alert));
}

#[test]
fn dry_run_and_shadow_record_once() {
    let mut rb = rollback();
    rb.dry_run = true;
    rb.shadow = rules(&["error_rate > 1%"]);
    let t0 = Instant::now();
    let mut t = Track::default();
    let v = view(&rb, Phase::Stable, None, canary(40));
    let d = decide(&v, &mut t, t0);
    assert!(notes(&d)
        .iter()
        .any(|(k, r)| *k == EventKind::ShadowBreached
            && *r == "shadow: v2: error_rate 40% > 1% (n=100)"));
    // Still holding, with other numbers: no second shadow event.
    let v2 = view(&rb, Phase::Stable, None, canary(45));
    let d = decide(&v2, &mut t, t0 + S);
    assert!(notes(&d).is_empty(), "{:?}", notes(&d));
    let d = decide(&v2, &mut t, t0 + 2 * S);
    assert!(actions(&d).is_empty());
    assert_eq!(
        notes(&d),
        [(
            EventKind::DryRun,
            "would roll back immediately: critical: error_rate 45% > 20% held 2s (n=100)"
        )]
    );
}

#[test]
fn a_breach_keeps_its_timing_across_gradual_steps() {
    let mut rb = rollback();
    rb.gradual.as_mut().unwrap().every = S;
    let t0 = Instant::now();
    let mut t = Track::default();
    decide(
        &view(&rb, Phase::RollingBack, Some(0), canary(40)),
        &mut t,
        t0,
    );
    // The engine stepped down meanwhile: a new saved step.
    let d = decide(
        &view(&rb, Phase::RollingBack, Some(1), canary(40)),
        &mut t,
        t0 + 2 * S,
    );
    assert!(matches!(
        actions(&d)[..],
        [Decision::Rollback {
            level: Level::Critical,
            mode: RollbackMode::Immediate,
            ..
        }]
    ));
}

#[test]
fn a_new_step_starts_timing_afresh() {
    let rb = rollback();
    let t0 = Instant::now();
    let mut t = Track::default();
    let v = view(&rb, Phase::Stable, None, canary(40));
    decide(&v, &mut t, t0);
    // An operator resumed: same breach, new saved step.
    let mut v = view(&rb, Phase::Stable, None, canary(40));
    v.key.2 = Some("t1".into());
    let d = decide(&v, &mut t, t0 + 2 * S);
    assert!(actions(&d).is_empty());
    assert_eq!(d.wake, Some(t0 + 4 * S));
}

#[test]
fn rolled_back_and_promoted_routes_are_not_judged() {
    let rb = rollback();
    let mut t = Track::default();
    let v = view(&rb, Phase::RolledBack, None, canary(40));
    let d = decide(&v, &mut t, Instant::now());
    assert_eq!(
        d.decisions,
        [Decision::Verdict(RouteVerdict::Done(Phase::RolledBack))]
    );
}

#[test]
fn a_mirrored_canary_rollout_waits_for_its_copies_to_be_judged_clear() {
    let rb = rollback();
    let ro = Rollout {
        steps: vec![0.1, 1.0],
        every: 5 * S,
    };
    let t0 = Instant::now();
    let stable = |c: Canary| {
        let mut v = view(&rb, Phase::Stable, None, c);
        v.rollout = Some(&ro);
        v.has_state = false;
        v.mirror_first = true;
        v
    };
    // Too few copies yet: no verdict, no step.
    let mut t = Track::default();
    assert!(actions(&decide(&stable(canary_n(10, 0)), &mut t, t0)).is_empty());
    // Copies judged clear: the rollout begins.
    assert_eq!(
        actions(&decide(&stable(canary(0)), &mut t, t0 + S)),
        [&Decision::StartRollout]
    );
    // Copies failing: never started; rolled back once confirmed instead.
    let mut t = Track::default();
    assert!(actions(&decide(&stable(canary(40)), &mut t, t0)).is_empty());
    assert!(matches!(
        actions(&decide(&stable(canary(40)), &mut t, t0 + rb.confirm))[..],
        [Decision::Rollback { .. }]
    ));
}
