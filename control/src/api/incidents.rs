//! `GET /api/v1/incidents[/{id}]`: every rollback's report, as JSON or, with
//! `?format=markdown`, as the root-cause document people paste into a
//! ticket. Derived from the journal (its last 10,000 events) off the async
//! workers.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, ErrorBody};
use crate::incident::{self, Incident};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IncidentQuery {
    /// Only this route's incidents (list only).
    route: Option<String>,
    /// `json` (default) or `markdown`.
    #[param(inline)]
    format: Option<Format>,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum Format {
    Json,
    Markdown,
}

/// Every incident the journal holds, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IncidentList {
    incidents: Vec<Incident>,
}

#[utoipa::path(get, path = "/api/v1/incidents", tag = "status",
    params(IncidentQuery),
    responses(
        (status = 200, description = "every rollback's incident, oldest first; with `format=markdown` the reports as text",
            content((IncidentList = "application/json"), (String = "text/markdown"))),
        (status = 400, description = "bad query", body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(st): State<ApiState>,
    Query(q): Query<IncidentQuery>,
) -> Result<Response, ApiError> {
    let live = st.live.clone();
    let route = q.route.clone();
    let incidents = super::blocking(move || {
        let events = live.shared().events.since(0, route.as_deref());
        Ok::<_, ApiError>(incident::list(&events))
    })
    .await?;
    Ok(match q.format {
        Some(Format::Markdown) => markdown(
            incidents
                .iter()
                .map(incident::markdown)
                .collect::<Vec<_>>()
                .join("\n---\n\n"),
        ),
        _ => Json(IncidentList { incidents }).into_response(),
    })
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "status",
    params(("id" = String, Path, description = "incident id, e.g. i42"), IncidentQuery),
    responses(
        (status = 200, description = "the incident's report; with `format=markdown` as text",
            content((Incident = "application/json"), (String = "text/markdown"))),
        (status = 400, description = "bad query", body = ErrorBody),
        (status = 404, description = "no such incident", body = ErrorBody),
    ))]
pub(crate) async fn one(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<IncidentQuery>,
) -> Result<Response, ApiError> {
    let live = st.live.clone();
    let found = super::blocking(move || {
        let events = live.shared().events.since(0, None);
        incident::list(&events)
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| ApiError::NotFound(format!("no incident {id:?}")))
    })
    .await?;
    Ok(match q.format {
        Some(Format::Markdown) => markdown(incident::markdown(&found)),
        _ => Json(found).into_response(),
    })
}

fn markdown(text: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        text,
    )
        .into_response()
}
