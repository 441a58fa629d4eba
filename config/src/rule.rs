//! Rule expressions of `[routes.rollback]`: `METRIC OP VALUE`, `breaker_open`, `unhealthy`.
//!
//! The grammar and its error messages live in `rule/parse.rs`; this file
//! holds the AST and the small pieces of evaluation every caller needs
//! (a metric's name, an operator's test, a threshold against a baseline).

use std::fmt;

mod parse;

pub(crate) use parse::parse;

/// One parsed rule. `text` keeps the expression as written, for event reasons.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What the rule tests.
    pub kind: RuleKind,
    /// The expression as written (trimmed); also what `Display` prints.
    pub text: String,
}

/// What a rule tests.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// `METRIC OP VALUE`: true when `metric op value` holds.
    Compare {
        /// The measured side.
        metric: Metric,
        /// How the measurement is compared.
        op: Op,
        /// The threshold, in the metric's unit.
        value: Value,
    },
    /// True while the version's breaker is open.
    BreakerOpen,
    /// True while the version's active health check says unhealthy.
    Unhealthy,
}

/// A measured quantity of one version over the rule window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Fraction in [0, 1].
    ErrorRate,
    /// Fraction in [0, 1].
    Availability,
    /// Latency percentiles and mean, in seconds: median.
    P50,
    /// 90th percentile latency, seconds.
    P90,
    /// 95th percentile latency, seconds.
    P95,
    /// 99th percentile latency, seconds.
    P99,
    /// 99.9th percentile latency, seconds.
    P999,
    /// Mean latency, seconds.
    Mean,
    /// Requests per second.
    Rps,
    /// Fraction in [0, 1]: mirrored copies whose answer differed from the
    /// live one (`[routes.mirror]`), of those compared.
    MirrorMismatchRate,
    /// `NAME_rate` of the route's quality signal at this index
    /// (`[[routes.signals]]`): fraction in [0, 1] of the answers that
    /// reported it true or above 0.
    SignalRate(u8),
    /// `NAME_mean`: the mean of the values the signal reported (a plain number).
    SignalMean(u8),
}

/// The most quality signals a route may declare.
pub const MAX_SIGNALS: usize = 4;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// Right-hand side, in the metric's unit (fractions for rates, seconds for latencies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A fixed threshold.
    Absolute(f64),
    /// `baseline`, `baseline * K`, `baseline + X`: `baseline * times + plus`,
    /// where baseline is the same metric on the stable version.
    Baseline { times: f64, plus: f64 },
}

/// The unit a metric is measured in, which decides how a rule's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction in [0, 1], written as a percentage (`5%`) or a fraction (`0.05`).
    Fraction,
    /// Seconds, written as a duration (`500ms`).
    Seconds,
    /// Requests per second, written as a plain number (`100`).
    PerSecond,
    /// A plain number in the upstream's own scale (`0.8`): a signal's mean.
    Number,
}

// === impl Rule ===

impl Rule {
    /// Parses one rule expression. Same as [`crate::parse_rule`].
    ///
    /// # Errors
    ///
    /// A one-line message naming the offending token.
    pub fn parse(text: &str) -> Result<Self, String> {
        parse(text, &[]).map_err(|e| e.message)
    }

    /// The metric as the rule names it (`error_rate`, `hallucination_rate`);
    /// `breaker_open` or `unhealthy` for those.
    pub fn metric_name(&self) -> &str {
        let end = self
            .text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.text.len());
        &self.text[..end]
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// === impl Metric ===

impl Metric {
    /// Every metric with a fixed name, in the order the docs list them
    /// (a signal's metrics are named after the signal).
    pub const ALL: [Metric; 10] = [
        Metric::ErrorRate,
        Metric::Availability,
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Mean,
        Metric::Rps,
        Metric::MirrorMismatchRate,
    ];

    /// The name used in rule expressions, e.g. `error_rate`, `p99`; for a
    /// signal's metric the generic `signal_rate` / `signal_mean` (the rule's
    /// text has the signal's own name: [`Rule::metric_name`]).
    pub fn name(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error_rate",
            Metric::Availability => "availability",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Mean => "mean",
            Metric::Rps => "rps",
            Metric::MirrorMismatchRate => "mirror_mismatch_rate",
            Metric::SignalRate(_) => "signal_rate",
            Metric::SignalMean(_) => "signal_mean",
        }
    }

    /// The metric called `name` in rule expressions.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The unit the metric (and a rule's value for it) is measured in.
    pub fn unit(self) -> Unit {
        match self {
            Metric::ErrorRate
            | Metric::Availability
            | Metric::MirrorMismatchRate
            | Metric::SignalRate(_) => Unit::Fraction,
            Metric::Rps => Unit::PerSecond,
            Metric::SignalMean(_) => Unit::Number,
            Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 | Metric::P999 | Metric::Mean => {
                Unit::Seconds
            }
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === impl Op ===

impl Op {
    /// The operator as written: `>`, `>=`, `<`, `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether `measured OP threshold` holds. False when either side is NaN,
    /// so a metric with no samples never breaches.
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

// === impl Value ===

impl Value {
    /// The threshold to compare against, given the stable version's
    /// measurement of the same metric. `None` for a baseline rule when there
    /// is no baseline (e.g. the stable version saw too few requests).
    pub fn threshold(self, baseline: Option<f64>) -> Option<f64> {
        match self {
            Value::Absolute(v) => Some(v),
            Value::Baseline { times, plus } => baseline.map(|b| b * times + plus),
        }
    }
}

#[cfg(test)]
mod tests;
