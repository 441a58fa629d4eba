use std::time::Duration;

use serin_config::parse_rule;

use super::*;
use crate::telemetry::{Outcome, Telemetry};

use crate::telemetry::test_window as window;

fn ev<'a>(canary: &'a WindowStats, stable: Option<&'a WindowStats>) -> Evidence<'a> {
    Evidence {
        canary,
        stable,
        mirror: None,
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

#[test]
fn a_signal_rate_counts_every_answer_and_a_mean_only_the_reports() {
    use crate::telemetry::SignalValues;
    let t = Telemetry::new();
    let v = t.version("r", "v");
    // 100 answers: 30 report the signal true, 20 report it false, 50 carry nothing.
    for i in 0..100 {
        let reported = match i {
            0..30 => Some(1.0),
            30..50 => Some(0.0),
            _ => None,
        };
        let values = SignalValues([reported, None, None, None]);
        v.record_signals(Outcome::Success, Duration::from_millis(5), &values);
    }
    let c = v.window(Duration::from_secs(60));
    assert_eq!(c.signal_rate(0), Some(0.30));
    assert_eq!(c.signal_mean(0), Some(0.6));
    assert_eq!(c.signal_mean(1), None);
    let rules = [serin_config::Rule {
        kind: RuleKind::Compare {
            metric: Metric::SignalRate(0),
            op: Op::Gt,
            value: serin_config::Value::Absolute(0.15),
        },
        text: "hallucination_rate > 15%".into(),
    }];
    let v = judge_level(&rules, &ev(&c, None));
    assert_eq!(
        v.hit().unwrap().to_string(),
        "hallucination_rate 30% > 15% (n=100)"
    );
}

#[test]
fn mirror_mismatches_are_judged_on_comparisons_not_requests() {
    let t = Telemetry::new();
    let m = t.version("r", "mirror");
    for i in 0..40 {
        m.record_comparison(i % 4 != 0);
    }
    let mirror = m.window(Duration::from_secs(60));
    // A canary nobody is sent to yet: judged on its mirror alone.
    let canary = window(0, 0, Duration::from_millis(5));
    let rules = [parse_rule("mirror_mismatch_rate > 5%").unwrap()];
    let evidence = |min_requests| Evidence {
        mirror: Some(&mirror),
        min_requests,
        ..ev(&canary, None)
    };
    assert_eq!(
        judge_level(&rules, &evidence(50)),
        Verdict::Inconclusive { requests: 40 }
    );
    let v = judge_level(&rules, &evidence(20));
    assert_eq!(
        v.hit().unwrap().to_string(),
        "mirror_mismatch_rate 25% > 5% (n=40)"
    );
    // Without a mirror the rule cannot hold, nor keep the level waiting.
    assert_eq!(judge_level(&rules, &ev(&canary, None)), Verdict::Clear);
}
