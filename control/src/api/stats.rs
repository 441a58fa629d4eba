//! `GET /api/v1/routes/{route}/stats?window=60s`: per version, over a
//! window read from the in-process telemetry.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use serin_config::MAX_WINDOW;

use super::{ApiError, ApiState};
use crate::telemetry::WindowStats;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// A duration like `60s` or `5m`; default 60s. Read within 1s..15m
    /// (the telemetry's retention): `window_s` says the window used.
    #[param(pattern = r"^[0-9]{1,6}(ms|s|m|h)$", example = "60s")]
    window: Option<String>,
}

impl StatsQuery {
    /// The window asked for, clamped (not refused) to 1s..15m: the
    /// answer's `window_s` is the window read.
    pub(crate) fn window(&self) -> Result<Duration, ApiError> {
        let window = match self.window.as_deref() {
            None => Duration::from_secs(60),
            Some(w) => serin_config::parse_duration(w)
                .map_err(|e| ApiError::BadRequest(format!("window: {e}")))?,
        };
        Ok(window.clamp(Duration::from_secs(1), MAX_WINDOW))
    }
}

/// SPEC.md's stats shape.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RouteStats {
    route: String,
    window_s: f64,
    versions: BTreeMap<String, VersionStatsJson>,
    /// Per version, the requests that forced it (`[routes.override]`):
    /// apart from `versions`, which rules judge (unless the route's
    /// `rules_include_forced` counts them there too). Absent without
    /// `[routes.override]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    forced: BTreeMap<String, VersionStatsJson>,
    /// The copies `[routes.mirror]` sent to its version, with their
    /// comparisons (`compared`, `mismatched`, `mismatch_rate`). Absent
    /// without `[routes.mirror]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    mirrored: BTreeMap<String, VersionStatsJson>,
    /// End to end, as the clients saw it.
    route_total: VersionStatsJson,
}

/// One version over the window; percentiles are `null` with no samples.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct VersionStatsJson {
    requests: u64,
    errors: u64,
    /// `null` for an empty window.
    error_rate: Option<f64>,
    availability: Option<f64>,
    connect_errors: u64,
    timeouts: u64,
    status_5xx: u64,
    fallbacks: u64,
    /// Route only: requests whose body stalled past `body_read_timeout`
    /// (answered 408). Counted in `requests`, never in `errors`.
    client_timeouts: u64,
    /// Route only: requests the client abandoned (closed, reset, broken
    /// body) before the answer. Counted in `requests`, never in `errors`.
    client_aborts: u64,
    rps: f64,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    mean_ms: Option<f64>,
    /// Per `[[routes.signals]]` name: `rate` (answers reporting it true or
    /// above 0, of all answers), `mean` (of the values reported) and
    /// `reported`. Absent on a route without signals.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    signals: BTreeMap<String, SignalJson>,
    /// Mirrored copies only: answers compared with the live one.
    #[serde(skip_serializing_if = "Option::is_none")]
    compared: Option<u64>,
    /// Mirrored copies only: compared answers that differed.
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatched: Option<u64>,
    /// Mirrored copies only: `mismatched / compared`; `null` before any.
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatch_rate: Option<Option<f64>>,
}

/// One quality signal over the window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SignalJson {
    /// `NAME_rate`; `null` with no answers.
    rate: Option<f64>,
    /// `NAME_mean`; `null` when none reported.
    mean: Option<f64>,
    /// Answers that carried the signal.
    reported: u64,
}

#[utoipa::path(get, path = "/api/v1/routes/{route}/stats", tag = "status",
    params(("route" = String, Path, description = "route name"), StatsQuery),
    responses(
        (status = 200, description = "per-version telemetry over the window", body = RouteStats),
        (status = 400, description = "bad window", body = super::ErrorBody),
        (status = 404, description = "no such route", body = super::ErrorBody),
    ))]
pub(crate) async fn stats(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<RouteStats>, ApiError> {
    let window = q.window()?;
    let snap = st.live.snapshot();
    let route = super::route_named(&snap, &name)?;
    let signals: Vec<&str> = route.signals.iter().map(|s| &*s.name).collect();
    let json = |w: &WindowStats| to_json(w, &signals);
    Ok(Json(RouteStats {
        route: route.name.to_string(),
        window_s: window.as_secs_f64(),
        versions: route
            .versions
            .iter()
            .map(|v| (v.name.to_string(), json(&v.stats.window(window))))
            .collect(),
        forced: route
            .versions
            .iter()
            .filter_map(|v| Some((v.name.to_string(), json(&v.forced.as_ref()?.window(window)))))
            .collect(),
        mirrored: route
            .versions
            .iter()
            .filter_map(|v| {
                let w = v.mirrored.as_ref()?.window(window);
                let mut out = json(&w);
                out.compared = Some(w.compared);
                out.mismatched = Some(w.mismatched);
                out.mismatch_rate = Some(w.mismatch_rate().map(super::fraction));
                Some((v.name.to_string(), out))
            })
            .collect(),
        route_total: to_json(&route.stats.window(window), &[]),
    }))
}

fn to_json(w: &WindowStats, signals: &[&str]) -> VersionStatsJson {
    let ms = |d: Option<Duration>| d.map(super::millis);
    let frac = |x: Option<f64>| x.map(super::fraction);
    VersionStatsJson {
        signals: signals
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let json = SignalJson {
                    rate: frac(w.signal_rate(i)),
                    // In the version's own units: significant digits.
                    mean: w.signal_mean(i).map(|m| super::significant(m, 6)),
                    reported: w.signals[i].reported,
                };
                ((*name).to_owned(), json)
            })
            .collect(),
        compared: None,
        mismatched: None,
        mismatch_rate: None,
        requests: w.requests,
        errors: w.errors,
        error_rate: frac(w.error_rate()),
        availability: frac(w.availability()),
        connect_errors: w.connect_errors,
        timeouts: w.timeouts,
        status_5xx: w.status_5xx,
        fallbacks: w.fallbacks,
        client_timeouts: w.client_timeouts,
        client_aborts: w.client_aborts,
        rps: super::significant(w.rps(), 4),
        p50_ms: ms(w.percentile(50.0)),
        p90_ms: ms(w.percentile(90.0)),
        p95_ms: ms(w.percentile(95.0)),
        p99_ms: ms(w.percentile(99.0)),
        p999_ms: ms(w.percentile(99.9)),
        mean_ms: ms(w.mean()),
    }
}
