//! HTTP/2 to a version: `h2c://` (prior knowledge) or `https://` where the
//! version chose `h2` by ALPN. hyper's HTTP/2 client carries it: HTTP/2
//! multiplexes streams on one connection, so the connection has its own
//! task, and every request of this thread to the version shares it.
//!
//! The request goes with `:authority` set to the client's host (as the
//! HTTP/1.1 leg passes `Host` on), the forwarding headers added, and
//! `te: trailers` for gRPC (which needs it and whose client's `te` was
//! stripped as hop-by-hop). Response trailers reach the client's body.

use std::io;

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{header, HeaderValue, Request};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::io::Io;
use crate::body::UpstreamBody;
use crate::headers::Forwarding;

/// A handle on one HTTP/2 connection; clones share it.
pub(crate) type Sender = hyper::client::conn::http2::SendRequest<UpstreamBody>;

/// Pings an idle HTTP/2 connection this often, so a dead one is found.
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts HTTP/2 on `io` (the preface and settings exchange) and spawns
/// the connection's task.
pub(crate) async fn handshake(io: Io) -> io::Result<Sender> {
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEPALIVE)
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "HTTP/2 connection to a version ended");
        }
    });
    Ok(sender)
}

/// `req` as the version's HTTP/2 request: absolute URI with `scheme` and
/// the client's host (or `authority` when it named none), the forwarding
/// headers set.
pub(crate) fn request(
    req: Request<UpstreamBody>,
    scheme: Scheme,
    authority: &Authority,
    fwd: Option<&Forwarding>,
) -> Result<Request<UpstreamBody>, http::Error> {
    let (mut parts, body) = req.into_parts();
    if let Some(fwd) = fwd {
        fwd.apply(&mut parts.headers);
    }
    let host = parts.headers.remove(header::HOST);
    let host = match host.as_ref().map(|h| Authority::try_from(h.as_bytes())) {
        Some(Ok(a)) => a,
        _ => authority.clone(),
    };
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(scheme)
        .authority(host)
        .path_and_query(path)
        .build()?;
    parts.version = http::Version::HTTP_2;
    let grpc = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        parts
            .headers
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
    Ok(Request::from_parts(parts, body))
}
