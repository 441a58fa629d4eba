//! The admin REST API (SPEC.md "Admin REST API"), as one axum `Router`.
//!
//! Handlers read the live table through `Live::snapshot` and change it only
//! through `Live`'s methods, the engine's actions or the [`Reloader`];
//! failures are `ApiError`, rendered as `{"error": "..."}` with a 4xx/5xx
//! status — axum's own rejections (405, bad path or query) too, through
//! [`json_errors`]. Every endpoint is listed once, in [`endpoints`]: the
//! router is built from that list, and a test checks the OpenAPI document
//! (`api/openapi.rs`) against it, so the two cannot drift.

mod auth;
mod body;
mod changes;
mod drills;
mod error;
mod events;
mod history;
mod incidents;
mod maintenance;
mod mirror;
mod openapi;
mod revisions;
mod stats;
mod status;
mod ui;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use crate::reload::Reloader;
use crate::Live;

pub use auth::Auth;
pub(crate) use body::BODY_LIMIT;
pub(crate) use error::{ApiError, ErrorBody};
#[cfg(test)]
use openapi::ApiDoc;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub live: Arc<Live>,
    /// The process-wide Prometheus recorder (`crate::metrics::install`).
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    /// `None`: serin runs without a routing file (the demo); reload and
    /// restore answer 409.
    pub reloader: Option<Arc<Reloader>>,
    pub auth: Arc<Auth>,
    /// The engine whose verdicts `status` quotes.
    pub engine: Arc<crate::engine::Engine>,
    /// The drills started through this API, running and done.
    pub drills: Arc<crate::drill::Drills>,
}

/// One endpoint: method, path (axum and OpenAPI spell `{param}` alike) and
/// handler.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<ApiState>,
}

// === impl ApiState ===

impl ApiState {
    /// State for `live`, with the process-wide recorder installed, no
    /// routing file and no token.
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            prometheus: crate::metrics::install(),
            reloader: None,
            auth: Arc::new(Auth::open()),
            engine: Arc::default(),
            drills: Arc::default(),
        }
    }

    /// The engine running over `live` (its verdicts in `status`).
    pub fn with_engine(mut self, engine: Arc<crate::engine::Engine>) -> Self {
        self.engine = engine;
        self
    }

    /// Reload and restore act on this routing file.
    pub fn with_reloader(mut self, reloader: Option<Arc<Reloader>>) -> Self {
        self.reloader = reloader;
        self
    }

    /// Who may call what.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Arc::new(auth);
        self
    }
}

/// Every endpoint of the API, once.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        ep(Method::GET, "/healthz", healthz),
        ep(Method::GET, "/metrics", prometheus),
        ep(Method::GET, "/api/v1/status", status::status),
        ep(Method::GET, "/api/v1/routes/{route}", status::route),
        ep(Method::GET, "/api/v1/routes/{route}/stats", stats::stats),
        ep(
            Method::GET,
            "/api/v1/routes/{route}/history",
            history::history,
        ),
        ep(
            Method::PUT,
            "/api/v1/routes/{route}/weights",
            changes::weights,
        ),
        ep(
            Method::POST,
            "/api/v1/routes/{route}/rollback",
            changes::rollback,
        ),
        ep(
            Method::POST,
            "/api/v1/routes/{route}/promote",
            changes::promote,
        ),
        ep(Method::POST, "/api/v1/routes/{route}/pause", changes::pause),
        ep(
            Method::POST,
            "/api/v1/routes/{route}/resume",
            changes::resume,
        ),
        ep(Method::GET, "/api/v1/routes/{route}/mirror", mirror::mirror),
        ep(Method::GET, "/api/v1/events", events::events),
        ep(Method::GET, "/api/v1/revisions", revisions::list),
        ep(
            Method::POST,
            "/api/v1/revisions/{id}/restore",
            revisions::restore,
        ),
        ep(Method::POST, "/api/v1/reload", revisions::reload),
        ep(Method::PUT, "/api/v1/maintenance", maintenance::maintenance),
        ep(Method::POST, "/api/v1/drills", drills::start),
        ep(Method::GET, "/api/v1/drills/{id}", drills::report),
        ep(Method::GET, "/api/v1/incidents", incidents::list),
        ep(Method::GET, "/api/v1/incidents/{id}", incidents::one),
        ep(Method::GET, "/api/v1/openapi.json", openapi::document),
        ep(Method::GET, "/ui", ui::index),
        ep(Method::GET, "/ui/{asset}", ui::asset),
    ]
}

/// The route called `name` in `snap`, or 404.
pub(crate) fn route_named<'a>(
    snap: &'a crate::Snapshot,
    name: &str,
) -> Result<&'a crate::RouteSnap, ApiError> {
    snap.routes
        .iter()
        .find(|r| *r.name == *name)
        .ok_or_else(|| ApiError::NotFound(format!("no route named {name:?}")))
}

/// A share or a rate as the API writes it: 4 decimals (`0.8`, not
/// `0.8000000000465661`), except that rounding never turns a value that is
/// not 0 into 0, nor one below 1 into 1 (an error rate of 0.00004 is not
/// "no errors"): those keep 4 significant digits.
pub(crate) fn fraction(x: f64) -> f64 {
    let r = (x * 1e4).round() / 1e4;
    let gap = if r == 0.0 && x != 0.0 {
        x.abs()
    } else if r == 1.0 && x != 1.0 {
        (1.0 - x).abs()
    } else {
        return r;
    };
    // As many decimals as it takes to show 4 significant digits of the gap.
    let decimals = (-gap.log10()).ceil() as i32 + 3;
    let scale = 10f64.powi(decimals.clamp(0, 15));
    (x * scale).round() / scale
}

/// `x` to `digits` significant digits.
pub(crate) fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// A duration in milliseconds as the API writes it: 2 decimals.
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 1e2
}

fn ep<H, T>(method: Method, path: &'static str, handler: H) -> Endpoint
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    Endpoint {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// The admin router: every [`endpoints`] entry, behind the token check,
/// with a body limit and JSON errors.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for e in endpoints() {
        // The token is checked only once path and method have matched:
        // HTTP's order answers an unknown path 404 and a wrong method 405
        // (with `Allow`) before asking who is calling.
        let handler = e.handler.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
        // Same path twice (GET and PUT) merges into one method router.
        router = router.route(e.path, handler);
    }
    router
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", tag = "status",
    responses((status = 200, description = "the process serves", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/metrics", tag = "status",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
async fn prometheus(State(st): State<ApiState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.prometheus.render(),
    )
}

/// Every failure is `{"error": ...}`: axum's own rejections (405, a path
/// or query it cannot parse) come as plain text or empty, and are wrapped
/// here, in one place.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let error = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let body = serde_json::to_vec(&ErrorBody {
        error,
        current: None,
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Runs a change (file I/O, fsyncs) off the async workers.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => {
            tracing::error!(error = %e, "admin change task failed");
            Err(ApiError::Internal("the change did not finish".into()))
        }
    }
}

#[cfg(test)]
mod tests;
