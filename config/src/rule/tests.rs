use super::*;

fn compare(text: &str) -> (Metric, Op, Value) {
    match parse(text, &[])
        .unwrap_or_else(|e| panic!("{text:?}: {}", e.message))
        .kind
    {
        RuleKind::Compare { metric, op, value } => (metric, op, value),
        other => panic!("{text:?} parsed to {other:?}"),
    }
}

/// The message and byte offset of a rule that must not parse.
fn reject(text: &str) -> (String, usize) {
    let e = parse(text, &[]).expect_err(text);
    (e.message, e.offset)
}

#[test]
fn absolute_values_in_the_metrics_unit() {
    use Value::Absolute;
    assert_eq!(
        compare("error_rate > 10%"),
        (Metric::ErrorRate, Op::Gt, Absolute(0.1))
    );
    assert_eq!(
        compare("availability < 95%"),
        (Metric::Availability, Op::Lt, Absolute(0.95))
    );
    assert_eq!(
        compare("error_rate >= 0.05"),
        (Metric::ErrorRate, Op::Ge, Absolute(0.05))
    );
    assert_eq!(compare("p99 > 10s"), (Metric::P99, Op::Gt, Absolute(10.0)));
    assert_eq!(compare("p50<=250ms"), (Metric::P50, Op::Le, Absolute(0.25)));
    assert_eq!(
        compare("p999 > 1m30s"),
        (Metric::P999, Op::Gt, Absolute(90.0))
    );
    assert_eq!(
        compare("mean > 1.5s"),
        (Metric::Mean, Op::Gt, Absolute(1.5))
    );
    assert_eq!(compare("p90 > 1h"), (Metric::P90, Op::Gt, Absolute(3600.0)));
    assert_eq!(compare("p95 > 3s"), (Metric::P95, Op::Gt, Absolute(3.0)));
    assert_eq!(compare("rps < 100"), (Metric::Rps, Op::Lt, Absolute(100.0)));
    assert_eq!(compare("rps > 0.5"), (Metric::Rps, Op::Gt, Absolute(0.5)));
}

#[test]
fn baseline_forms() {
    let base = |times, plus| Value::Baseline { times, plus };
    assert_eq!(compare("p99 > baseline").2, base(1.0, 0.0));
    assert_eq!(compare("p99 > baseline * 1.5").2, base(1.5, 0.0));
    assert_eq!(compare("p99 > baseline*2").2, base(2.0, 0.0));
    assert_eq!(compare("p99 > baseline + 200ms").2, base(1.0, 0.2));
    assert_eq!(compare("error_rate > baseline + 2%").2, base(1.0, 0.02));
    assert_eq!(compare("availability < baseline - 1%").2, base(1.0, -0.01));
    assert_eq!(compare("p99 > baseline * 1.2 + 50ms").2, base(1.2, 0.05));
    assert_eq!(compare("rps < baseline * 0.5").2, base(0.5, 0.0));
}

#[test]
fn bare_words() {
    assert_eq!(
        parse("breaker_open", &[]).unwrap().kind,
        RuleKind::BreakerOpen
    );
    assert_eq!(
        parse("  unhealthy ", &[]).unwrap().kind,
        RuleKind::Unhealthy
    );
}

#[test]
fn display_prints_the_text_as_written() {
    for text in ["p99 > baseline * 1.5", "error_rate>10%", "unhealthy"] {
        assert_eq!(parse(text, &[]).unwrap().to_string(), text);
    }
    assert_eq!(parse(" p99 > 1s ", &[]).unwrap().text, "p99 > 1s");
    assert_eq!(crate::parse_rule("rps > 5").unwrap().to_string(), "rps > 5");
}

#[test]
fn unit_mismatches_name_the_expected_unit() {
    assert_eq!(
        reject("p99 > 10%"),
        ("p99 needs a duration like 500ms, got 10%".into(), 6)
    );
    assert_eq!(
        reject("p99 > 10"),
        ("p99 needs a duration like 500ms, got 10".into(), 6)
    );
    let (message, at) = reject("error_rate > 10s");
    assert!(
        message.starts_with("error_rate needs a percentage like 5%"),
        "{message}"
    );
    assert_eq!(at, 13);
    let (message, _) = reject("error_rate > 5");
    assert!(
        message.contains("fraction in [0, 1]") && message.contains("5%?"),
        "{message}"
    );
    let (message, _) = reject("error_rate > 150%");
    assert!(message.contains("between 0% and 100%"), "{message}");
    let (message, _) = reject("rps > 10%");
    assert!(message.starts_with("rps needs a plain number"), "{message}");
    let (message, at) = reject("p99 > baseline + 5%");
    assert_eq!(
        (message.as_str(), at),
        ("p99 needs a duration like 500ms, got 5%", 17)
    );
    let (message, at) = reject("p99 > 10x");
    assert!(message.contains("unknown duration unit `x`"), "{message}");
    assert_eq!(at, 6);
}

