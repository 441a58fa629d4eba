//! `GET /api/v1/revisions`, `POST /api/v1/revisions/{id}/restore` and
//! `POST /api/v1/reload`: the routing file's history and hot reload (the
//! work is in [`crate::reload`]).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{blocking, ApiError, ApiState, ErrorBody};
use crate::event::{Actor, Event};
use crate::reload::{Outcome, Reloader};
use crate::revisions::Revision;

/// SPEC.md's revisions shape, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RevisionList {
    revisions: Vec<Revision>,
    /// The revision in force.
    current: String,
}

/// What a reload or a restore did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReloadResult {
    /// `applied`, or `unchanged` when the file means what is already live.
    #[schema(example = "applied")]
    result: &'static str,
    /// The revision in force now.
    revision: String,
    /// The `config_applied` event; absent when unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<Event>,
}

#[utoipa::path(get, path = "/api/v1/revisions", tag = "revisions",
    responses((status = 200, description = "kept routing-file revisions, oldest first", body = RevisionList)))]
pub(crate) async fn list(State(st): State<ApiState>) -> Result<Json<RevisionList>, ApiError> {
    let current = st.live.state().revision;
    let Some(reloader) = st.reloader.clone() else {
        return Ok(Json(RevisionList {
            revisions: Vec::new(),
            current,
        }));
    };
    let revisions = blocking(move || {
        reloader.revisions().list().map_err(|e| {
            tracing::error!(error = %e, "cannot read the revisions");
            ApiError::Internal("cannot read the revisions".into())
        })
    })
    .await?;
    Ok(Json(RevisionList { revisions, current }))
}

#[utoipa::path(post, path = "/api/v1/revisions/{id}/restore", tag = "revisions",
    params(("id" = String, Path, description = "revision id, e.g. r3")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the revision is the routing file and live again", body = ReloadResult),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such revision kept", body = ErrorBody),
        (status = 409, description = "serin runs without a routing file", body = ErrorBody),
        (status = 422, description = "the revision cannot apply now", body = ErrorBody),
    ))]
pub(crate) async fn restore(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ReloadResult>, ApiError> {
    let reloader = reloader(&st)?;
    let outcome = blocking(move || reloader.restore(&id, Actor::Api)).await?;
    Ok(Json(outcome.into()))
}

#[utoipa::path(post, path = "/api/v1/reload", tag = "revisions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "applied, or unchanged", body = ReloadResult),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 409, description = "serin runs without a routing file", body = ErrorBody),
        (status = 422, description = "file rejected (file:line:col: message); the last good table serves", body = ErrorBody),
    ))]
pub(crate) async fn reload(State(st): State<ApiState>) -> Result<Json<ReloadResult>, ApiError> {
    let reloader = reloader(&st)?;
    let outcome = blocking(move || reloader.reload(Actor::Api)).await?;
    Ok(Json(outcome.into()))
}

fn reloader(st: &ApiState) -> Result<std::sync::Arc<Reloader>, ApiError> {
    st.reloader
        .clone()
        .ok_or_else(|| ApiError::Conflict("serin runs without a routing file (demo)".into()))
}

impl From<Outcome> for ReloadResult {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Applied { revision, event } => Self {
                result: "applied",
                revision,
                event: Some(*event),
            },
            Outcome::Unchanged { revision } => Self {
                result: "unchanged",
                revision,
                event: None,
            },
        }
    }
}
