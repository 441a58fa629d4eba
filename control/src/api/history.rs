//! `GET /api/v1/routes/{route}/history?span=5m&step=5s`: per version, the
//! last minutes cut into steps — what the status page draws as charts.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use serin_config::MAX_WINDOW;

use super::{ApiError, ApiState};
use crate::telemetry::{VersionStats, WindowStats};

/// At most this many points per series.
const MAX_POINTS: u32 = 600;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// How far back, like `5m`; default 5m, read within 10s..15m (the
    /// telemetry's retention).
    #[param(pattern = r"^[0-9]{1,6}(ms|s|m|h)$", example = "5m")]
    span: Option<String>,
    /// One point per step, like `5s`; default 5s, at least 1s and at least
    /// `span / 600`. `step_s` in the answer says the step used.
    #[param(pattern = r"^[0-9]{1,6}(ms|s|m|h)$", example = "5s")]
    step: Option<String>,
}

/// Per version, oldest point first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RouteHistory {
    route: String,
    span_s: f64,
    step_s: f64,
    versions: BTreeMap<String, Vec<Point>>,
    /// End to end, as the clients saw it.
    route_total: Vec<Point>,
}

/// One step. Rates and percentiles are `null` for a step without traffic.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Point {
    /// Seconds between the step's end and the answer.
    ago_s: f64,
    requests: u64,
    errors: u64,
    rps: f64,
    error_rate: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

fn duration(name: &str, value: Option<&str>, default: Duration) -> Result<Duration, ApiError> {
    value.map_or(Ok(default), |v| {
        serin_config::parse_duration(v).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
    })
}

#[utoipa::path(get, path = "/api/v1/routes/{route}/history", tag = "status",
    params(("route" = String, Path, description = "route name"), HistoryQuery),
    responses(
        (status = 200, description = "per-version series over the last minutes", body = RouteHistory),
        (status = 400, description = "bad span or step", body = super::ErrorBody),
        (status = 404, description = "no such route", body = super::ErrorBody),
    ))]
pub(crate) async fn history(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<RouteHistory>, ApiError> {
    let span = duration("span", q.span.as_deref(), Duration::from_secs(300))?
        .clamp(Duration::from_secs(10), MAX_WINDOW);
    let step = duration("step", q.step.as_deref(), Duration::from_secs(5))?
        .max(Duration::from_secs(1))
        .max(span / MAX_POINTS)
        .min(span);
    let snap = st.live.snapshot();
    let route = super::route_named(&snap, &name)?;
    let series = |stats: &VersionStats| {
        let points = stats.series(span, step);
        let n = points.len();
        points
            .iter()
            .enumerate()
            .map(|(i, w)| point(w, step * (n - 1 - i) as u32))
            .collect()
    };
    Ok(Json(RouteHistory {
        route: route.name.to_string(),
        span_s: (step * (span.as_nanos() / step.as_nanos()) as u32).as_secs_f64(),
        step_s: step.as_secs_f64(),
        versions: route
            .versions
            .iter()
            .map(|v| (v.name.to_string(), series(&v.stats)))
            .collect(),
        route_total: series(&route.stats),
    }))
}

fn point(w: &WindowStats, ago: Duration) -> Point {
    let ms = |q: f64| w.percentile(q).map(super::millis);
    Point {
        ago_s: ago.as_secs_f64(),
        requests: w.requests,
        errors: w.errors,
        rps: super::significant(w.rps(), 4),
        error_rate: w.error_rate().map(super::fraction),
        p50_ms: ms(50.0),
        p99_ms: ms(99.0),
    }
}
