use std::time::Duration;

use serin_config::parse_rule;

use super::*;
use crate::telemetry::{Outcome, Telemetry};

use crate::telemetry::test_window as window;

fn ev<'a>(canary: &'a WindowStats, stable: Option<&'a WindowStats>) -> Evidence<'a> {
    Evidence {
        canary,
        stable,
        breaker_open: false,
        unhealthy: false,
        health_detail: String::new(),
        min_requests: 50,
    }
}

#[test]
fn error_rate_breaches_with_numbers_in_the_reason() {
    let c = window(69, 31, Duration::from_millis(5));
    let rules = [parse_rule("error_rate > 10%").unwrap()];
    let v = judge_level(&rules, &ev(&c, None));
    assert_eq!(v.hit().unwrap().to_string(), "error_rate 31% > 10% (n=100)");
    assert_eq!(
        v.hit().unwrap().held(Duration::from_secs(120)),
        "error_rate 31% > 10% held 2m0s (n=100)"
    );
    let healthy = window(100, 2, Duration::from_millis(5));
    assert_eq!(judge_level(&rules, &ev(&healthy, None)), Verdict::Clear);
}

#[test]
fn too_few_requests_is_inconclusive_but_breaker_rules_still_count() {
    let c = window(1, 2, Duration::from_millis(5));
    let rules = [
        parse_rule("error_rate > 10%").unwrap(),
        parse_rule("breaker_open").unwrap(),
    ];
    assert_eq!(
        judge_level(&rules, &ev(&c, None)),
        Verdict::Inconclusive { requests: 3 }
    );
    let mut e = ev(&c, None);
    e.breaker_open = true;
    assert_eq!(judge_level(&rules, &e).hit().unwrap().text, "breaker_open");
}

#[test]
fn baseline_rules_fire_only_when_worse_than_stable() {
    let rule = [parse_rule("p99 > baseline * 1.5").unwrap()];
    let stable = window(200, 0, Duration::from_millis(100));
    let same = window(200, 0, Duration::from_millis(120));
    let worse = window(200, 0, Duration::from_millis(300));
    assert_eq!(
        judge_level(&rule, &ev(&same, Some(&stable))),
        Verdict::Clear
    );
    let hit = judge_level(&rule, &ev(&worse, Some(&stable)));
    assert!(
        hit.hit().unwrap().text.starts_with("p99 300ms > 150ms"),
        "{hit:?}"
    );
    // No baseline traffic: a baseline rule cannot hold.
    assert_eq!(judge_level(&rule, &ev(&worse, None)), Verdict::Clear);
}

#[test]
fn percentiles_with_few_samples_are_counted() {
    // 60 samples: too few for a p99; 2 slow ones are more than 1% of 60.
    let t = Telemetry::new();
    let v = t.version("r", "few");
    for _ in 0..58 {
        v.record(Outcome::Success, Duration::from_millis(10));
    }
    for _ in 0..2 {
        v.record(Outcome::Success, Duration::from_secs(12));
    }
    let w = v.window(Duration::from_secs(60));
    let rule = [parse_rule("p99 > 10s").unwrap()];
    let hit = judge_level(&rule, &ev(&w, None));
    let text = &hit.hit().unwrap().text;
    assert!(text.contains("2 of 60 requests over 10s"), "{text}");
    assert!(text.contains("counted instead"), "{text}");
}
