//! One health probe: `GET {version}{path}` within the timeout, and what
//! went wrong when it failed.
//!
//! Probes use their own small client, not the proxy's: they must not take
//! or count connections of the request path's pool, and their connect
//! timeout is the probe timeout rather than the traffic's.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

/// The client of one probe loop.
pub(crate) type ProbeClient = Client<HttpConnector, Empty<Bytes>>;

/// Why a probe failed; `Display` is the word in reasons (`HTTP 503`, `timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An answer outside 2xx/3xx.
    Status(u16),
    /// No response headers (or no connection) within the timeout.
    Timeout,
    /// The connection was refused.
    Refused,
    /// The connection was reset or closed before an answer.
    Reset,
    /// Anything else (bad address, protocol error).
    Error,
}

/// Body bytes read from a successful probe so its connection can be
/// reused; a larger body is dropped with its connection.
const BODY_MAX: usize = 64 * 1024;

/// A probe's `user-agent`, so a version's logs can tell probes from traffic.
const USER_AGENT: &str = "serin-health-check";

// === impl Failure ===

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(code) => write!(f, "HTTP {code}"),
            Self::Timeout => f.write_str("timeout"),
            Self::Refused => f.write_str("refused"),
            Self::Reset => f.write_str("reset"),
            Self::Error => f.write_str("error"),
        }
    }
}

/// A client for probes with `timeout`, every `interval`.
pub(crate) fn client(timeout: Duration, interval: Duration) -> ProbeClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    // One connection is enough for one probe at a time; an idle one lives
    // just long enough to be reused by the next probe.
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(interval.saturating_mul(2).max(Duration::from_secs(1)))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(http)
}

/// Probes `uri` once. Returns the result and the time to response headers
/// (the timeout when there were none).
///
/// A probe that times out is dropped with its connection, so a hanging
/// endpoint holds at most the one connection of the probe in flight.
pub(crate) async fn probe(
    client: &ProbeClient,
    uri: &Uri,
    timeout: Duration,
) -> (Result<(), Failure>, Duration) {
    let start = Instant::now();
    let deadline = start + timeout;
    let req = Request::get(uri.clone())
        .header(header::USER_AGENT, USER_AGENT)
        .body(Empty::new());
    let Ok(req) = req else {
        return (Err(Failure::Error), Duration::ZERO);
    };
    let resp = match tokio::time::timeout_at(deadline, client.request(req)).await {
        Err(_) => return (Err(Failure::Timeout), timeout),
        Ok(Err(e)) => return (Err(classify(&e)), start.elapsed()),
        Ok(Ok(resp)) => resp,
    };
    let took = start.elapsed();
    let status = resp.status();
    // Drained within the same deadline only so the connection can be
    // reused; the status alone decides.
    let body = Limited::new(resp.into_body(), BODY_MAX).collect();
    let _ = tokio::time::timeout_at(deadline, body).await;
    (judge(status), took)
}

/// 2xx and 3xx are healthy answers.
pub(crate) fn judge(status: StatusCode) -> Result<(), Failure> {
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(Failure::Status(status.as_u16()))
    }
}

/// Names a client error by the I/O error under it.
fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Failure::Refused,
                std::io::ErrorKind::TimedOut => Failure::Timeout,
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => Failure::Reset,
                _ => Failure::Error,
            };
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return Failure::Reset;
            }
        }
        source = err.source();
    }
    Failure::Error
}
