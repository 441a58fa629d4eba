//! `GET /api/v1/status` and `GET /api/v1/routes/{route}`.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{ApiError, ApiState};
use crate::RouteSnap;

/// SPEC.md's status shape.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    revision: String,
    maintenance: bool,
    routes: Vec<RouteStatus>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RouteStatus {
    name: String,
    state: &'static str,
    weights: Map<String, Value>,
    versions: Vec<VersionStatus>,
}

#[derive(Debug, Serialize)]
struct VersionStatus {
    name: String,
    url: String,
    weight: Value,
    share: f64,
    breaker: &'static str,
    health: &'static str,
}

pub(crate) async fn status(State(st): State<ApiState>) -> Json<Status> {
    let snap = st.live.snapshot();
    Json(Status {
        revision: snap.revision.to_string(),
        maintenance: snap.maintenance.is_some(),
        routes: snap.routes.iter().map(route_status).collect(),
    })
}

pub(crate) async fn route(
    State(st): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<RouteStatus>, ApiError> {
    let snap = st.live.snapshot();
    snap.routes
        .iter()
        .find(|r| *r.name == *name)
        .map(|r| Json(route_status(r)))
        .ok_or_else(|| ApiError::NotFound(format!("no route named {name:?}")))
}

fn route_status(r: &RouteSnap) -> RouteStatus {
    RouteStatus {
        name: r.name.to_string(),
        state: r.phase.as_str(),
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
                share: r.pick.share(i),
                breaker: v.breaker.state().as_str(),
                health: "unknown",
            })
            .collect(),
    }
}

/// Whole weights print as integers (`90`, not `90.0`), fractions as they are.
pub fn weight_json(w: f64) -> Value {
    if w.fract() == 0.0 && w.abs() < 1e15 {
        Value::from(w as i64)
    } else {
        Value::from(w)
    }
}
