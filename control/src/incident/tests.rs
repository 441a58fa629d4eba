//! Incidents read off made-up journals: where one opens and closes, what
//! belongs to it, and what does not.

use serde_json::{json, Value};

use super::*;

/// An event of route `svc` at second `at` of the day.
fn ev(seq: u64, at: u32, kind: EventKind, reason: &str) -> Event {
    Event {
        seq,
        time: format!("2026-12-03T10:00:{at:02}.000Z"),
        actor: Actor::Engine,
        kind: kind.as_str().to_owned(),
        route: Some("svc".into()),
        version: None,
        before: Value::Null,
        after: Value::Null,
        reason: reason.into(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

fn with(mut e: Event, before: Value, after: Value) -> Event {
    e.before = before;
    e.after = after;
    e
}

#[test]
fn a_drills_incident_has_every_time_and_the_client_numbers() {
    use EventKind::*;
    let events = vec![
        ev(1, 0, ConfigApplied, "r1"),
        ev(2, 1, LevelBreached, "watch: p50 2s > 1s (n=90)"),
        ev(3, 10, DrillStarted, "inject_errors on v2 for 30s"),
        ev(
            4,
            11,
            LevelBreached,
            "critical: error_rate 40% > 10% (n=80)",
        ),
        ev(
            5,
            12,
            RollbackStarted,
            "critical: error_rate 45% > 10% held 1s (n=90); immediate",
        ),
        with(
            ev(6, 12, RollbackCompleted, "critical: …"),
            json!({"v1": 80, "v2": 20}),
            json!({"v1": 100, "v2": 0}),
        ),
        with(
            ev(7, 12, IncidentClosed, "incident i5: …"),
            Value::Null,
            json!({"incident": "i5", "client_errors": 0, "client_requests": 300}),
        ),
        ev(8, 20, LevelCleared, "critical: no rule holds"),
    ];
    let all = list(&events);
    assert_eq!(all.len(), 1);
    let i = &all[0];
    assert_eq!(i.id, "i5");
    assert_eq!(i.opened, "2026-12-03T10:00:10.000Z");
    assert_eq!(i.closed.as_deref(), Some("2026-12-03T10:00:12.000Z"));
    assert_eq!(
        (i.detection_s, i.decision_s, i.rollback_s),
        (Some(1.0), Some(1.0), Some(0.0))
    );
    assert_eq!((i.client_errors, i.client_requests), (Some(0), Some(300)));
    assert_eq!(i.before, json!({"v1": 80, "v2": 20}));
    assert_eq!(i.after, json!({"v1": 100, "v2": 0}));
    // The watch level's breach is not evidence; the cleared level after the
    // close is not in the timeline.
    assert_eq!(
        i.evidence,
        [
            "critical: error_rate 40% > 10% (n=80)",
            "critical: error_rate 45% > 10% held 1s (n=90); immediate"
        ]
    );
    let seqs: Vec<u64> = i.timeline.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [3, 4, 5, 6, 7]);
    let md = markdown(i);
    assert!(
        md.contains("- Client-visible errors: 0 of 300 requests"),
        "{md}"
    );
    assert!(md.contains("| 1.00 s | 1.00 s | 0.00 s |"), "{md}");
}

#[test]
fn an_escalation_during_a_gradual_rollback_is_the_same_incident() {
    use EventKind::*;
    let events = vec![
        ev(1, 0, LevelBreached, "warning: error_rate 6% > 5% (n=200)"),
        with(
            ev(2, 2, RollbackStarted, "warning: …; gradual"),
            json!({"v1": 50, "v2": 50}),
            json!({"v1": 75, "v2": 25}),
        ),
        ev(3, 3, RollbackStep, "gradual: step 2 of 3"),
        ev(4, 4, LevelBreached, "critical: error_rate 30% > 20% (n=90)"),
        ev(5, 6, RollbackStarted, "critical: …; immediate"),
        with(
            ev(6, 6, RollbackCompleted, "critical: …"),
            json!({"v1": 90, "v2": 10}),
            json!({"v1": 100, "v2": 0}),
        ),
    ];
    let all = list(&events);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].id, "i2");
    assert_eq!(all[0].before, json!({"v1": 50, "v2": 50}));
    assert_eq!(all[0].after, json!({"v1": 100, "v2": 0}));
    assert_eq!(all[0].rollback_s, Some(4.0));
}

#[test]
fn a_resumed_rollback_ends_its_incident_unclosed_and_the_next_is_new() {
    use EventKind::*;
    let events = vec![
        ev(1, 0, RollbackStarted, "by hand; gradual"),
        ev(2, 5, Resumed, "by hand"),
        ev(3, 8, LevelBreached, "critical: old (n=50)"),
        ev(4, 9, LevelCleared, "critical: no rule holds"),
        ev(
            5,
            20,
            LevelBreached,
            "critical: error_rate 50% > 10% (n=60)",
        ),
        ev(6, 22, RollbackStarted, "critical: …; immediate"),
        ev(7, 22, RollbackCompleted, "critical: …"),
    ];
    let all = list(&events);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].closed, None);
    assert_eq!(all[0].client_errors, None);
    let seqs: Vec<u64> = all[0].timeline.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2]);
    // Opened at the breach that led to it, not the one that cleared before.
    assert_eq!(all[1].opened, "2026-12-03T10:00:20.000Z");
    assert_eq!(all[1].decision_s, Some(2.0));
    assert_eq!(all[1].detection_s, None);
    assert!(markdown(&all[0]).contains("— (rolling back)"));
}
