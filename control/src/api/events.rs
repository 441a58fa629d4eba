//! `GET /api/v1/events?route=&since=`: the journal, newest last.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::ApiState;
use crate::event::Event;

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    route: Option<String>,
    /// Only events with a larger `seq`.
    #[serde(default)]
    since: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct EventList {
    events: Vec<Event>,
}

pub(crate) async fn events(
    State(st): State<ApiState>,
    Query(q): Query<EventsQuery>,
) -> Json<EventList> {
    Json(EventList {
        events: st.live.shared().events.since(q.since, q.route.as_deref()),
    })
}
