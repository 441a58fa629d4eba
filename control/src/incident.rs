//! Incidents: every rollback (engine, API, drill) opens one, and its report
//! is read off the audit chain, so it survives restarts and says nothing
//! the chain does not.
//!
//! An incident begins at the rollback's first sign on its route — a drill
//! starting, else the first `level_breached` since the route's previous
//! incident or resume, else the `rollback_started` itself (a rollback by
//! hand) — and closes when the canary is at 0 (`rollback_completed`). At
//! that moment [`close`] records `incident_closed`, carrying what the
//! clients saw in between (the route's end-to-end errors over exactly that
//! span, read from the in-process telemetry while it is still the last
//! window). The id is `i` and the seq of the incident's `rollback_started`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{json, Value};

use crate::event::{Actor, Draft, Event, EventKind};
use crate::Live;

/// One incident, as `GET /api/v1/incidents/{id}` shows it; times RFC 3339,
/// spans in seconds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Incident {
    /// `i` + the seq of its `rollback_started`, e.g. `i42`.
    pub id: String,
    pub route: String,
    /// The first sign: drill started, level breached, or the rollback.
    pub opened: String,
    /// The canary at 0; `null` while a gradual rollback goes on.
    pub closed: Option<String>,
    /// Why the rollback was made: its reason, with the numbers.
    pub trigger: String,
    /// Who rolled back: `engine` or `api`.
    pub actor: Actor,
    /// Fault start (a drill) → first breach.
    pub detection_s: Option<f64>,
    /// First breach → rollback decided.
    pub decision_s: Option<f64>,
    /// Rollback decided → canary at 0.
    pub rollback_s: Option<f64>,
    /// Client requests of the route that failed between `opened` and
    /// `closed` (after the fallback chain): `null` until closed.
    pub client_errors: Option<u64>,
    pub client_requests: Option<u64>,
    /// Weights before the rollback and after it.
    pub before: Value,
    pub after: Value,
    /// What the engine saw: every breach reason, then the trigger.
    pub evidence: Vec<String>,
    /// The route's audit entries from `opened` to the close.
    pub timeline: Vec<Event>,
}

/// Every incident in `events` (one route's or all, oldest first). A
/// `rollback_started` while the route's incident is still open (a critical
/// breach during a gradual rollback) is part of that incident, not a new one.
pub fn list(events: &[Event]) -> Vec<Incident> {
    let mut out = Vec::new();
    for (k, e) in events.iter().enumerate() {
        let Some(route) = e.route.as_deref() else {
            continue;
        };
        if e.kind == EventKind::RollbackStarted && !open_before(events, k, route) {
            out.push(build(events, k, route));
        }
    }
    out
}

/// Whether `route` has an incident open at `events[k]`: a `rollback_started`
/// before it with no end (`rollback_completed`, `resumed`) in between.
fn open_before(events: &[Event], k: usize, route: &str) -> bool {
    events[..k]
        .iter()
        .rev()
        .filter(|e| e.route.as_deref() == Some(route))
        .find_map(|e| {
            if e.kind == EventKind::RollbackStarted {
                Some(true)
            } else if e.kind == EventKind::RollbackCompleted || e.kind == EventKind::Resumed {
                Some(false)
            } else {
                None
            }
        })
        .unwrap_or(false)
}

/// The incident whose first `rollback_started` is `events[k]`.
fn build(events: &[Event], k: usize, route: &str) -> Incident {
    let on_route = |e: &&Event| e.route.as_deref() == Some(route);
    let started = &events[k];
    // Back to the previous incident's end or a resume: a drill started
    // since is this incident's fault; breaches count since the last time
    // every level cleared (older ones were another story), and the watch
    // level, which never acts, is not evidence.
    let after_last = |kinds: &[EventKind]| {
        events[..k]
            .iter()
            .rposition(|e| on_route(&e) && kinds.iter().any(|kind| e.kind == *kind))
            .map_or(0, |i| i + 1)
    };
    let from = after_last(&[
        EventKind::RollbackCompleted,
        EventKind::IncidentClosed,
        EventKind::Resumed,
    ]);
    let from_breach = from.max(after_last(&[EventKind::LevelCleared]));
    let drill = events[from..k]
        .iter()
        .filter(on_route)
        .rfind(|e| e.kind == EventKind::DrillStarted);
    let breaches: Vec<&Event> = events[from_breach..k]
        .iter()
        .filter(on_route)
        .filter(|e| e.kind == EventKind::LevelBreached && !e.reason.starts_with("watch:"))
        .collect();
    let first_breach = breaches.first().copied();
    let opened = drill.or(first_breach).unwrap_or(started);
    // The end: the canary at 0, or a resume that brought it back first.
    let rest: Vec<&Event> = events[k + 1..].iter().filter(on_route).collect();
    let end = rest
        .iter()
        .position(|e| e.kind == EventKind::RollbackCompleted || e.kind == EventKind::Resumed);
    let done = end
        .map(|i| rest[i])
        .filter(|e| e.kind == EventKind::RollbackCompleted);
    let id = format!("i{}", started.seq);
    let closing = end.and_then(|i| {
        rest[i..]
            .iter()
            .find(|e| e.kind == EventKind::IncidentClosed && e.after["incident"] == id.as_str())
    });
    let end_seq = closing
        .copied()
        .or(end.map(|i| rest[i]))
        .map_or(u64::MAX, |e| e.seq);
    let timeline = events
        .iter()
        .filter(|e| on_route(e) && e.seq >= opened.seq && e.seq <= end_seq)
        .cloned()
        .collect();
    let mut evidence: Vec<String> = breaches.iter().map(|e| e.reason.clone()).collect();
    evidence.push(started.reason.clone());
    let before = if started.before.is_null() {
        done.map_or(Value::Null, |d| d.before.clone())
    } else {
        started.before.clone()
    };
    let after = match done {
        Some(d) if !d.after.is_null() => d.after.clone(),
        Some(_) => started.after.clone(),
        None => Value::Null,
    };
    Incident {
        id,
        route: route.to_owned(),
        opened: opened.time.clone(),
        closed: done.map(|d| d.time.clone()),
        trigger: started.reason.clone(),
        actor: started.actor,
        detection_s: drill.and_then(|d| span(d, first_breach?)),
        decision_s: first_breach.and_then(|b| span(b, started)),
        rollback_s: done.and_then(|d| span(started, d)),
        client_errors: closing.and_then(|c| c.after["client_errors"].as_u64()),
        client_requests: closing.and_then(|c| c.after["client_requests"].as_u64()),
        before,
        after,
        evidence,
        timeline,
    }
}

