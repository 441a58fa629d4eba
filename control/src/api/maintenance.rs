//! `PUT /api/v1/maintenance`: every route answers 503 with a message (HTML
//! or JSON by `Accept`) until switched off. Live state like any other:
//! saved before the answer, survives a restart and every reload.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::JsonBody;
use super::{blocking, ApiError, ApiState, ErrorBody};
use crate::event::{Actor, Draft, Event, EventKind};

/// The longest maintenance message accepted, in characters.
const MAX_MESSAGE: usize = 4096;

/// `{"enabled": true, "message": "..."}`
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct MaintenanceRequest {
    enabled: bool,
    /// Shown to clients; default "Down for maintenance".
    #[serde(default)]
    #[schema(max_length = 4096)]
    message: Option<String>,
}

/// Maintenance mode as it now is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MaintenanceState {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// The recorded change; absent when nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<Event>,
}

#[utoipa::path(put, path = "/api/v1/maintenance", tag = "changes",
    request_body = MaintenanceRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "maintenance mode set", body = MaintenanceState),
        (status = 400, description = "not JSON or not this shape", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "message too long", body = ErrorBody),
    ))]
pub(crate) async fn maintenance(
    State(st): State<ApiState>,
    JsonBody(req): JsonBody<MaintenanceRequest>,
) -> Result<Json<MaintenanceState>, ApiError> {
    // Checked whether on or off: the document's maxLength holds for both.
    if req
        .message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_MESSAGE)
    {
        return Err(ApiError::Unprocessable(format!(
            "message longer than {MAX_MESSAGE} characters"
        )));
    }
    let message = req.enabled.then(|| {
        req.message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| "Down for maintenance".into())
    });
    let before = st.live.state().maintenance;
    if before == message {
        return Ok(Json(MaintenanceState {
            enabled: req.enabled,
            message,
            event: None,
        }));
    }
    let (kind, reason) = match &message {
        Some(m) => (EventKind::MaintenanceOn, format!("maintenance on: {m}")),
        None => (EventKind::MaintenanceOff, "maintenance off".to_owned()),
    };
    let live = st.live.clone();
    let next = message.clone();
    let event = blocking(move || {
        let draft = Draft::new(Actor::Api, kind, reason)
            .change(serde_json::json!(before), serde_json::json!(next));
        live.update(draft, move |_, state| {
            state.maintenance = next;
            Ok(())
        })
    })
    .await?;
    Ok(Json(MaintenanceState {
        enabled: req.enabled,
        message,
        event: Some(event),
    }))
}
