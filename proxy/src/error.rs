//! Named failures of the request path and `rescue`, the one place they
//! become a client answer. The service handed to hyper never fails: hyper
//! would abort the connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

/// What the client receives: a version's streamed body, or one of ours.
pub(crate) type ProxyBody = Either<crate::upstream::RespBody, Full<Bytes>>;

/// Why a request got no answer from a version (and no fallback chain
/// answered for it: that case is the route's `final_status`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// No route matches the host and path. Not retryable.
    #[error("no route for this host and path")]
    NoRoute,
    /// The version could not be reached: refused, reset, or closed before
    /// any response.
    #[error("version {version} unreachable")]
    Unreachable { version: Arc<str> },
    /// No response headers within the version's timeout.
    #[error("version {version} did not answer within {after:?}")]
    VersionTimeout { version: Arc<str>, after: Duration },
    /// The picked version's breaker is open and there is no chain to walk.
    #[error("version unavailable: circuit breaker open")]
    BreakerOpen,
    /// The client's request body failed (or stalled) while it was being
    /// kept for replay.
    #[error("{0}")]
    ClientBody(crate::body::BodyError),
}

/// Maps a failure to the client's status and a JSON `{"error": ...}` body.
/// Internals (addresses, OS errors) are logged, not sent.
pub(crate) fn rescue(err: &ProxyError) -> Response<ProxyBody> {
    let (status, msg) = match err {
        ProxyError::NoRoute => (StatusCode::NOT_FOUND, "no route for this host and path"),
        ProxyError::Unreachable { .. } => (StatusCode::BAD_GATEWAY, "upstream unavailable"),
        ProxyError::VersionTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
        ProxyError::BreakerOpen => (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable"),
        ProxyError::ClientBody(crate::body::BodyError::Stalled(_)) => {
            (StatusCode::REQUEST_TIMEOUT, "request body timed out")
        }
        ProxyError::ClientBody(_) => (StatusCode::BAD_REQUEST, "request body could not be read"),
    };
    if !matches!(err, ProxyError::NoRoute) {
        tracing::debug!(error = %err, "request failed");
    }
    json_error(status, msg)
}

/// `{"error": msg}` with `status`.
pub(crate) fn json_error(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": msg }).to_string();
    answer(status, Bytes::from(body), "application/json")
}

/// `{"error": msg}` with `status`, and on HTTP/1.1 `Connection: close`:
/// for requests whose framing cannot be trusted, so nothing after them on
/// the connection is read as a request. (HTTP/2 forbids the header; a
/// stream ends on its own.)
pub(crate) fn closing_error(status: StatusCode, msg: &str, h1: bool) -> Response<ProxyBody> {
    let mut resp = json_error(status, msg);
    if h1 {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A whole answer of serin's own (not a version's).
pub(crate) fn answer(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
