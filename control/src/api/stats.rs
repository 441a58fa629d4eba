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
    let window = match q.window.as_deref() {
        None => Duration::from_secs(60),
        Some(w) => serin_config::parse_duration(w)
            .map_err(|e| ApiError::BadRequest(format!("window: {e}")))?,
    };
    // Clamped, not refused: the answer's `window_s` is the window read.
    let window = window.clamp(Duration::from_secs(1), MAX_WINDOW);
    let snap = st.live.snapshot();
    let route = snap
        .routes
        .iter()
        .find(|r| *r.name == *name)
        .ok_or_else(|| ApiError::NotFound(format!("no route named {name:?}")))?;
    Ok(Json(RouteStats {
        route: route.name.to_string(),
        window_s: window.as_secs_f64(),
        versions: route
            .versions
            .iter()
            .map(|v| (v.name.to_string(), to_json(&v.stats.window(window))))
            .collect(),
        forced: route
            .versions
            .iter()
            .filter_map(|v| {
                Some((
                    v.name.to_string(),
                    to_json(&v.forced.as_ref()?.window(window)),
                ))
            })
            .collect(),
        route_total: to_json(&route.stats.window(window)),
    }))
}

fn to_json(w: &WindowStats) -> VersionStatsJson {
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
    VersionStatsJson {
        requests: w.requests,
        errors: w.errors,
        error_rate: w.error_rate(),
        availability: w.availability(),
        connect_errors: w.connect_errors,
        timeouts: w.timeouts,
        status_5xx: w.status_5xx,
        fallbacks: w.fallbacks,
        client_timeouts: w.client_timeouts,
        client_aborts: w.client_aborts,
        rps: w.rps(),
        p50_ms: ms(w.percentile(50.0)),
        p90_ms: ms(w.percentile(90.0)),
        p95_ms: ms(w.percentile(95.0)),
        p99_ms: ms(w.percentile(99.0)),
        p999_ms: ms(w.percentile(99.9)),
        mean_ms: ms(w.mean()),
    }
}
