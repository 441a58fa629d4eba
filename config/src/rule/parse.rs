//! The rule grammar:
//!
//! ```text
//! rule     = "breaker_open" | "unhealthy" | METRIC OP value
//! METRIC   = a fixed name (error_rate, p99, …) | SIGNAL "_rate" | SIGNAL "_mean"
//! OP       = ">" | ">=" | "<" | "<="
//! value    = quantity | "baseline" [ "*" NUMBER ] [ ("+" | "-") quantity ]
//! quantity = percentage | duration | NUMBER      (which one depends on METRIC)
//! ```
//!
//! Errors carry the byte offset of the offending token so the routing file
//! can point inside the rule string.

use super::{Metric, Op, Rule, RuleKind, Unit, Value};
use crate::units::{parse_duration, parse_number, parse_percent};

/// A rule that does not parse: what is wrong and where in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleError {
    /// Byte offset into the text handed to [`parse`].
    pub(crate) offset: usize,
    pub(crate) message: String,
}

/// One lexical token and its byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token<'a> {
    kind: TokenKind,
    text: &'a str,
    at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// `error_rate`, `baseline`, `breaker_open`
    Word,
    /// A number with its unit glued on: `10%`, `1m30s`, `1.5`.
    Quantity,
    /// `>`, `>=`, `<`, `<=`, `*`, `+`, `-`, and operators we reject by name.
    Symbol,
}

const METRICS_HINT: &str = "error_rate, availability, p50, p90, p95, p99, p999, mean, rps, \
     mirror_mismatch_rate, a signal's NAME_rate or NAME_mean, breaker_open or unhealthy";

/// The metric a rule names, and the name it was written with (a signal's
/// metrics have no fixed name), for messages.
#[derive(Clone, Copy)]
struct Named<'a> {
    metric: Metric,
    name: &'a str,
}

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Parses one rule expression; `signals` are the route's quality signals
/// by name, in order (`NAME_rate` and `NAME_mean` resolve to their index).
pub(crate) fn parse(text: &str, signals: &[&str]) -> Result<Rule, RuleError> {
    let tokens = lex(text)?;
    let mut tokens = tokens.into_iter().peekable();
    let end = text.trim_end().len();
    let Some(first) = tokens.next() else {
        return Err(error(
            0,
            "empty rule: write e.g. `error_rate > 5%` or `p99 > 500ms`",
        ));
    };
    let kind = match (first.kind, first.text) {
        (TokenKind::Word, "breaker_open") => RuleKind::BreakerOpen,
        (TokenKind::Word, "unhealthy") => RuleKind::Unhealthy,
        (TokenKind::Word, name) => {
            let metric = Metric::from_name(name)
                .or_else(|| signal(name, signals))
                .ok_or_else(|| error(first.at, unknown(name, signals)))?;
            let named = Named { metric, name };
            let op = operator(named, tokens.next(), end)?;
            let value = value(named, op, &mut tokens, end)?;
            RuleKind::Compare { metric, op, value }
        }
        _ => {
            return Err(error(
                first.at,
                format!(
                    "a rule starts with a metric ({METRICS_HINT}), got `{}`",
                    first.text
                ),
            ))
        }
    };
    if let Some(extra) = tokens.next() {
        let message = match kind {
            RuleKind::Compare { .. } => {
                format!("unexpected `{}` after the rule's value", extra.text)
            }
            _ => format!(
                "unexpected `{}`: `{}` takes no comparison",
                extra.text, first.text
            ),
        };
        return Err(error(extra.at, message));
    }
    Ok(Rule {
        kind,
        text: text.trim().to_owned(),
    })
}

/// `NAME_rate` or `NAME_mean` of one of `signals`.
fn signal(name: &str, signals: &[&str]) -> Option<Metric> {
    let find = |base: &str| signals.iter().position(|s| *s == base);
    if let Some(i) = name.strip_suffix("_rate").and_then(find) {
        return Some(Metric::SignalRate(i as u8));
    }
    let i = name.strip_suffix("_mean").and_then(find)?;
    Some(Metric::SignalMean(i as u8))
}

fn unknown(name: &str, signals: &[&str]) -> String {
    let signal_like = name.ends_with("_rate") || name.ends_with("_mean");
    match (signal_like, signals) {
        (true, []) => format!(
            "unknown metric `{name}`; expected {METRICS_HINT} (this route declares no [[routes.signals]])"
        ),
        (true, _) => format!(
            "unknown metric `{name}`; expected {METRICS_HINT} (this route's signals: {})",
            signals.join(", ")
        ),
        (false, _) => format!("unknown metric `{name}`; expected {METRICS_HINT}"),
    }
}

fn operator(metric: Named<'_>, token: Option<Token<'_>>, end: usize) -> Result<Op, RuleError> {
    let Some(token) = token else {
        return Err(error(
            end,
            format!(
                "`{metric}` needs an operator (>, >=, <, <=) and a value, e.g. `{metric} > {}`",
                example(metric.metric.unit())
            ),
        ));
    };
    match (token.kind, token.text) {
        (TokenKind::Symbol, ">") => Ok(Op::Gt),
        (TokenKind::Symbol, ">=") => Ok(Op::Ge),
        (TokenKind::Symbol, "<") => Ok(Op::Lt),
        (TokenKind::Symbol, "<=") => Ok(Op::Le),
        (_, other) => Err(error(
            token.at,
            format!("expected >, >=, < or <= after `{metric}`, got `{other}`"),
        )),
    }
}

