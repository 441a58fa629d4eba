//! What a fake version answers: faults first, then the endpoint.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use super::body::{pattern_buffer, FakeBody};
use super::Faults;
use crate::checksum::Fnv64;

/// The header naming the version on every response.
pub const X_UPSTREAM_VERSION: HeaderName = HeaderName::from_static("x-upstream-version");

/// `/echo` returns the body as text only up to this size.
const ECHO_BODY_MAX: usize = 64 * 1024;

/// The longest `/delay` honoured, so a typo cannot hold a connection for days.
const DELAY_MAX: Duration = Duration::from_secs(600);

/// How often a hung request looks whether the hang was lifted.
const HANG_POLL: Duration = Duration::from_millis(20);

/// Everything the requests of one fake version share, built once at start.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) faults: Arc<Faults>,
    pub(crate) requests: AtomicU64,
    /// `/health` requests among `requests`.
    pub(crate) health_requests: AtomicU64,
    /// Connections open now.
    pub(crate) connections: AtomicU64,
    /// `x-upstream-version`, encoded once.
    version: HeaderValue,
    /// `NAME\n`, the default body, shared by every response.
    default_body: Bytes,
    /// See [`pattern_buffer`].
    pattern: Bytes,
    /// Upgraded connections leave hyper; they watch this to end with the server.
    shutdown: watch::Receiver<bool>,
}

/// A request dropped on purpose by the refuse or close-mid-headers fault.
///
/// Returning it makes hyper close the connection without an answer, which is
/// the point.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub(crate) struct Dropped;

// === impl Shared ===

impl Shared {
    /// # Errors
    ///
    /// `InvalidInput` when `name` cannot be a header value.
    pub(crate) fn new(name: &str, shutdown: watch::Receiver<bool>) -> std::io::Result<Self> {
        let version = HeaderValue::from_str(name)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Self {
            name: name.to_owned(),
            faults: Arc::new(Faults::default()),
            requests: AtomicU64::new(0),
            health_requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            version,
            default_body: Bytes::from(format!("{name}\n")),
            pattern: pattern_buffer(),
            shutdown,
        })
    }
}

/// Answers one request: counts it, applies the faults, then the endpoint.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<FakeBody>, Dropped> {
    shared.requests.fetch_add(1, Relaxed);
    let faults = &*shared.faults;
    // A connection that was open before the fault went on is dropped here;
    // new ones never reach hyper (see `conn`).
    if faults.refuse() || faults.close_mid_headers() {
        return Err(Dropped);
    }
    if faults.hang() {
        // Bounded by the server's life: shutdown aborts this connection.
        while faults.hang() {
            tokio::time::sleep(HANG_POLL).await;
        }
    }
    let delay = faults.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let override_status = faults.status().and_then(|s| StatusCode::from_u16(s).ok());
    let mut resp = route(&shared, req, override_status.is_none()).await;
    if let Some(status) = override_status {
        *resp.status_mut() = status;
    }
    resp.headers_mut()
        .insert(X_UPSTREAM_VERSION, shared.version.clone());
    if faults.signal() {
        resp.headers_mut().insert(
            super::faults::SIGNAL_HEADER,
            http::HeaderValue::from_static("1"),
        );
    }
    Ok(resp)
}

async fn route(shared: &Shared, req: Request<Incoming>, may_upgrade: bool) -> Response<FakeBody> {
    if may_upgrade && req.version() == Version::HTTP_11 && req.headers().contains_key(UPGRADE) {
        return upgrade(shared, req);
    }
    let faults = &shared.faults;
    if req.uri().path() == "/health" {
        shared.health_requests.fetch_add(1, Relaxed);
        // Bounded by the server's life and the client's: either closing
        // the connection drops this future.
        while faults.health_hang() {
            tokio::time::sleep(HANG_POLL).await;
        }
        return if faults.health_fail() {
            text(StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n")
        } else {
            text(StatusCode::OK, "ok")
        };
    }
    if faults.draw_error() {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "injected error\n");
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/echo" => echo(shared, req).await,
        "/upload" => upload(req).await,
        "/download" => match param::<u64>(query, "bytes") {
            Some(len) => Response::new(FakeBody::pattern(shared.pattern.clone(), len)),
            None => text(StatusCode::BAD_REQUEST, "want /download?bytes=N\n"),
        },
        "/delay" => match param::<u64>(query, "ms") {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms).min(DELAY_MAX)).await;
                Response::new(FakeBody::full(shared.default_body.clone()))
            }
            None => text(StatusCode::BAD_REQUEST, "want /delay?ms=N\n"),
        },
        "/status" => match param::<u16>(query, "code").and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(code) if code.as_u16() >= 200 => {
                let mut resp = Response::new(FakeBody::full(shared.default_body.clone()));
                *resp.status_mut() = code;
                resp
            }
            _ => text(StatusCode::BAD_REQUEST, "want /status?code=200..999\n"),
        },
        _ => Response::new(FakeBody::full(shared.default_body.clone())),
    }
}

/// Answers 101 and echoes raw bytes on the upgraded connection.
fn upgrade(shared: &Shared, mut req: Request<Incoming>) -> Response<FakeBody> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let mut shutdown = shared.shutdown.clone();
    // The echo outlives the request; it ends on EOF or when the server stops.
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        tokio::select! {
            _ = tokio::io::copy(&mut rd, &mut wr) => {}
            () = super::stopped(&mut shutdown) => {}
        }
    });
    let mut resp = Response::new(FakeBody::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    if let Some(proto) = req.headers().get(UPGRADE) {
        resp.headers_mut().insert(UPGRADE, proto.clone());
    }
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    resp
}

/// Reads the whole body and describes the request as JSON.
async fn echo(shared: &Shared, req: Request<Incoming>) -> Response<FakeBody> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "request body broke off\n"),
    };
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let mut values: Vec<serde_json::Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        let value = if values.len() == 1 {
            values.swap_remove(0)
        } else {
            values.into()
        };
        headers.insert(name.as_str().to_owned(), value);
    }
    let mut fnv = Fnv64::new();
    fnv.update(&body);
    let mut doc = serde_json::json!({
        "version": shared.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "http_version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body.len(),
        "body_fnv": fnv.to_string(),
    });
    if body.len() <= ECHO_BODY_MAX {
        doc["body"] = String::from_utf8_lossy(&body).into_owned().into();
    }
    json(&doc)
}

/// Counts and hashes the body frame by frame, never holding it whole.
async fn upload(req: Request<Incoming>) -> Response<FakeBody> {
    let mut body = req.into_body();
    let mut bytes = 0u64;
    let mut fnv = Fnv64::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return text(StatusCode::BAD_REQUEST, "request body broke off\n");
        };
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            fnv.update(data);
        }
    }
    json(&serde_json::json!({ "bytes": bytes, "fnv": fnv.to_string() }))
}

fn text(status: StatusCode, body: &'static str) -> Response<FakeBody> {
    let mut resp = Response::new(FakeBody::full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

fn json(doc: &serde_json::Value) -> Response<FakeBody> {
    let mut resp = Response::new(FakeBody::full(doc.to_string()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The value of `key` in a query string, parsed; no percent-decoding, since
/// every parameter here is a number.
fn param<T: std::str::FromStr>(query: &str, key: &str) -> Option<T> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}
