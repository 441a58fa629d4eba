//! serin's routing file: its schema, parsing with `file:line:col` errors,
//! validation into typed [`Config`], and rule expressions.
//!
//! This crate turns text into a valid [`Config`] or a list of located
//! errors, and tells when the file changes: it opens no socket, spawns no
//! task (the file watcher's thread is notify's) and knows no live weight. What the proxy does with a `Config` — and what the engine
//! changes at run time — belongs to `serin-control` and `serin-proxy`.
//!
//! # Layout
//!
//! - `model` — the validated types every other crate codes against.
//! - `rule` — rule expressions (`error_rate > 5%`, `p99 > baseline * 1.5`):
//!   AST, parser (`rule/parse.rs`), and small evaluation helpers.
//! - `limits` — `[limits]` defaults and [`Cidr`] (`trusted_proxies`).
//! - `units` — durations, percentages and sizes, parsed exactly.
//! - `raw` — the serde mirror of the TOML, with spans on every value.
//! - `validate` — raw → model: defaults, cross-references, collected errors.
//! - `error` — [`ConfigError`] (`file:line:col: message`) and byte span →
//!   line:column.
//! - `watch` — [`watch`]: "the routing file may have changed" signals
//!   (in-place writes, rename-over, ConfigMap symlink swaps).
//! - `tls` — [`UpstreamTls`]: the rustls client configuration of an
//!   `https://` version, built (its CA and certificate files read) while
//!   validating, so a bad file is refused at its key's `line:col`.
//!
//! [`load`] and [`watch`] touch the file system, and validation reads the
//! `tls_*` files a version names.

mod error;
mod limits;
mod model;
mod raw;
mod rule;
mod tls;
mod units;
mod validate;
mod watch;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use rule::*;
pub use tls::UpstreamTls;
pub use units::{format_duration, parse_duration, parse_percent, parse_size};
pub use watch::{watch, FileWatcher, WatchError};

/// Parses and validates a routing file's text.
///
/// `file` names the source in error messages only.
///
/// # Errors
///
/// A TOML syntax error, an unknown field or a wrongly typed value stops
/// parsing at that one error. Past that point every validation error in the
/// file is returned, in file order, each at the line and column of the value
/// it is about.
///
/// # Example
///
/// ```
/// let text = r#"
/// [[routes]]
/// name = "api"
///
///   [[routes.versions]]
///   name = "v1"
///   url = "http://127.0.0.1:9001"
///   weight = 1
///   timeout = "10"
/// "#;
/// let errors = serin_config::parse(text, "serin.toml").unwrap_err();
/// assert_eq!(
///     errors.to_string(),
///     "serin.toml:9:13: timeout: `10` has no unit: write e.g. 10s or 10ms (units: ms, s, m, h)"
/// );
/// ```
pub fn parse(source: &str, file: &str) -> Result<Config, ConfigErrors> {
    let src = error::Source::new(file, source);
    let raw: raw::RawConfig = toml::from_str(source).map_err(|e| src.toml_error(&e))?;
    validate::validate(raw, src)
}

/// Reads the routing file at `path` and [`parse`]s it, reporting errors
/// under the path as given.
///
/// # Errors
///
/// An unreadable file is one [`ConfigError`] without a position
/// (`path: message`); otherwise as [`parse`].
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(file.as_str(), e.to_string()))?;
    parse(&source, &file)
}

/// Parses one rule expression, e.g. `error_rate > baseline + 2%`.
///
/// # Errors
///
/// A one-line message naming the offending token, e.g. `p99 needs a
/// duration like 500ms, got 10%`.
///
/// # Example
///
/// ```
/// use serin_config::{parse_rule, Metric, Op, RuleKind, Value};
///
/// let rule = parse_rule("p99 > baseline + 200ms").unwrap();
/// assert_eq!(
///     rule.kind,
///     RuleKind::Compare {
///         metric: Metric::P99,
///         op: Op::Gt,
///         value: Value::Baseline { times: 1.0, plus: 0.2 },
///     }
/// );
/// assert_eq!(rule.to_string(), "p99 > baseline + 200ms");
/// ```
pub fn parse_rule(text: &str) -> Result<Rule, String> {
    Rule::parse(text)
}

/// What a valid file says that probably is not what its author meant:
/// one line per finding, naming the route. `serin check` prints them;
/// `serin run` logs them at start.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for r in &config.routes {
        mirror_warnings(r, &mut out);
        let Some(o) = &r.rollout else { continue };
        if r.rollback.is_none() {
            out.push(format!(
                "route {}: [routes.rollout] without [routes.rollback] never starts: \
                 the engine judges and steps only routes with a rollback section",
                r.name
            ));
            continue;
        }
        let stable = r.rollback.as_ref().map_or("", |rb| rb.stable.as_str());
        if r.versions.iter().all(|v| v.name == stable) {
            out.push(format!(
                "route {}: the rollout has no version besides stable `{stable}` to bring in",
                r.name
            ));
        }
        if o.steps.last().is_some_and(|s| *s < 1.0) {
            out.push(format!(
                "route {}: the rollout's last step is {}%: it holds there (promote by hand goes on)",
                r.name,
                o.steps.last().copied().unwrap_or(0.0) * 100.0
            ));
        }
    }
    out
}

/// A mirror rule with nothing mirrored, and a mirror the engine cannot use.
fn mirror_warnings(r: &Route, out: &mut Vec<String>) {
    let Some(rb) = &r.rollback else { return };
    let rules = [&rb.critical, &rb.warning, &rb.watch, &rb.shadow];
    let reads_mirror = rules.iter().flat_map(|l| l.iter()).any(|rule| {
        matches!(
            rule.kind,
            RuleKind::Compare {
                metric: Metric::MirrorMismatchRate,
                ..
            }
        )
    });
    match &r.mirror {
        None if reads_mirror => out.push(format!(
            "route {}: a rule reads mirror_mismatch_rate but the route has no [routes.mirror]: \
             it never holds",
            r.name
        )),
        Some(m) if m.to == rb.stable => out.push(format!(
            "route {}: [routes.mirror] copies to the stable version `{}`: its copies are \
             compared, but the engine judges only canaries",
            r.name, m.to
        )),
        _ => {}
    }
}
