//! How a route survives failing versions: `[routes.fallback]`,
//! `[routes.breaker]` and `[routes.health_check]`.

use std::collections::HashSet;
use std::time::Duration;

use toml::Spanned;

use super::Ctx;
use crate::model::{Breaker, Fallback, FallbackOn, HealthCheck};
use crate::raw::{RawBreaker, RawFallback, RawHealthCheck, RawVersion, Str};
use crate::units::{parse_percent, parse_size};

pub(super) fn fallback(cx: &mut Ctx<'_>, raw: &RawFallback, versions: &[RawVersion]) -> Fallback {
    let chain = raw.chain.get_ref();
    if chain.is_empty() {
        cx.error(
            raw.chain.span(),
            "fallback chain must name at least one version",
        );
    }
    for link in chain {
        if !versions.iter().any(|v| v.name.get_ref() == link.get_ref()) {
            cx.error(
                link.span(),
                format!(
                    "fallback chain names `{}`, which is not a version of this route",
                    link.get_ref()
                ),
            );
        }
    }
    let mut seen = HashSet::new();
    for link in chain {
        if !seen.insert(link.get_ref()) {
            cx.error(
                link.span(),
                format!("fallback chain names `{}` twice", link.get_ref()),
            );
        }
    }
    let on = match &raw.on {
        None => FallbackOn {
            connect: true,
            timeout: true,
            status_5xx: true,
        },
        Some(list) => fallback_on(cx, list),
    };
    let final_status = raw
        .final_status
        .as_ref()
        .and_then(|v| {
            cx.check(v, |&n| {
                u16::try_from(n)
                    .ok()
                    .filter(|n| (100..=599).contains(n))
                    .and_then(|n| http::StatusCode::from_u16(n).ok())
                    .ok_or_else(|| {
                        format!("final_status must be an HTTP status in 100..=599, got {n}")
                    })
            })
        })
        .unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
    let max_replay_body = raw
        .max_replay_body
        .as_ref()
        .and_then(|v| cx.check(v, |s| parse_size(s)))
        .unwrap_or(64 * 1024);
    Fallback {
        chain: chain.iter().map(|l| l.get_ref().clone()).collect(),
        on,
        final_status,
        final_body: raw
            .final_body
            .clone()
            .unwrap_or_else(|| "Service temporarily unavailable".to_owned()),
        max_replay_body,
        retry_non_idempotent: raw.retry_non_idempotent.unwrap_or(true),
        deadline: raw
            .deadline
            .as_ref()
            .map(|v| cx.duration(Some(v), "deadline", Duration::ZERO)),
    }
}

fn fallback_on(cx: &mut Ctx<'_>, list: &Spanned<Vec<Str>>) -> FallbackOn {
    let mut on = FallbackOn {
        connect: false,
        timeout: false,
        status_5xx: false,
    };
    if list.get_ref().is_empty() {
        cx.error(
            list.span(),
            "on must list at least one of \"connect\", \"timeout\", \"5xx\"",
        );
    }
    for item in list.get_ref() {
        match item.get_ref().as_str() {
            "connect" => on.connect = true,
            "timeout" => on.timeout = true,
            "5xx" => on.status_5xx = true,
            other => cx.error(item.span(), format!("unknown fallback trigger `{other}`; expected \"connect\", \"timeout\" or \"5xx\"")),
        }
    }
    on
}

pub(super) fn breaker(cx: &mut Ctx<'_>, raw: &RawBreaker) -> Breaker {
    let error_rate = raw
        .error_rate
        .as_ref()
        .and_then(|v| {
            cx.check(v, |s| match parse_percent(s)? {
                rate if rate > 0.0 && rate <= 1.0 => Ok(rate),
                _ => Err(format!(
                    "error_rate must be above 0% and at most 100%, got {s}"
                )),
            })
        })
        .unwrap_or(0.5);
    Breaker {
        error_rate,
        min_requests: cx.int(raw.min_requests.as_ref(), "min_requests", 1, 20),
        window: cx.window(raw.window.as_ref(), Duration::from_secs(10)),
        open_for: cx.duration(raw.open_for.as_ref(), "open_for", Duration::from_secs(30)),
        half_open_probes: cx.int(raw.half_open_probes.as_ref(), "half_open_probes", 1, 3),
    }
}

pub(super) fn health_check(cx: &mut Ctx<'_>, raw: &RawHealthCheck) -> HealthCheck {
    let path = match &raw.path {
        None => "/health".to_owned(),
        Some(v) => {
            if !v.get_ref().starts_with('/') {
                cx.error(
                    v.span(),
                    format!(
                        "health check path must start with '/', got `{}`",
                        v.get_ref()
                    ),
                );
            }
            v.get_ref().clone()
        }
    };
    HealthCheck {
        path,
        interval: cx.duration(raw.interval.as_ref(), "interval", Duration::from_secs(5)),
        timeout: cx.duration(raw.timeout.as_ref(), "timeout", Duration::from_secs(1)),
        unhealthy_after: cx.int(raw.unhealthy_after.as_ref(), "unhealthy_after", 1, 3),
        healthy_after: cx.int(raw.healthy_after.as_ref(), "healthy_after", 1, 2),
    }
}
