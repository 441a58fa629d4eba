//! Judging rules and levels against a canary's window (and the stable
//! version's, for `baseline` rules). Pure functions: no clock, no I/O.

use std::time::Duration;

use serin_config::{Metric, Op, Rule, RuleKind};

use crate::telemetry::WindowStats;

/// What the engine knows about one canary at one tick.
#[derive(Debug)]
pub(crate) struct Evidence<'a> {
    pub canary: &'a WindowStats,
    /// The stable version over the same window; `None` when the route has
    /// no stable version with traffic (baseline rules cannot hold then).
    pub stable: Option<&'a WindowStats>,
    /// The canary's mirrored copies over the same window, when the route
    /// mirrors to it (`mirror_mismatch_rate` reads them).
    pub mirror: Option<&'a WindowStats>,
    pub breaker_open: bool,
    pub unhealthy: bool,
    /// Health probe failures, for the reason text.
    pub health_detail: String,
    /// `min_requests` of the route's rollback section.
    pub min_requests: u64,
}

/// A rule that holds, with the numbers that made it hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit {
    /// E.g. `error_rate 31% > 10%`.
    pub text: String,
    /// Requests in the window, when the rule judged traffic.
    pub n: Option<u64>,
}

/// One level's verdict this tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// At least one rule holds.
    Breached(Hit),
    /// No rule holds, with enough requests to say so.
    Clear,
    /// Too few requests to judge the traffic rules (and no traffic-free rule holds).
    Inconclusive { requests: u64 },
}

// === impl Hit ===

impl Hit {
    fn new(text: String, n: Option<u64>) -> Self {
        Self { text, n }
    }

    /// `error_rate 31% > 10% held 2m0s (n=1840)`: the reason an action quotes.
    pub(crate) fn held(&self, confirm: Duration) -> String {
        let held = serin_config::format_duration(confirm);
        match self.n {
            Some(n) => format!("{} held {held} (n={n})", self.text),
            None => format!("{} held {held}", self.text),
        }
    }
}

impl std::fmt::Display for Hit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.n {
            Some(n) => write!(f, "{} (n={n})", self.text),
            None => f.write_str(&self.text),
        }
    }
}

// === impl Verdict ===

impl Verdict {
    /// The hit, if breached.
    #[cfg(test)]
    pub(crate) fn hit(&self) -> Option<&Hit> {
        match self {
            Self::Breached(h) => Some(h),
            _ => None,
        }
    }
}

/// Judges a level: breached when any rule holds. Rules that need no
/// traffic (`breaker_open`, `unhealthy`) are judged whatever the count;
/// the others only with at least `min_requests` in their sample (requests
/// in the window; mirrored comparisons for `mirror_mismatch_rate`).
pub(crate) fn judge_level(rules: &[Rule], ev: &Evidence<'_>) -> Verdict {
    let mut short: Option<u64> = None;
    for rule in rules {
        if let Some(n) = sample(rule, ev).filter(|n| *n < ev.min_requests) {
            short = Some(short.map_or(n, |s| s.min(n)));
            continue;
        }
        if let Some(hit) = judge(rule, ev) {
            return Verdict::Breached(hit);
        }
    }
    match short {
        None => Verdict::Clear,
        Some(requests) => Verdict::Inconclusive { requests },
    }
}

/// How many observations `rule` judges from; `None` for a rule that needs
/// none (`breaker_open`, `unhealthy`) or whose source this canary lacks
/// (`mirror_mismatch_rate` of a version nothing is mirrored to: it
/// cannot hold, and must not leave the level inconclusive forever).
fn sample(rule: &Rule, ev: &Evidence<'_>) -> Option<u64> {
    match rule.kind {
        RuleKind::BreakerOpen | RuleKind::Unhealthy => None,
        RuleKind::Compare {
            metric: Metric::MirrorMismatchRate,
            ..
        } => ev.mirror.map(|m| m.compared),
        RuleKind::Compare { .. } => Some(ev.canary.requests),
    }
}

/// Whether one rule holds, and why.
pub(crate) fn judge(rule: &Rule, ev: &Evidence<'_>) -> Option<Hit> {
    match &rule.kind {
        RuleKind::BreakerOpen => ev
            .breaker_open
            .then(|| Hit::new("breaker_open".into(), None)),
        RuleKind::Unhealthy => ev
            .unhealthy
            .then(|| Hit::new(format!("unhealthy: {}", ev.health_detail), None)),
        RuleKind::Compare { metric, op, value } => {
            let baseline = ev.stable.and_then(|s| measure(*metric, s));
            let threshold = value.threshold(baseline)?;
            if let Some(q) = quantile(*metric) {
                return judge_percentile(*metric, q, *op, threshold, ev.canary);
            }
            let (w, n) = match metric {
                Metric::MirrorMismatchRate => ev.mirror.map(|m| (m, m.compared))?,
                _ => (ev.canary, ev.canary.requests),
            };
            let measured = measure(*metric, w)?;
            op.holds(measured, threshold).then(|| {
                let (m, t) = show(*metric, measured, threshold);
                let text = format!("{} {m} {} {t}", rule.metric_name(), op.symbol());
                Hit::new(text, Some(n))
            })
        }
    }
}