fn value<'a>(
    metric: Named<'_>,
    op: Op,
    tokens: &mut std::iter::Peekable<impl Iterator<Item = Token<'a>>>,
    end: usize,
) -> Result<Value, RuleError> {
    let Some(token) = tokens.next() else {
        return Err(error(end, format!("missing value after `{metric} {op}`")));
    };
    if token.kind != TokenKind::Word || token.text != "baseline" {
        return quantity(metric, token).map(Value::Absolute);
    }
    if metric.metric == Metric::MirrorMismatchRate {
        return Err(error(
            token.at,
            "mirror_mismatch_rate has no baseline (the stable version is not mirrored): write a threshold like 5%",
        ));
    }
    let mut times = 1.0;
    let mut plus = 0.0;
    if tokens.next_if(|t| t.text == "*").is_some() {
        let factor = tokens.next().ok_or_else(|| {
            error(
                end,
                "missing factor after `baseline *`, e.g. `baseline * 1.5`",
            )
        })?;
        times = parse_number(factor.text)
            .filter(|k| *k > 0.0 && k.is_finite())
            .ok_or_else(|| {
                error(
                    factor.at,
                    format!(
                        "`baseline *` needs a plain number above 0 like 1.5, got `{}`",
                        factor.text
                    ),
                )
            })?;
    }
    if let Some(sign) = tokens.next_if(|t| t.text == "+" || t.text == "-") {
        let term = tokens.next().ok_or_else(|| {
            error(
                end,
                format!(
                    "missing value after `baseline {}`, e.g. `baseline + {}`",
                    sign.text,
                    example(metric.metric.unit())
                ),
            )
        })?;
        let amount = quantity(metric, term)?;
        plus = if sign.text == "-" { -amount } else { amount };
    }
    Ok(Value::Baseline { times, plus })
}

/// Reads `token` as a value in `metric`'s unit.
fn quantity(metric: Named<'_>, token: Token<'_>) -> Result<f64, RuleError> {
    let text = token.text;
    let fail = |message: String| Err(error(token.at, message));
    if token.kind != TokenKind::Quantity {
        return fail(format!(
            "{metric} needs {}, got `{text}`",
            wanted(metric.metric.unit())
        ));
    }
    let is_percent = text.ends_with('%');
    let plain = parse_number(text);
    match metric.metric.unit() {
        Unit::Fraction if is_percent => match parse_percent(text) {
            Ok(v) if v <= 1.0 => Ok(v),
            Ok(_) => fail(format!("{metric} is between 0% and 100%, got {text}")),
            Err(e) => fail(e),
        },
        Unit::Fraction => match plain {
            Some(v) if v <= 1.0 => Ok(v),
            Some(_) => fail(format!(
                "{metric} as a plain number is a fraction in [0, 1], got {text}; did you mean {text}%?"
            )),
            None => fail(format!("{metric} needs {}, got {text}", wanted(Unit::Fraction))),
        },
        Unit::Seconds if is_percent || plain.is_some() => {
            fail(format!("{metric} needs {}, got {text}", wanted(Unit::Seconds)))
        }
        Unit::Seconds => match parse_duration(text) {
            Ok(d) => Ok(d.as_secs_f64()),
            Err(e) => fail(format!("{metric} needs {}: {e}", wanted(Unit::Seconds))),
        },
        Unit::PerSecond => plain.ok_or_else(|| {
            error(token.at, format!("{metric} needs {}, got {text}", wanted(Unit::PerSecond)))
        }),
        Unit::Number => plain.ok_or_else(|| {
            error(token.at, format!("{metric} needs {}, got {text}", wanted(Unit::Number)))
        }),
    }
}

fn wanted(unit: Unit) -> &'static str {
    match unit {
        Unit::Fraction => "a percentage like 5% (or a fraction in [0, 1])",
        Unit::Seconds => "a duration like 500ms",
        Unit::PerSecond => "a plain number of requests per second like 100",
        Unit::Number => "a plain number like 0.8",
    }
}

fn example(unit: Unit) -> &'static str {
    match unit {
        Unit::Fraction => "5%",
        Unit::Seconds => "500ms",
        Unit::PerSecond => "100",
        Unit::Number => "0.8",
    }
}

fn lex(text: &str) -> Result<Vec<Token<'_>>, RuleError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let mut take_while = |keep: fn(char) -> bool| {
            let mut end = at + c.len_utf8();
            while let Some(&(i, next)) = chars.peek() {
                if !keep(next) {
                    break;
                }
                end = i + next.len_utf8();
                chars.next();
            }
            end
        };
        let (kind, end) = match c {
            c if c.is_whitespace() => continue,
            c if c.is_ascii_alphabetic() || c == '_' => (
                TokenKind::Word,
                take_while(|n| n.is_ascii_alphanumeric() || n == '_'),
            ),
            // Units are glued to their number (`10%`, `1m30s`); anything
            // odd inside is left for the unit parsers to name.
            c if c.is_ascii_digit() || c == '.' => (
                TokenKind::Quantity,
                take_while(|n| n.is_ascii_alphanumeric() || n == '.' || n == '%' || n == '_'),
            ),
            '>' | '<' | '=' | '!' => (TokenKind::Symbol, take_while(|n| n == '=')),
            '*' | '+' | '-' => (TokenKind::Symbol, at + 1),
            other => return Err(error(at, format!("unexpected character `{other}`"))),
        };
        let token = Token {
            kind,
            text: &text[at..end],
            at,
        };
        if matches!(token.text, "=" | "==" | "!=" | "!") {
            return Err(error(
                at,
                format!("`{}` is not supported; use >, >=, < or <=", token.text),
            ));
        }
        tokens.push(token);
    }
    Ok(tokens)
}

fn error(offset: usize, message: impl Into<String>) -> RuleError {
    RuleError {
        offset,
        message: message.into(),
    }
}
