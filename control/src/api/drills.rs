//! `POST /api/v1/drills` and `GET /api/v1/drills/{id}`: rollback drills
//! inside serin (see `crate::drill`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::body::JsonBody;
use super::{blocking, ApiError, ApiState, ErrorBody};
use crate::drill::{DrillReport, DrillSpec};

#[utoipa::path(post, path = "/api/v1/drills", tag = "drills",
    request_body = DrillSpec,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "drill running", body = DrillReport),
        (status = 400, description = "not JSON or not this shape", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such route", body = ErrorBody),
        (status = 422, description = "no such version, or a rate, latency or duration out of bounds", body = ErrorBody),
        (status = 409, description = "a drill already running there", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
    ))]
pub(crate) async fn start(
    State(st): State<ApiState>,
    JsonBody(spec): JsonBody<DrillSpec>,
) -> Result<(StatusCode, Json<DrillReport>), ApiError> {
    let (live, drills) = (st.live.clone(), st.drills.clone());
    let report = blocking(move || drills.start(&live, spec)).await?;
    Ok((StatusCode::CREATED, Json(report)))
}

#[utoipa::path(get, path = "/api/v1/drills/{id}", tag = "drills",
    params(("id" = String, Path, description = "drill id, e.g. d12")),
    responses(
        (status = 200, description = "the drill's report so far", body = DrillReport),
        (status = 404, description = "no such drill", body = ErrorBody),
    ))]
pub(crate) async fn report(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<DrillReport>, ApiError> {
    st.drills
        .report(&st.live, &id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no drill {id:?}")))
}