#[test]
fn syntax_errors_point_at_the_token() {
    let (message, at) = reject("p98 > 1s");
    assert!(message.starts_with("unknown metric `p98`"), "{message}");
    assert_eq!(at, 0);
    let (message, at) = reject("p99 = 1s");
    assert!(message.contains("`=` is not supported"), "{message}");
    assert_eq!(at, 4);
    let (message, at) = reject("p99 1s");
    assert!(
        message.starts_with("expected >, >=, < or <= after `p99`"),
        "{message}"
    );
    assert_eq!(at, 4);
    let (message, at) = reject("p99");
    assert!(message.contains("needs an operator"), "{message}");
    assert_eq!(at, 3);
    let (message, at) = reject("p99 >");
    assert!(message.starts_with("missing value"), "{message}");
    assert_eq!(at, 5);
    let (message, at) = reject("p99 > 1s or p50 > 2s");
    assert!(message.starts_with("unexpected `or`"), "{message}");
    assert_eq!(at, 9);
    let (message, at) = reject("breaker_open > 1");
    assert!(message.contains("takes no comparison"), "{message}");
    assert_eq!(at, 13);
    let (message, at) = reject("p99 > baseline * x");
    assert!(message.contains("plain number above 0"), "{message}");
    assert_eq!(at, 17);
    let (message, _) = reject("p99 > baseline +");
    assert!(
        message.starts_with("missing value after `baseline +`"),
        "{message}"
    );
    let (message, at) = reject("p99 > 1s;");
    assert_eq!((message.as_str(), at), ("unexpected character `;`", 8));
    assert_eq!(
        reject("   ").0,
        "empty rule: write e.g. `error_rate > 5%` or `p99 > 500ms`"
    );
    let (message, _) = reject("> 5%");
    assert!(
        message.starts_with("a rule starts with a metric"),
        "{message}"
    );
}

#[test]
fn evaluation_helpers() {
    assert!(Op::Gt.holds(2.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
    assert!(Op::Ge.holds(1.0, 1.0) && Op::Le.holds(1.0, 1.0));
    assert!(Op::Lt.holds(0.5, 1.0) && !Op::Lt.holds(f64::NAN, 1.0));
    assert_eq!(Value::Absolute(3.0).threshold(None), Some(3.0));
    let base = Value::Baseline {
        times: 1.5,
        plus: 0.1,
    };
    assert_eq!(base.threshold(Some(2.0)), Some(3.1));
    assert_eq!(base.threshold(None), None);
    for metric in Metric::ALL {
        assert_eq!(Metric::from_name(metric.name()), Some(metric));
    }
    assert_eq!(Metric::P99.unit(), Unit::Seconds);
    assert_eq!(Op::Ge.to_string(), ">=");
}

#[test]
fn signal_metrics_resolve_to_the_route_signal_by_name() {
    let signals = ["hallucination", "quality"];
    let rule = parse("hallucination_rate > 15%", &signals).unwrap();
    assert_eq!(rule.metric_name(), "hallucination_rate");
    assert_eq!(
        rule.kind,
        RuleKind::Compare {
            metric: Metric::SignalRate(0),
            op: Op::Gt,
            value: Value::Absolute(0.15)
        }
    );
    let rule = parse("quality_mean < baseline * 0.9", &signals).unwrap();
    assert!(matches!(
        rule.kind,
        RuleKind::Compare {
            metric: Metric::SignalMean(1),
            op: Op::Lt,
            value: Value::Baseline { .. }
        }
    ));
    assert_eq!(
        compare("mirror_mismatch_rate > 1%"),
        (Metric::MirrorMismatchRate, Op::Gt, Value::Absolute(0.01))
    );
    let e = parse("mirror_mismatch_rate > baseline", &[]).expect_err("baseline");
    assert!(e.message.contains("has no baseline"), "{}", e.message);
    // A mean is in the upstream's own scale: a plain number.
    let e = parse("quality_mean < 80%", &signals).expect_err("percent");
    assert!(
        e.message.contains("quality_mean needs a plain number"),
        "{}",
        e.message
    );
    // A signal the route does not declare is named with the ones it does.
    let e = parse("toxicity_rate > 1%", &signals).expect_err("undeclared");
    assert!(
        e.message
            .contains("this route's signals: hallucination, quality"),
        "{}",
        e.message
    );
    let e = parse("toxicity_rate > 1%", &[]).expect_err("none");
    assert!(
        e.message.contains("declares no [[routes.signals]]"),
        "{}",
        e.message
    );
}
