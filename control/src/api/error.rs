//! `ApiError`: the one place admin failures become HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::reload::ReloadError;
use crate::LiveError;

/// An admin call that failed. Rendered as `{"error": "..."}`; internals
/// never leak into the message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// The request is not what the endpoint takes (malformed JSON, wrong shape).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but the change is not valid (unknown version, all-zero weights).
    #[error("{0}")]
    Unprocessable(String),
    /// The current state does not allow the change (e.g. promote a promoted route).
    #[error("{0}")]
    Conflict(String),
    /// Another replica of the fleet changed the state first: 409 with
    /// that state (`current`), now in force here too.
    #[error("{message}")]
    Stale {
        message: String,
        current: serde_json::Value,
    },
    /// The fleet's store cannot be reached: 503, nothing changed.
    #[error("{0}")]
    Unavailable(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// serin could not do it (e.g. the state could not be saved); details are logged.
    #[error("{0}")]
    Internal(String),
}

/// The body of every failed call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// On a 409 in a fleet: the live state in force (weights, route
    /// phases, maintenance), which the change was not based on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
}

// === impl ApiError ===

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) | Self::Stale { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = self.to_string();
        let current = match self {
            Self::Stale { current, .. } => Some(current),
            _ => None,
        };
        let body = Json(ErrorBody { error, current });
        if status == StatusCode::UNAUTHORIZED {
            let challenge = [(axum::http::header::WWW_AUTHENTICATE, "Bearer")];
            return (status, challenge, body).into_response();
        }
        (status, body).into_response()
    }
}

impl From<LiveError> for ApiError {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::NoRoute(_) => Self::NotFound(e.to_string()),
            LiveError::NoVersion(..) | LiveError::Compile(_) => Self::Unprocessable(e.to_string()),
            LiveError::Refused(m) => Self::Conflict(m),
            LiveError::Invalid(m) => Self::Unprocessable(m),
            LiveError::Stale { message, current } => Self::Stale {
                message,
                current: serde_json::to_value(*current).unwrap_or_default(),
            },
            LiveError::Unavailable(m) => Self::Unavailable(m),
            LiveError::Persist(ref io) => {
                tracing::error!(error = %io, "admin change not saved");
                Self::Internal("cannot save the live state; nothing changed".into())
            }
        }
    }
}

impl From<ReloadError> for ApiError {
    fn from(e: ReloadError) -> Self {
        match e {
            ReloadError::Rejected(m) => Self::Unprocessable(m),
            ReloadError::NoRevision(_) => Self::NotFound(e.to_string()),
            ReloadError::Io(m) => {
                tracing::error!(error = %m, "reload failed");
                Self::Internal("cannot read or write the routing file or its revisions".into())
            }
            ReloadError::Live(e) => e.into(),
        }
    }
}
