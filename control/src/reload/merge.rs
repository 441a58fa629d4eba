//! How a new routing file and the live state combine.
//!
//! The rule: **the file is intent; live state survives only where the file
//! did not change that thing.**
//! - A route removed from the file: its weight overrides and its
//!   rollout/rollback state are dropped.
//! - A version that is new, whose URL changed or whose file weight changed:
//!   its live weight override is dropped, the file's weight applies.
//!   Versions the file left as they were keep their live weights.
//! - A route's rollout/rollback state is about one canary, kept as (name,
//!   URL). While that canary is still in the file with the same URL, the
//!   state stays; and a canary that is rolled back (or rolling back) keeps
//!   its live weight even when its file weight changed: it stays rolled
//!   back until `resume`. A canary whose name or URL changed is a new
//!   canary, new intent: the route's state and all its overrides go.
//! - Maintenance mode is not in the file and survives every reload.
//!
//! A restore ([`MergeMode::Restore`]) is a return to a snapshot: every
//! override and route state is dropped, except that a rolled-back canary
//! still in the file with the same URL stays rolled back.

use std::collections::BTreeSet;

use serin_config::{Config, Route};

use crate::persist::{LiveState, Phase, RouteState};

/// Which rule to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeMode {
    /// A changed routing file (watcher, SIGHUP, `POST /reload`).
    Reload,
    /// `POST /revisions/{id}/restore`.
    Restore,
}

/// Carries `state` over from `old` to `new` (see the module docs) and
/// returns one note per dropped or protected piece of state, for the
/// event's reason.
pub(crate) fn merge(
    old: &Config,
    new: &Config,
    state: &mut LiveState,
    mode: MergeMode,
) -> Vec<String> {
    let mut notes = Vec::new();
    let names: BTreeSet<String> = state
        .weights
        .keys()
        .chain(state.routes.keys())
        .cloned()
        .collect();
    for name in names {
        let Some(route) = new.routes.iter().find(|r| r.name == name) else {
            state.weights.remove(&name);
            state.routes.remove(&name);
            notes.push(format!("{name}: route removed, its live state dropped"));
            continue;
        };
        let old_route = old.routes.iter().find(|r| r.name == name);
        merge_route(route, old_route, state, mode, &mut notes);
    }
    notes
}

fn merge_route(
    route: &Route,
    old: Option<&Route>,
    state: &mut LiveState,
    mode: MergeMode,
    notes: &mut Vec<String>,
) {
    let name = &route.name;
    // The canary whose override is protected: rolled back and unchanged.
    let mut protected: Option<String> = None;
    if let Some(rs) = state.routes.get(name).cloned() {
        let canary_kept = rs.canary.as_ref().is_some_and(|c| canary_in(route, c));
        let rolled_back = matches!(rs.phase, Phase::RolledBack | Phase::RollingBack);
        match (&rs.canary, canary_kept) {
            (Some(_), true) if rolled_back => protected = rs.canary.map(|c| c.0),
            (Some((canary, _)), false) => {
                state.routes.remove(name);
                state.weights.remove(name);
                notes.push(format!(
                    "{name}: canary {canary} changed name or URL (new intent): \
                     its {} state and the live weights dropped",
                    rs.phase.as_str()
                ));
                return;
            }
            _ if mode == MergeMode::Restore && rs != RouteState::default() => {
                state.routes.remove(name);
                notes.push(format!(
                    "{name}: {} state dropped by the restore",
                    rs.phase.as_str()
                ));
            }
            _ => {}
        }
    }
    let Some(overrides) = state.weights.get_mut(name) else {
        return;
    };
    let mut dropped = Vec::new();
    overrides.retain(|version, _| {
        if protected.as_deref() == Some(version.as_str()) {
            return true;
        }
        let Some(v) = route.versions.iter().find(|v| v.name == *version) else {
            dropped.push(format!("{version} (removed)"));
            return false;
        };
        let before = old.and_then(|r| r.versions.iter().find(|o| o.name == *version));
        let why = match before {
            _ if mode == MergeMode::Restore => "restored",
            None => "new",
            Some(o) if o.url != v.url => "URL changed",
            Some(o) if o.weight != v.weight => "file weight changed",
            Some(_) => return true,
        };
        dropped.push(format!("{version} ({why})"));
        false
    });
    if overrides.is_empty() {
        state.weights.remove(name);
    }
    if !dropped.is_empty() {
        notes.push(format!(
            "{name}: live weight of {} dropped, the file's applies",
            dropped.join(", ")
        ));
    }
    if let Some(canary) = protected {
        let changed = match (
            old.and_then(|r| r.versions.iter().find(|v| v.name == canary)),
            route.versions.iter().find(|v| v.name == canary),
        ) {
            (Some(o), Some(n)) => o.weight != n.weight,
            _ => false,
        };
        if changed || mode == MergeMode::Restore {
            notes.push(format!(
                "{name}: {canary} stays rolled back (its file weight is not applied; \
                 `serin resume {name}` brings it back)"
            ));
        }
    }
}

/// Whether the route still has the canary `(name, url)` with that URL.
fn canary_in(route: &Route, (name, url): &(String, String)) -> bool {
    route
        .versions
        .iter()
        .any(|v| v.name == *name && same_url(&v.url.to_string(), url))
}

/// URLs compare without a trailing `/` (`http::Uri` prints one for an
/// empty path; a hand-written state may not).
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

#[cfg(test)]
mod tests;
