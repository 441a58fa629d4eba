//! The request path: one snapshot load → route → pick → forward → answer.

use std::sync::Arc;

use http::uri::{PathAndQuery, Uri};
use http::{header, HeaderName, HeaderValue, Request, Response, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serin_control::{Live, Snapshot, VersionSnap};

use crate::error::{rescue, ProxyBody, ProxyError};
use crate::headers::{self, Peer};
use crate::upstream::UpstreamClient;
use crate::{pick, route};

static X_SERIN_VERSION: HeaderName = HeaderName::from_static("x-serin-version");

/// The data plane's service; one per process, shared by every connection.
#[derive(Debug)]
pub(crate) struct Proxy {
    live: Arc<Live>,
    client: UpstreamClient,
}

// === impl Proxy ===

impl Proxy {
    pub(crate) fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            client: crate::upstream::client(),
        }
    }

    /// Answers one request. Never fails: every error is rescued into a
    /// response here, so hyper keeps the connection.
    pub(crate) async fn handle(&self, req: Request<Incoming>, peer: Peer) -> Response<ProxyBody> {
        // One load per request: routed by the old table or the new one, never a mix.
        let snap = self.live.load();
        match self.forward(&snap, req, peer).await {
            Ok(resp) => resp,
            Err(e) => rescue(&e),
        }
    }

    async fn forward(
        &self,
        snap: &Snapshot,
        mut req: Request<Incoming>,
        peer: Peer,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let route = &snap.routes[route::find(snap, &req).ok_or(ProxyError::NoRoute)?];
        let version = &route.versions[pick::pick(route, req.headers())];

        let upgrade = headers::is_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        prepare(&mut req, version, peer, upgrade);

        let sent = self.client.request(req);
        let mut resp = match tokio::time::timeout(version.timeout, sent).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(source)) => {
                return Err(ProxyError::Upstream {
                    version: version.name.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(ProxyError::VersionTimeout {
                    version: version.name.clone(),
                    after: version.timeout,
                })
            }
        };

        let switching = resp.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
            tunnel(client_upgrade, hyper::upgrade::on(&mut resp));
        }
        headers::strip_hop_by_hop(resp.headers_mut(), switching);
        if route.response_headers {
            resp.headers_mut()
                .insert(&X_SERIN_VERSION, version.header.clone());
        }
        Ok(resp.map(Either::Left))
    }
}

/// Rewrites a client request into the request for `version`, in place.
fn prepare(req: &mut Request<Incoming>, version: &VersionSnap, peer: Peer, upgrade: bool) {
    let h2 = req.version() == Version::HTTP_2;
    // HTTP/2 carries the host in `:authority`; HTTP/1.1 upstreams need `Host`.
    let host = match req.headers().get(header::HOST) {
        Some(h) => Some(h.clone()),
        None => req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    let headers = req.headers_mut();
    headers::strip_hop_by_hop(headers, upgrade);
    headers::forwarded(headers, peer, host.clone(), h2);
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }

    let pq = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(version.scheme.clone());
    parts.authority = Some(version.authority.clone());
    parts.path_and_query = Some(pq);
    // Scheme, authority and path are all set, so this cannot fail.
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_11;
}

/// Joins both sides of a `101 Switching Protocols` and copies bytes both
/// ways until either side closes.
fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (Ok(client), Ok(upstream)) = (client.await, upstream.await) else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
}
