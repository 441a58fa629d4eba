//! `GET /api/v1/events?route=&since=`: the journal, newest last.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState};
use crate::event::Event;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Only events about this route.
    route: Option<String>,
    /// Only events with a larger `seq`. (Signed: the document says int64,
    /// and a `seq` never gets near its end.)
    #[serde(default)]
    #[param(minimum = 0)]
    since: i64,
}

/// Audit-log entries, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventList {
    events: Vec<Event>,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "status",
    params(EventsQuery),
    responses(
        (status = 200, description = "audit log entries, newest last", body = EventList),
        (status = 400, description = "bad query", body = super::ErrorBody),
    ))]
pub(crate) async fn events(
    State(st): State<ApiState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    let since =
        u64::try_from(q.since).map_err(|_| ApiError::BadRequest("since must be >= 0".into()))?;
    Ok(Json(EventList {
        events: st.live.shared().events.since(since, q.route.as_deref()),
    }))
}
