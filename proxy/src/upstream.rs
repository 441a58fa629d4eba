//! Upstream connections: one pooled keep-alive client shared by every
//! version (its pool is keyed by authority, so each version has its own
//! idle connections), kept across table swaps.

use std::time::Duration;

use crate::body::UpstreamBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The client every version is reached through.
pub(crate) type UpstreamClient = Client<HttpConnector, UpstreamBody>;

/// Connect attempts give up after this; a version's own `timeout` bounds
/// the wait for response headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle upstream connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Builds the shared upstream client.
pub(crate) fn client() -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(http)
}
