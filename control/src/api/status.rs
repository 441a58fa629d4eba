//! `GET /api/v1/status` and `GET /api/v1/routes/{route}`.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{ApiError, ApiState, ErrorBody};
use crate::persist::weight_json;
use crate::RouteSnap;

/// SPEC.md's status shape.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Status {
    revision: String,
    maintenance: bool,
    routes: Vec<RouteStatus>,
    /// Fleet mode (`[cluster]`): this replica, the leader, every replica
    /// present. Absent when serin runs alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<crate::store::FleetView>,
    /// Fleet mode: this replica's own routing file differs from the
    /// fleet's in force (roll it out, or reload it to publish it).
    #[serde(skip_serializing_if = "Option::is_none")]
    config_drift: Option<bool>,
}

/// One route: live weights, state, breaker and health per version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RouteStatus {
    name: String,
    /// `stable`, `progressing`, `paused`, `rolling_back`, `rolled_back`, `promoted`.
    #[schema(value_type = String)]
    state: &'static str,
    /// The engine's latest verdict: `clear`, `inconclusive`, `breached: LEVEL`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    /// Version → live weight.
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    weights: Map<String, Value>,
    versions: Vec<VersionStatus>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct VersionStatus {
    name: String,
    url: String,
    #[schema(value_type = f64)]
    weight: Value,
    /// weight / sum of the route's weights.
    share: f64,
    /// `closed`, `half_open`, `open`.
    #[schema(value_type = String)]
    breaker: &'static str,
    /// `healthy`, `unhealthy`, `unknown`.
    #[schema(value_type = String)]
    health: &'static str,
}

#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "every route", body = Status)))]
pub(crate) async fn status(State(st): State<ApiState>) -> Json<Status> {
    let snap = st.live.snapshot();
    Json(Status {
        revision: snap.revision.to_string(),
        maintenance: snap.maintenance.is_some(),
        routes: snap.routes.iter().map(|r| route_status(&st, r)).collect(),
        cluster: st.live.fleet(),
        config_drift: st.reloader.as_ref().and_then(|r| r.drift()),
    })
}

#[utoipa::path(get, path = "/api/v1/routes/{route}", tag = "status",
    params(("route" = String, Path, description = "route name")),
    responses(
        (status = 200, description = "one route", body = RouteStatus),
        (status = 404, description = "no such route", body = ErrorBody),
    ))]
pub(crate) async fn route(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<RouteStatus>, ApiError> {
    let snap = st.live.snapshot();
    super::route_named(&snap, &name).map(|r| Json(route_status(&st, r)))
}

pub(crate) fn route_status(st: &ApiState, r: &RouteSnap) -> RouteStatus {
    RouteStatus {
        name: r.name.to_string(),
        state: r.phase.as_str(),
        verdict: st.engine.verdicts().get(&r.name).map(|v| v.to_string()),
        weights: r
            .versions
            .iter()
            .map(|v| (v.name.to_string(), weight_json(v.weight)))
            .collect(),
        versions: r
            .versions
            .iter()
            .enumerate()
            .map(|(i, v)| VersionStatus {
                name: v.name.to_string(),
                url: v.url.to_string(),
                weight: weight_json(v.weight),
                share: super::fraction(r.pick.share(i)),
                breaker: v.breaker.state().as_str(),
                health: v.health.as_str(),
            })
            .collect(),
    }
}
