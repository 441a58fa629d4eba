//! The rule grammar:
//!
//! ```text
//! rule     = "breaker_open" | "unhealthy" | METRIC OP value
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

const METRICS_HINT: &str =
    "error_rate, availability, p50, p90, p95, p99, p999, mean, rps, breaker_open or unhealthy";

/// Parses one rule expression.
pub(crate) fn parse(text: &str) -> Result<Rule, RuleError> {
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
            let metric = Metric::from_name(name).ok_or_else(|| {
                error(
                    first.at,
                    format!("unknown metric `{name}`; expected {METRICS_HINT}"),
                )
            })?;
            let op = operator(metric, tokens.next(), end)?;
            let value = value(metric, op, &mut tokens, end)?;
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

fn operator(metric: Metric, token: Option<Token<'_>>, end: usize) -> Result<Op, RuleError> {
    let Some(token) = token else {
        return Err(error(
            end,
            format!(
                "`{metric}` needs an operator (>, >=, <, <=) and a value, e.g. `{metric} > {}`",
                example(metric.unit())
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
    metric: Metric,
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
                    example(metric.unit())
                ),
            )
        })?;
        let amount = quantity(metric, term)?;
        plus = if sign.text == "-" { -amount } else { amount };
    }
    Ok(Value::Baseline { times, plus })
}

/// Reads `token` as a value in `metric`'s unit.
fn quantity(metric: Metric, token: Token<'_>) -> Result<f64, RuleError> {
    let text = token.text;
    let fail = |message: String| Err(error(token.at, message));
    if token.kind != TokenKind::Quantity {
        return fail(format!(
            "{metric} needs {}, got `{text}`",
            wanted(metric.unit())
        ));
    }
    let is_percent = text.ends_with('%');
    let plain = parse_number(text);
    match metric.unit() {
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
    }
}

fn wanted(unit: Unit) -> &'static str {
    match unit {
        Unit::Fraction => "a percentage like 5% (or a fraction in [0, 1])",
        Unit::Seconds => "a duration like 500ms",
        Unit::PerSecond => "a plain number of requests per second like 100",
    }
}

fn example(unit: Unit) -> &'static str {
    match unit {
        Unit::Fraction => "5%",
        Unit::Seconds => "500ms",
        Unit::PerSecond => "100",
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
