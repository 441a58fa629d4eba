//! `[routes.rollback]` (levels of rules and what they trigger), its
//! `gradual` schedule, and `[routes.rollout]`.

use std::time::Duration;

use toml::Spanned;

use super::Ctx;
use crate::model::{Action, Gradual, Rollback, Rollout};
use crate::raw::{RawGradual, RawRollback, RawRollout, RawVersion, Str};
use crate::rule::{self, Rule};
use crate::units::{parse_duration, parse_percent};

/// `signals` are the route's quality signals by name, which its rules may read.
pub(super) fn rollback(
    cx: &mut Ctx<'_>,
    raw: &RawRollback,
    versions: &[RawVersion],
    signals: &[&str],
) -> Rollback {
    let stable = raw.stable.get_ref();
    // An empty route already has its own error; this one would only repeat it.
    if !versions.is_empty() && !versions.iter().any(|v| v.name.get_ref() == stable) {
        cx.error(
            raw.stable.span(),
            format!("stable `{stable}` is not a version of this route"),
        );
    }
    let gradual = raw.gradual.as_ref().map(|g| gradual(cx, g, signals));
    let on_critical = action(
        cx,
        raw.on_critical.as_ref(),
        gradual.is_some(),
        Action::Immediate,
    );
    let default_warning = if gradual.is_some() {
        Action::Gradual
    } else {
        Action::Alert
    };
    let on_warning = action(
        cx,
        raw.on_warning.as_ref(),
        gradual.is_some(),
        default_warning,
    );
    Rollback {
        stable: stable.clone(),
        window: cx.window(raw.window.as_ref(), Duration::from_secs(5 * 60)),
        // Zero is allowed: act on the first evaluation that breaches.
        confirm: raw
            .confirm
            .as_ref()
            .and_then(|v| {
                cx.check(v, |s| {
                    parse_duration(s).map_err(|e| format!("confirm: {e}"))
                })
            })
            .unwrap_or(Duration::from_secs(2 * 60)),
        min_requests: cx.int(raw.min_requests.as_ref(), "min_requests", 0, 50),
        critical: rules(cx, &raw.critical, signals),
        warning: rules(cx, &raw.warning, signals),
        watch: rules(cx, &raw.watch, signals),
        on_critical,
        on_warning,
        gradual,
        dry_run: raw.dry_run.unwrap_or(false),
        shadow: rules(cx, &raw.shadow, signals),
    }
}

fn action(cx: &mut Ctx<'_>, value: Option<&Str>, has_gradual: bool, default: Action) -> Action {
    let Some(value) = value else { return default };
    let action = cx.check(value, |s| match s.as_str() {
        "immediate" => Ok(Action::Immediate),
        "gradual" => Ok(Action::Gradual),
        "pause" => Ok(Action::Pause),
        "alert" => Ok(Action::Alert),
        other => Err(format!(
            "unknown action `{other}`; expected \"immediate\", \"gradual\", \"pause\" or \"alert\""
        )),
    });
    if action == Some(Action::Gradual) && !has_gradual {
        cx.error(
            value.span(),
            "\"gradual\" needs a schedule: add gradual = { steps = [...], every = \"...\" }",
        );
    }
    action.unwrap_or(default)
}

fn gradual(cx: &mut Ctx<'_>, raw: &RawGradual, signals: &[&str]) -> Gradual {
    Gradual {
        steps: steps(cx, &raw.steps, Order::Decreasing),
        every: cx.duration(Some(&raw.every), "every", Duration::ZERO),
        abort_if: raw.abort_if.as_ref().and_then(|r| rule(cx, r, signals)),
    }
}

pub(super) fn rollout(cx: &mut Ctx<'_>, raw: &RawRollout) -> Rollout {
    Rollout {
        steps: steps(cx, &raw.steps, Order::Increasing),
        every: cx.duration(Some(&raw.every), "every", Duration::ZERO),
    }
}

/// Gradual rollback steps go down towards 0%; rollout steps go up to 100%
/// and never start at 0% (a step that sends nothing is no step).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Decreasing,
    Increasing,
}

fn steps(cx: &mut Ctx<'_>, list: &Spanned<Vec<Str>>, order: Order) -> Vec<f64> {
    if list.get_ref().is_empty() {
        cx.error(list.span(), "steps must list at least one percentage");
    }
    let mut previous: Option<f64> = None;
    let mut out = Vec::new();
    for step in list.get_ref() {
        let Some(share) = cx.check(step, |s| {
            let share = parse_percent(s)?;
            match order {
                Order::Decreasing if share <= 1.0 => Ok(share),
                Order::Increasing if share > 0.0 && share <= 1.0 => Ok(share),
                Order::Decreasing => Err(format!("step must be between 0% and 100%, got {s}")),
                Order::Increasing => {
                    Err(format!("step must be above 0% and at most 100%, got {s}"))
                }
            }
        }) else {
            continue;
        };
        let in_order = previous.is_none_or(|p| match order {
            Order::Decreasing => share < p,
            Order::Increasing => share > p,
        });
        if !in_order {
            let way = if order == Order::Decreasing {
                "decrease"
            } else {
                "increase"
            };
            cx.error(
                step.span(),
                format!("steps must {way}: `{}` does not", step.get_ref()),
            );
        }
        previous = Some(share);
        out.push(share);
    }
    out
}

fn rules(cx: &mut Ctx<'_>, list: &[Str], signals: &[&str]) -> Vec<Rule> {
    list.iter().filter_map(|r| rule(cx, r, signals)).collect()
}

/// Parses a rule string, pointing an error at its token inside the string.
fn rule(cx: &mut Ctx<'_>, value: &Str, signals: &[&str]) -> Option<Rule> {
    match rule::parse(value.get_ref(), signals) {
        Ok(rule) => Some(rule),
        Err(e) => {
            let offset = cx.offset_in_string(value, e.offset);
            cx.error_at(offset, format!("rule `{}`: {}", value.get_ref(), e.message));
            None
        }
    }
}