/// A percentile needs about `1 / (1 - q)` samples to mean anything (p99:
/// 100, p99.9: 1000). With fewer, "p99 > X" is judged as "more than 1% of
/// the requests took longer than X", counted directly, and the reason says so.
fn judge_percentile(
    metric: Metric,
    q: f64,
    op: Op,
    threshold: f64,
    w: &WindowStats,
) -> Option<Hit> {
    let n = w.samples();
    if n == 0 {
        return None;
    }
    let needed = (1.0 / (1.0 - q)).ceil() as u64;
    let name = metric.name();
    if n >= needed || matches!(op, Op::Lt | Op::Le) {
        let measured = w.percentile(q * 100.0)?.as_secs_f64();
        return op.holds(measured, threshold).then(|| {
            let (m, t) = show(metric, measured, threshold);
            let text = format!("{name} {m} {} {t}", op.symbol());
            Hit::new(text, Some(n))
        });
    }
    let over =
        w.count_above(Duration::try_from_secs_f64(threshold.max(0.0)).unwrap_or(Duration::MAX));
    let allowed = ((n as f64) * (1.0 - q)).floor() as u64;
    (over > allowed).then(|| {
        let text = format!(
            "{name} {} {}: {over} of {n} requests over {} (too few samples for a {name}; counted instead)",
            op.symbol(),
            show(metric, threshold, threshold).1,
            show(metric, threshold, threshold).1
        );
        Hit::new(text, None)
    })
}

fn quantile(metric: Metric) -> Option<f64> {
    match metric {
        Metric::P50 => Some(0.50),
        Metric::P90 => Some(0.90),
        Metric::P95 => Some(0.95),
        Metric::P99 => Some(0.99),
        Metric::P999 => Some(0.999),
        Metric::ErrorRate
        | Metric::Availability
        | Metric::Rps
        | Metric::Mean
        | Metric::MirrorMismatchRate
        | Metric::SignalRate(_)
        | Metric::SignalMean(_) => None,
    }
}

/// The metric's value over a window, in its unit; `None` with no requests.
pub(crate) fn measure(metric: Metric, w: &WindowStats) -> Option<f64> {
    match metric {
        Metric::ErrorRate => w.error_rate(),
        Metric::Availability => w.availability(),
        Metric::Rps => Some(w.rps()),
        Metric::Mean => w.mean().map(|d| d.as_secs_f64()),
        Metric::MirrorMismatchRate => w.mismatch_rate(),
        Metric::SignalRate(i) => w.signal_rate(usize::from(i)),
        Metric::SignalMean(i) => w.signal_mean(usize::from(i)),
        Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 | Metric::P999 => w
            .percentile(quantile(metric)? * 100.0)
            .map(|d| d.as_secs_f64()),
    }
}

/// `measured` and `threshold` in the metric's unit, with as many decimals
/// as it takes to tell them apart: a reason never reads `20% > 20%`. The
/// threshold is written as the file would write it (no trailing zeros).
fn show(metric: Metric, measured: f64, threshold: f64) -> (String, String) {
    let at = |v: f64, d: usize| match metric {
        Metric::ErrorRate
        | Metric::Availability
        | Metric::MirrorMismatchRate
        | Metric::SignalRate(_) => format!("{:.d$}%", v * 100.0),
        Metric::Rps => format!("{:.d$}/s", v),
        Metric::SignalMean(_) => format!("{:.d$}", v),
        Metric::Mean | Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 | Metric::P999 => {
            if v < 1.0 {
                format!("{:.d$}ms", v * 1000.0)
            } else {
                format!("{:.*}s", d + 2, v)
            }
        }
    };
    let d = (0..6)
        .find(|&d| at(measured, d) != at(threshold, d))
        .unwrap_or(6);
    (at(measured, d), trim(&at(threshold, d)))
}

/// `20.00%` → `20%`, `1.50s` → `1.5s`.
fn trim(s: &str) -> String {
    let unit = s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let num = &s[..s.len() - unit.len()];
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{unit}")
}

#[cfg(test)]
mod tests;
