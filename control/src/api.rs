//! The admin REST API (SPEC.md "Admin REST API"), as one axum `Router`.
//!
//! Handlers read the live table through `Live::snapshot` and change it only
//! through `Live`'s methods; failures are `ApiError`, rendered as
//! `{"error": "..."}` with a 4xx/5xx status.

mod error;
mod status;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::Live;

pub use error::ApiError;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub live: Arc<Live>,
}

/// The admin router: `/healthz` and `/api/v1/...`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/routes/{route}", get(status::route))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state)
}
