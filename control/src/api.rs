//! The admin REST API (SPEC.md "Admin REST API"), as one axum `Router`.
//!
//! Handlers read the live table through `Live::snapshot` and change it only
//! through `Live`'s methods; failures are `ApiError`, rendered as
//! `{"error": "..."}` with a 4xx/5xx status.

mod error;
mod events;
mod stats;
mod status;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::Live;

pub use error::ApiError;
pub use status::weight_json;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub live: Arc<Live>,
    /// The process-wide Prometheus recorder (`crate::metrics::install`).
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
}

// === impl ApiState ===

impl ApiState {
    /// State for `live`, with the process-wide recorder installed.
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            prometheus: crate::metrics::install(),
        }
    }
}

/// The admin router: `/healthz` and `/api/v1/...`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(prometheus))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/routes/{route}", get(status::route))
        .route("/api/v1/routes/{route}/stats", get(stats::stats))
        .route("/api/v1/events", get(events::events))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(state)
}

/// `GET /metrics`: Prometheus text exposition.
async fn prometheus(State(st): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.prometheus.render(),
    )
}
