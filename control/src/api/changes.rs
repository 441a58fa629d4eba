//! Route changes by hand: `PUT .../weights`, `POST .../rollback`,
//! `.../promote`, `.../pause`, `.../resume`. Each goes through `Live` (or
//! the engine's actions, which do), so it is saved and audited before the
//! answer; the answer is the route as it now is and the recorded event.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::body::{JsonBody, OptionalJson};
use super::status::{route_status, RouteStatus};
use super::{blocking, ApiError, ApiState, ErrorBody};
use crate::engine::{self, RollbackMode};
use crate::event::{Actor, Draft, Event, EventKind};

/// Weights above this are refused: shares are ratios, and huge values only
/// lose precision.
const MAX_WEIGHT: f64 = 1e9;

/// `PUT /api/v1/routes/{route}/weights`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct WeightsRequest {
    /// Version → weight (>= 0; share = weight / sum). Versions not named
    /// keep their weight.
    #[schema(schema_with = weights_schema)]
    weights: BTreeMap<String, f64>,
    /// Why, for the audit log.
    #[serde(default)]
    reason: Option<String>,
}

/// `{"v1": 90, "v2": 10}`: at least one version name (as the routing file
/// spells names) to a weight in [0, MAX_WEIGHT]. Which names exist is the
/// route's business: an unknown one is a 422.
fn weights_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    let weight = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0.0))
        .maximum(Some(MAX_WEIGHT));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9._-]+$"));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(weight))
        .property_names(Some(name))
        .min_properties(Some(1))
        .description(Some("version → weight; versions not named keep theirs"))
        .examples([json!({"v1": 90, "v2": 10})])
        .build()
}

/// `POST /api/v1/routes/{route}/rollback`
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RollbackRequest {
    #[serde(default)]
    mode: Mode,
    /// All of the route's traffic to this version (immediate only);
    /// default: the canaries to 0, their share to the stable version.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// How a rollback takes the canary's traffic away.
#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    /// Canary weight to 0 in one swap.
    #[default]
    Immediate,
    /// Down the route's `gradual.steps`.
    Gradual,
}

/// `POST .../promote`, `.../pause`, `.../resume`: the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ReasonRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// A route change's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RouteChange {
    /// The route after the change.
    route: RouteStatus,
    /// The change as recorded in the audit log.
    event: Event,
}

#[utoipa::path(put, path = "/api/v1/routes/{route}/weights", tag = "changes",
    params(("route" = String, Path, description = "route name")),
    request_body = WeightsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "weights live", body = RouteChange),
        (status = 400, description = "not JSON or not this shape", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such route", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "unknown version, negative or all-zero weights", body = ErrorBody),
    ))]
pub(crate) async fn weights(
    State(st): State<ApiState>,
    Path(route): Path<String>,
    JsonBody(req): JsonBody<WeightsRequest>,
) -> Result<Json<RouteChange>, ApiError> {
    if req.weights.is_empty() {
        return Err(ApiError::Unprocessable(
            "weights: name at least one version".into(),
        ));
    }
    if let Some((v, w)) = req
        .weights
        .iter()
        .find(|(_, w)| !(0.0..=MAX_WEIGHT).contains(*w))
    {
        return Err(ApiError::Unprocessable(format!(
            "weight of {v} must be between 0 and {MAX_WEIGHT}, got {w}"
        )));
    }
    let reason = req.reason.unwrap_or_else(|| "set by hand".into());
    let live = st.live.clone();
    let r = route.clone();
    let event = blocking(move || {
        let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, reason);
        live.set_weights(&r, &req.weights, draft)
    })
    .await?;
    answer(&st, &route, event)
}

#[utoipa::path(post, path = "/api/v1/routes/{route}/rollback", tag = "changes",
    params(("route" = String, Path, description = "route name")),
    request_body(content = Option<RollbackRequest>, description = "optional; mode defaults to immediate"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "rollback started", body = RouteChange),
        (status = 400, description = "not JSON or not this shape", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such route", body = ErrorBody),
        (status = 409, description = "nothing to roll back", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "`to` names no version of the route, or comes with gradual", body = ErrorBody),
    ))]
pub(crate) async fn rollback(
    State(st): State<ApiState>,
    Path(route): Path<String>,
    OptionalJson(req): OptionalJson<RollbackRequest>,
) -> Result<Json<RouteChange>, ApiError> {
    let mode = match req.mode {
        Mode::Immediate => RollbackMode::Immediate,
        Mode::Gradual => RollbackMode::Gradual,
    };
    let reason = req.reason.unwrap_or_else(|| "rolled back by hand".into());
    let live = st.live.clone();
    let r = route.clone();
    let event = match req.to {
        Some(_) if mode == RollbackMode::Gradual => {
            return Err(ApiError::Unprocessable(
                "to: a rollback to a chosen version is immediate; leave mode out".into(),
            ))
        }
        Some(to) => {
            blocking(move || engine::rollback_to(&live, &r, &to, Actor::Api, &reason)).await?
        }
        None => blocking(move || engine::rollback(&live, &r, mode, Actor::Api, &reason)).await?,
    };
    answer(&st, &route, event)
}

/// `promote`, `pause` and `resume` differ only in the engine action.
macro_rules! action {
    ($name:ident, $path:literal, $what:literal) => {
        #[utoipa::path(post, path = $path, tag = "changes",
            params(("route" = String, Path, description = "route name")),
            request_body(content = Option<ReasonRequest>, description = "optional"),
            security(("bearer" = [])),
            responses(
                (status = 200, description = $what, body = RouteChange),
                (status = 400, description = "not JSON or not this shape", body = ErrorBody),
                (status = 401, description = "missing or wrong token", body = ErrorBody),
                (status = 404, description = "no such route", body = ErrorBody),
                (status = 409, description = "not allowed in the route's state", body = ErrorBody),
                (status = 413, description = "body too large", body = ErrorBody),
                (status = 415, description = "not JSON", body = ErrorBody),
            ))]
        pub(crate) async fn $name(
            State(st): State<ApiState>,
            Path(route): Path<String>,
            OptionalJson(req): OptionalJson<ReasonRequest>,
        ) -> Result<Json<RouteChange>, ApiError> {
            let reason = req.reason.unwrap_or_else(|| "by hand".into());
            let live = st.live.clone();
            let r = route.clone();
            let event = blocking(move || engine::$name(&live, &r, Actor::Api, &reason)).await?;
            answer(&st, &route, event)
        }
    };
}

action!(
    promote,
    "/api/v1/routes/{route}/promote",
    "rollout moved on"
);
action!(pause, "/api/v1/routes/{route}/pause", "rollout paused");
action!(resume, "/api/v1/routes/{route}/resume", "rollout resumed");

fn answer(st: &ApiState, route: &str, event: Event) -> Result<Json<RouteChange>, ApiError> {
    let snap = st.live.snapshot();
    let r = super::route_named(&snap, route)?;
    Ok(Json(RouteChange {
        route: route_status(st, r),
        event,
    }))
}
