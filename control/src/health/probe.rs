//! One health probe: `GET {version}{path}` within the timeout, and what
//! went wrong when it failed.
//!
//! Probes go through a [`Connector`] the data plane hands in (`serin-proxy`
//! gives its own upstream client, with a pool of its own): the same TCP,
//! TLS (`tls_ca`, `tls_server_name`, mTLS) and HTTP/2 as requests, so a
//! version healthy to probes is reachable by traffic, and one whose
//! certificate serin refuses is unhealthy to both. Probes never take or
//! count connections of the request path's pool.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use crate::handle::Failure;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::StatusCode;
use serin_config::UpstreamTls;
use tokio::time::Instant;

/// Where a probe goes: a version as the data plane reaches it, and the path.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeTarget {
    pub scheme: Scheme,
    pub authority: Authority,
    pub tls: Option<UpstreamTls>,
    pub path: PathAndQuery,
}

/// How probes reach versions.
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// `GET` of `to`'s path with `user-agent: serin-health-check`, its
    /// body read (up to [`BODY_MAX`], so the connection can be reused):
    /// the status, or why there was none. The caller bounds it with the
    /// probe's timeout, dropping it when that runs out.
    fn get<'a>(
        &'a self,
        to: &'a ProbeTarget,
    ) -> Pin<Box<dyn Future<Output = Result<StatusCode, Failure>> + Send + 'a>>;
}

/// Body bytes read from a successful probe so its connection can be
/// reused; a larger body is dropped with its connection.
pub const BODY_MAX: usize = 64 * 1024;

/// A probe's `user-agent`, so a version's logs can tell probes from traffic.
pub const USER_AGENT: &str = "serin-health-check";

/// Probes `to` once through `connector`. Returns the result and the time
/// to response headers (the timeout when there were none).
///
/// A probe that times out is dropped with its connection, so a hanging
/// endpoint holds at most the one connection of the probe in flight.
pub(crate) async fn probe(
    connector: &dyn Connector,
    to: &ProbeTarget,
    timeout: Duration,
) -> (Result<(), Failure>, Duration) {
    let start = Instant::now();
    match tokio::time::timeout(timeout, connector.get(to)).await {
        Err(_) => (Err(Failure::Timeout), timeout),
        Ok(Err(f)) => (Err(f), start.elapsed()),
        Ok(Ok(status)) => (judge(status), start.elapsed()),
    }
}

/// 2xx and 3xx are healthy answers.
pub(crate) fn judge(status: StatusCode) -> Result<(), Failure> {
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(Failure::Status(status.as_u16()))
    }
}