/// Seconds from `a` to `b`, by their recorded times.
fn span(a: &Event, b: &Event) -> Option<f64> {
    let t = |e: &Event| humantime::parse_rfc3339(&e.time).ok();
    Some(
        t(b)?
            .duration_since(t(a)?)
            .unwrap_or_default()
            .as_secs_f64(),
    )
}

/// Records `incident_closed` for `route`'s incident, just rolled back:
/// the route's client-visible errors since the incident opened, read now,
/// while that span is the telemetry's latest window.
pub(crate) fn close(live: &Live, route: &str, actor: Actor) {
    let events = live.shared().events.since(0, Some(route));
    let Some(incident) = list(&events).pop() else {
        return;
    };
    if incident.client_errors.is_some() || incident.closed.is_none() {
        return;
    }
    let opened = humantime::parse_rfc3339(&incident.opened).ok();
    let since = opened
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
        .max(Duration::from_secs(1));
    let snap = live.snapshot();
    let Some(r) = snap.routes.iter().find(|r| *r.name == *route) else {
        return;
    };
    let w = r.stats.window(since);
    let reason = format!(
        "incident {}: {} of {} client requests failed since it opened",
        incident.id, w.errors, w.requests
    );
    live.shared().events.record(
        Draft::new(actor, EventKind::IncidentClosed, reason)
            .route(route)
            .change(
                Value::Null,
                json!({
                    "incident": incident.id,
                    "client_errors": w.errors,
                    "client_requests": w.requests,
                }),
            ),
    );
}

/// The report as Markdown: the root-cause template's sections (summary,
/// impact, timeline, trigger and evidence, actions), numbers filled in.
pub fn markdown(i: &Incident) -> String {
    let secs = |s: Option<f64>| s.map_or_else(|| "—".to_owned(), |s| format!("{s:.2} s"));
    let count = |n: Option<u64>| n.map_or_else(|| "— (still open)".to_owned(), |n| n.to_string());
    let mut md = String::new();
    let _ = writeln!(md, "# Incident {} on route `{}`\n", i.id, i.route);
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(md, "- Opened: {}", i.opened);
    let _ = writeln!(
        md,
        "- Closed (canary at 0): {}",
        i.closed.as_deref().unwrap_or("— (rolling back)")
    );
    let _ = writeln!(md, "- Rolled back by: {}", actor_word(i.actor));
    let _ = writeln!(md, "- Trigger: {}\n", i.trigger);
    let _ = writeln!(md, "## Impact\n");
    let _ = writeln!(
        md,
        "- Client-visible errors: {} of {} requests",
        count(i.client_errors),
        count(i.client_requests)
    );
    let _ = writeln!(md, "- Weights before: {}", weights(&i.before));
    let _ = writeln!(md, "- Weights after: {}\n", weights(&i.after));
    let _ = writeln!(md, "## Times\n");
    let _ = writeln!(md, "| detection (fault → breach) | decision (breach → action) | rollback (action → canary at 0) |");
    let _ = writeln!(md, "|---|---|---|");
    let _ = writeln!(
        md,
        "| {} | {} | {} |\n",
        secs(i.detection_s),
        secs(i.decision_s),
        secs(i.rollback_s)
    );
    let _ = writeln!(md, "## Evidence\n");
    for e in &i.evidence {
        let _ = writeln!(md, "- {e}");
    }
    let _ = writeln!(md, "\n## Timeline (audit log)\n");
    let _ = writeln!(md, "| seq | time | actor | event | reason |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for e in &i.timeline {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            e.seq,
            e.time,
            actor_word(e.actor),
            e.kind,
            e.reason.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        md,
        "\n## Root cause and follow-ups\n\n_To be written by the people on call._"
    );
    md
}

fn actor_word(a: Actor) -> &'static str {
    match a {
        Actor::Engine => "engine",
        Actor::Api => "api",
        Actor::File => "file",
        Actor::Signal => "signal",
    }
}

/// `{"v1": 100, "v2": 0}` as `v1 100, v2 0`.
fn weights(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, w)| format!("{k} {w}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "—".to_owned(),
    }
}

#[cfg(test)]
mod tests;
