//! The merge rule, case by case.

use serin_config::Config;

use super::{merge, MergeMode};
use crate::persist::{LiveState, Phase, RouteState};

/// A file with route `svc` (v1, v2 as given) and route `other` (v1 only).
fn file(v1: f64, v2: f64, v2_url: &str) -> Config {
    let text = format!(
        r#"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:9001"
  weight = {v1}
  [[routes.versions]]
  name = "v2"
  url = "{v2_url}"
  weight = {v2}
[[routes]]
name = "other"
path_prefix = "/other"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:9101"
  weight = 1
"#
    );
    serin_config::parse(&text, "t.toml").unwrap()
}

const URL2: &str = "http://127.0.0.1:9002";

fn state(weights: &[(&str, &str, f64)]) -> LiveState {
    let mut s = LiveState {
        revision: "r1".into(),
        ..LiveState::default()
    };
    for (route, version, w) in weights {
        s.weights
            .entry((*route).into())
            .or_default()
            .insert((*version).into(), *w);
    }
    s
}

fn rolled_back(s: &mut LiveState, url: &str) {
    s.routes.insert(
        "svc".into(),
        RouteState {
            phase: Phase::RolledBack,
            canary: Some(("v2".into(), format!("{url}/"))),
            ..RouteState::default()
        },
    );
}

fn w(s: &LiveState, route: &str, version: &str) -> Option<f64> {
    s.weights.get(route).and_then(|m| m.get(version)).copied()
}

#[test]
fn unchanged_versions_keep_their_live_weights() {
    let mut s = state(&[
        ("svc", "v1", 50.0),
        ("svc", "v2", 50.0),
        ("other", "v1", 3.0),
    ]);
    let notes = merge(
        &file(90.0, 10.0, URL2),
        &file(90.0, 10.0, URL2),
        &mut s,
        MergeMode::Reload,
    );
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        (w(&s, "svc", "v1"), w(&s, "svc", "v2")),
        (Some(50.0), Some(50.0))
    );
    assert_eq!(w(&s, "other", "v1"), Some(3.0));
}

#[test]
fn a_changed_file_weight_is_new_intent() {
    let mut s = state(&[("svc", "v1", 50.0), ("svc", "v2", 50.0)]);
    let notes = merge(
        &file(90.0, 10.0, URL2),
        &file(80.0, 10.0, URL2),
        &mut s,
        MergeMode::Reload,
    );
    assert_eq!(w(&s, "svc", "v1"), None, "v1's file weight changed");
    assert_eq!(w(&s, "svc", "v2"), Some(50.0), "v2 untouched by the file");
    assert!(notes[0].contains("v1 (file weight changed)"), "{notes:?}");
}

#[test]
fn a_changed_url_drops_the_override() {
    let mut s = state(&[("svc", "v2", 50.0)]);
    merge(
        &file(90.0, 10.0, URL2),
        &file(90.0, 10.0, "http://127.0.0.1:9999"),
        &mut s,
        MergeMode::Reload,
    );
    assert_eq!(w(&s, "svc", "v2"), None);
    assert!(!s.weights.contains_key("svc"), "an empty override map goes");
}

#[test]
fn a_removed_route_loses_its_state() {
    let mut s = state(&[("gone", "v1", 1.0)]);
    s.routes.insert("gone".into(), RouteState::default());
    let notes = merge(
        &file(90.0, 10.0, URL2),
        &file(90.0, 10.0, URL2),
        &mut s,
        MergeMode::Reload,
    );
    assert!(s.weights.is_empty() && s.routes.is_empty());
    assert!(notes[0].starts_with("gone: route removed"), "{notes:?}");
}

#[test]
fn a_rolled_back_canary_stays_rolled_back() {
    let mut s = state(&[("svc", "v2", 0.0)]);
    rolled_back(&mut s, URL2);
    // The file raises the canary's weight: it must not come back by itself.
    let notes = merge(
        &file(90.0, 10.0, URL2),
        &file(80.0, 20.0, URL2),
        &mut s,
        MergeMode::Reload,
    );
    assert_eq!(w(&s, "svc", "v2"), Some(0.0));
    assert_eq!(s.routes["svc"].phase, Phase::RolledBack);
    assert!(
        notes.iter().any(|n| n.contains("v2 stays rolled back")),
        "{notes:?}"
    );
}

#[test]
fn a_new_canary_url_is_new_intent() {
    let mut s = state(&[("svc", "v1", 100.0), ("svc", "v2", 0.0)]);
    rolled_back(&mut s, URL2);
    let notes = merge(
        &file(90.0, 10.0, URL2),
        &file(90.0, 10.0, "http://127.0.0.1:9004"),
        &mut s,
        MergeMode::Reload,
    );
    assert!(s.routes.is_empty(), "rollback state dropped");
    assert!(
        !s.weights.contains_key("svc"),
        "all of the route's overrides dropped"
    );
    assert!(
        notes[0].contains("canary v2 changed name or URL"),
        "{notes:?}"
    );
}

#[test]
fn a_restore_drops_every_override_but_a_rolled_back_canary() {
    let mut s = state(&[
        ("svc", "v1", 50.0),
        ("svc", "v2", 0.0),
        ("other", "v1", 3.0),
    ]);
    rolled_back(&mut s, URL2);
    merge(
        &file(90.0, 10.0, URL2),
        &file(90.0, 10.0, URL2),
        &mut s,
        MergeMode::Restore,
    );
    assert_eq!(w(&s, "svc", "v1"), None);
    assert_eq!(w(&s, "other", "v1"), None);
    assert_eq!(w(&s, "svc", "v2"), Some(0.0));
    assert_eq!(s.routes["svc"].phase, Phase::RolledBack);

    let mut s = state(&[]);
    s.routes.insert(
        "svc".into(),
        RouteState {
            phase: Phase::Progressing,
            step: Some(2),
            canary: Some(("v2".into(), URL2.into())),
            ..RouteState::default()
        },
    );
    merge(
        &file(90.0, 10.0, URL2),
        &file(90.0, 10.0, URL2),
        &mut s,
        MergeMode::Restore,
    );
    assert!(s.routes.is_empty(), "a restore ends a rollout");
}

#[test]
fn maintenance_and_revision_are_not_the_merges_business() {
    let mut s = state(&[]);
    s.maintenance = Some("down".into());
    merge(
        &file(90.0, 10.0, URL2),
        &file(1.0, 1.0, URL2),
        &mut s,
        MergeMode::Reload,
    );
    assert_eq!(s.maintenance.as_deref(), Some("down"));
    assert_eq!(s.revision, "r1");
}
