//! `GET /api/v1/routes/{route}/mirror`: what `[routes.mirror]` sent, shed
//! and found different, with the last mismatched answers.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;

use super::stats::StatsQuery;
use super::{ApiError, ApiState};
use crate::mirror::{MirrorCounts, Mismatch};

/// A route's mirror.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MirrorJson {
    route: String,
    /// The version copies go to.
    to: String,
    /// Share of requests copied, in percent.
    percent: f64,
    /// What is compared: `status`, `body`, `header:NAME`.
    compare: Vec<String>,
    #[serde(flatten)]
    counts: MirrorCounts,
    window_s: f64,
    /// Copies compared with their live answer over the window.
    compared: u64,
    mismatched: u64,
    /// `mismatched / compared` (what `mirror_mismatch_rate` rules read);
    /// `null` before any comparison.
    mismatch_rate: Option<f64>,
    /// The last mismatched answers, newest first (at most 20).
    samples: Vec<Mismatch>,
}

#[utoipa::path(get, path = "/api/v1/routes/{route}/mirror", tag = "status",
    params(("route" = String, Path, description = "route name"), StatsQuery),
    responses(
        (status = 200, description = "mirror counts, mismatch rate, last mismatches", body = MirrorJson),
        (status = 400, description = "bad window", body = super::ErrorBody),
        (status = 404, description = "no such route, or it mirrors nothing", body = super::ErrorBody),
    ))]
pub(crate) async fn mirror(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<MirrorJson>, ApiError> {
    let window = q.window()?;
    let snap = st.live.snapshot();
    let route = super::route_named(&snap, &name)?;
    let m = route
        .mirror
        .as_ref()
        .ok_or_else(|| ApiError::NotFound(format!("route {name:?} has no [routes.mirror]")))?;
    let v = &route.versions[m.to];
    let w = v
        .mirrored
        .as_ref()
        .map(|s| s.window(window))
        .ok_or_else(|| ApiError::NotFound(format!("route {name:?} mirrors nothing")))?;
    let mut compare = Vec::new();
    if m.compare.status {
        compare.push("status".to_owned());
    }
    if m.compare.body {
        compare.push("body".to_owned());
    }
    compare.extend(m.compare.headers.iter().map(|h| format!("header:{h}")));
    Ok(Json(MirrorJson {
        route: route.name.to_string(),
        to: v.name.to_string(),
        percent: (f64::from(m.below) / f64::from(u32::MAX) * 1e6).round() / 1e4,
        compare,
        counts: m.log.counts(),
        window_s: window.as_secs_f64(),
        compared: w.compared,
        mismatched: w.mismatched,
        mismatch_rate: w.mismatch_rate().map(super::fraction),
        samples: m.log.samples(),
    }))
}
