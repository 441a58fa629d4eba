//! The request path: one snapshot load → route → pick → the attempt walk
//! (`fallback`) → the answer, with per-version and end-to-end telemetry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serin_config::{Cidr, Limits};
use serin_control::Outcome;
use serin_control::{Live, RouteSnap, Snapshot};

use crate::body::{keep, ClientBody, Kept, UpstreamBody};
use crate::classify::BodyFault;
use crate::error::{answer, closing_error, rescue, ProxyBody, ProxyError};
use crate::fallback::{walk, Count, Outgoing, Walk};
use crate::headers::{self, Peer};
use crate::upstream::Upstreams;
use crate::{host, smuggling};
use crate::{pick, route};

static X_SERIN_VERSION: HeaderName = HeaderName::from_static("x-serin-version");
static X_SERIN_FALLBACK: HeaderName = HeaderName::from_static("x-serin-fallback");

/// The data plane's service; one per process, shared by every connection.
#[derive(Debug)]
pub(crate) struct Proxy {
    live: Arc<Live>,
    upstreams: Upstreams,
    /// `[limits] body_read_timeout`.
    body_timeout: Duration,
    /// `[limits] trusted_proxies`: peers whose `X-Forwarded-For` is kept.
    trusted: Box<[Cidr]>,
    /// `[limits]`, for `upgrades`.
    limits: Limits,
    /// `[access_log]` and `[tracing]`'s records; `None`: both off.
    access: Option<Arc<crate::access::AccessLog>>,
    /// `[tracing] sample`; `None`: no span recorded.
    sample: Option<f64>,
}

// === impl Proxy ===

impl Proxy {
    /// The data plane over `live`, bounded by `limits` (fixed at start).
    pub(crate) fn new(live: Arc<Live>, limits: &Limits) -> Self {
        Self {
            live,
            upstreams: Upstreams::new(limits),
            body_timeout: limits.body_read_timeout,
            trusted: limits.trusted_proxies.clone().into(),
            limits: limits.clone(),
            access: None,
            sample: None,
        }
    }

    /// Records every request into `log` (its line, its span); spans for
    /// `sample` of the traces serin starts (`None`: no span).
    pub(crate) fn with_access_log(
        mut self,
        log: Option<Arc<crate::access::AccessLog>>,
        sample: Option<f64>,
    ) -> Self {
        self.access = log;
        self.sample = sample;
        self
    }

    /// The access log, when on.
    pub(crate) fn access(&self) -> Option<&Arc<crate::access::AccessLog>> {
        self.access.as_ref()
    }

    /// Answers one request. Never fails: every error is rescued into a
    /// response here, so hyper keeps the connection.
    pub(crate) async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: Peer,
    ) -> Response<ProxyBody> {
        let h1 = req.version() < Version::HTTP_2;
        if let Err(why) = smuggling::check(&req) {
            tracing::debug!(peer = %peer.addr, %why, "request refused");
            return closing_error(StatusCode::BAD_REQUEST, &why.to_string(), h1);
        }
        // serin is a reverse proxy: it opens no tunnel for a client
        // (RFC 9110 §9.3.6; a 2xx to CONNECT would have no body framing).
        if req.method() == Method::CONNECT {
            return closing_error(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not served", h1);
        }
        if let Err(why) = host::check(&mut req) {
            tracing::debug!(peer = %peer.addr, %why, "request refused");
            return closing_error(StatusCode::BAD_REQUEST, &why.to_string(), h1);
        }
        // One load per request: routed by the old table or the new one, never a mix.
        let snap = self.live.load();
        match self.forward(&snap, req, peer).await {
            Ok(resp) => resp,
            Err(ProxyError::ClientBody(e)) => {
                tracing::debug!(peer = %peer.addr, error = %e, "request body failed");
                client_body_answer(e.fault(), h1)
            }
            Err(e) => rescue(&e),
        }
    }

    async fn forward(
        &self,
        snap: &Arc<Snapshot>,
        mut req: Request<Incoming>,
        peer: Peer,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if let Some(m) = &snap.maintenance {
            return Ok(maintenance(m, accepts_json(req.headers())));
        }
        let ri = route::find(snap, &req).ok_or(ProxyError::NoRoute)?;
        let route = &snap.routes[ri];
        // Until an outcome is set, the client is the one who left.
        let mut ended = Ended {
            route,
            start: Instant::now(),
            outcome: Outcome::ClientAbort,
        };
        // A tester's request naming an allowed version goes there (and is
        // counted apart); every other request is picked by weight.
        let (first, count) = pick::forced(route, req.headers())
            .unwrap_or_else(|| (pick::pick(route, req.headers()), Count::Own));

        let upgrade = headers::is_upgrade(req.headers(), |p| self.limits.allows_upgrade(p));
        let asked = upgrade
            .then(|| req.headers().get(header::UPGRADE).cloned())
            .flatten();
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let body = ClientBody::new(body, self.body_timeout);
        let h1 = parts.version < Version::HTTP_2;
        let wants_json = accepts_json(&parts.headers);
        let trusted = self.trusted.iter().any(|c| c.contains(peer.addr.ip()));
        let fwd = prepare(&mut parts, peer, upgrade, trusted, self.sample);
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        // A copy for `[routes.mirror]` needs the body whole, as a
        // fallback does: both keep it, up to the larger of their limits. A
        // mirror copies only bodies whose length is known up front, so
        // keeping one never holds a streaming client (gRPC) waiting.
        let mirror = crate::mirror::chosen(route, first, count, upgrade, &parts.headers, &body);
        let replay_limit = route
            .fallback
            .as_ref()
            .filter(|f| {
                !upgrade
                    && route.next[first].is_some()
                    && replayable(&parts.method, f.retry_non_idempotent)
            })
            .map(|f| f.max_replay_body);
        let (kept, stream) = match replay_limit.max(mirror.map(|m| m.max_body)) {
            Some(limit) => {
                // Boxed: only fallback routes keep bodies, and the request
                // future (moved by value into hyper) stays smaller for all.
                match Box::pin(keep(body, limit)).await {
                    Ok(Kept::Whole(b)) => (Some(b), None),
                    Ok(Kept::TooLarge(prefix, rest)) => {
                        (None, Some(UpstreamBody::Prefixed(Some(prefix), rest)))
                    }
                    Err(e) => {
                        ended.outcome = client_outcome(e.fault());
                        return Err(ProxyError::ClientBody(e));
                    }
                }
            }
            None => (None, Some(UpstreamBody::Stream(body))),
        };
        let client = self.upstreams.get();
        let copy = match (mirror, &kept) {
            (Some(_), Some(bytes)) => {
                crate::mirror::spawn(snap.clone(), ri, client, &parts, &pq, bytes, &fwd)
            }
            (Some(m), None) => {
                m.log.skipped();
                None
            }
            _ => None,
        };
        // Only the fallback's own rule makes a body replayable: bytes kept
        // for the mirror alone are sent once.
        let (replay, stream) = match (kept, replay_limit) {
            (Some(b), Some(limit)) if b.len() as u64 <= limit => (Some(b), stream),
            (Some(b), _) => (None, Some(UpstreamBody::full(b))),
            (None, _) => (None, stream),
        };
        // What the access log says of the request, kept before `fwd` moves.
        let trace = self.access.is_some().then(|| {
            Box::new(crate::access::Received {
                trace_id: fwd.trace_id,
                span: fwd.span,
                request_id: fwd.request_id.clone(),
                at: Instant::now(),
            })
        });
        let mut stream = stream;
        let upload = stream.as_mut().and_then(UpstreamBody::track);
        let out = Outgoing {
            parts,
            pq,
            replay,
            stream,
            upload,
            upgrade: asked,
            fwd,
            count,
        };

        let (resp, outcome) = match walk(client, route, first, out).await {
            Walk::Answered {
                mut resp,
                version,
                path,
            } => {
                let v = &route.versions[version];
                // serin answers in the client's version whatever the
                // version's was: an HTTP/1.0 upstream must not turn a
                // keep-alive client connection into one-request ones.
                *resp.version_mut() = if h1 {
                    Version::HTTP_11
                } else {
                    Version::HTTP_2
                };
                let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
                if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
                    if let Some(conn) = resp.body_mut().take_upgrade() {
                        tunnel(client_upgrade, conn);
                    }
                }
                headers::strip_hop_by_hop(resp.headers_mut(), switching);
                if let Some(copy) = copy {
                    copy.answered(&mut resp);
                }
                if let Some(t) = trace {
                    let served = t.served(&route.name, Some(&v.name), !path.is_empty());
                    resp.extensions_mut().insert(served);
                }
                if route.response_headers {
                    let h = resp.headers_mut();
                    h.insert(&X_SERIN_VERSION, v.header.clone());
                    if !path.is_empty() {
                        h.insert(&X_SERIN_FALLBACK, fallback_path(route, &path, version));
                    }
                }
                let outcome = if resp.status().is_server_error() {
                    Outcome::Status5xx
                } else {
                    Outcome::Success
                };
                (resp.map(Either::Left), outcome)
            }
            // The client failed, not the route: its own outcome.
            Walk::ClientBody(fault) => {
                ended.outcome = client_outcome(fault);
                return Ok(client_body_answer(fault, h1));
            }
            Walk::Exhausted { last, chain } => {
                let outcome = last.map_or(Outcome::Connect, |(_, o)| o);
                let mut resp = match (route.fallback.as_ref(), chain) {
                    (Some(f), true) => final_answer(f, wants_json),
                    _ => rescue(&exhausted_error(route, last)),
                };
                if let Some(t) = trace {
                    resp.extensions_mut()
                        .insert(t.served(&route.name, None, chain));
                }
                (resp, outcome)
            }
        };
        ended.outcome = outcome;
        Ok(resp)
    }
}

/// Records a client request's end-to-end outcome when its handling ends,
/// however it ends: a future dropped before an outcome was set is a client
/// that left (hyper drops it when the connection closes or the HTTP/2
/// stream is reset).
struct Ended<'a> {
    route: &'a RouteSnap,
    start: Instant,
    outcome: Outcome,
}

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.route.stats.record(self.outcome, self.start.elapsed());
    }
}

/// The route outcome of a client body that failed.
fn client_outcome(fault: BodyFault) -> Outcome {
    match fault {
        BodyFault::Stalled => Outcome::ClientTimeout,
        BodyFault::Broken => Outcome::ClientAbort,
    }
}

/// Whether a request with `method` may be sent to a second version.
fn replayable(method: &Method, non_idempotent: bool) -> bool {
    non_idempotent || method.is_idempotent()
}

/// 408 for a stalled body, 400 for a broken one; an HTTP/1.1 connection
/// closes: what is left of the body cannot be trusted to frame a next request.
fn client_body_answer(fault: BodyFault, h1: bool) -> Response<ProxyBody> {
    match fault {
        BodyFault::Stalled => {
            closing_error(StatusCode::REQUEST_TIMEOUT, "request body timed out", h1)
        }
        BodyFault::Broken => closing_error(
            StatusCode::BAD_REQUEST,
            "request body could not be read",
            h1,
        ),
    }
}

/// Rewrites the client's request head into the head sent upstream, in place.
/// `trusted`: the peer is a trusted proxy, so its `X-Forwarded-For` is kept.
/// Returns the forwarding headers the upstream encoder writes in place of
/// the client's.
fn prepare(
    parts: &mut http::request::Parts,
    peer: Peer,
    upgrade: bool,
    trusted: bool,
    sample: Option<f64>,
) -> headers::Forwarding {
    let h2 = parts.version == Version::HTTP_2;
    // HTTP/2 carries the host in `:authority`; HTTP/1.1 upstreams need `Host`.
    let host = match parts.headers.get(header::HOST) {
        Some(h) => Some(h.clone()),
        None => parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    };
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    headers::forwarded(&parts.headers, peer, host, h2, trusted, sample)
}

fn accepts_json(h: &http::HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `v2>v1.5>v1`: every version the request went through. Made only when a
/// fallback happened.
fn fallback_path(route: &RouteSnap, path: &[usize], answered: usize) -> HeaderValue {
    let names: Vec<&str> = path
        .iter()
        .chain(std::iter::once(&answered))
        .map(|&i| &*route.versions[i].name)
        .collect();
    HeaderValue::from_str(&names.join(">")).unwrap_or_else(|_| HeaderValue::from_static("?"))
}

/// The route's `final_status` / `final_body`, JSON when the client asks for it.
fn final_answer(f: &serin_control::FallbackSnap, json: bool) -> Response<ProxyBody> {
    if json {
        answer(f.final_status, f.final_json.clone(), "application/json")
    } else {
        answer(
            f.final_status,
            f.final_text.clone(),
            "text/plain; charset=utf-8",
        )
    }
}

/// The maintenance page: 503, HTML or JSON by `Accept`.
fn maintenance(m: &serin_control::Maintenance, json: bool) -> Response<ProxyBody> {
    let mut resp = if json {
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            m.json.clone(),
            "application/json",
        )
    } else {
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            m.html.clone(),
            "text/html; charset=utf-8",
        )
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
    resp
}

/// The error for a walk that ended without an answer and without a chain.
fn exhausted_error(route: &RouteSnap, last: Option<(usize, Outcome)>) -> ProxyError {
    match last {
        Some((i, Outcome::Timeout)) => ProxyError::VersionTimeout {
            version: route.versions[i].name.clone(),
            after: route.versions[i].timeout,
        },
        Some((i, _)) => ProxyError::Unreachable {
            version: route.versions[i].name.clone(),
        },
        None => ProxyError::BreakerOpen,
    }
}

/// Joins both sides of a `101 Switching Protocols` and copies bytes both
/// ways until either side closes.
/// `upstream`'s bytes read past its `101` head go to the client first.
fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: crate::upstream::Conn) {
    tokio::spawn(async move {
        let Ok(client) = client.await else {
            return;
        };
        let mut client = TokioIo::new(client);
        let mut upstream = upstream;
        if !upstream.buf.is_empty() {
            use tokio::io::AsyncWriteExt;
            if client.write_all(&upstream.buf).await.is_err() {
                return;
            }
            upstream.buf.clear();
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream.io).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// hyper moves the request future by value (into its connection's
    /// in-flight slot): every byte of it is copied per request, so rare
    /// paths are boxed to keep it small. This keeps it so.
    #[tokio::test]
    async fn the_request_future_stays_small() {
        let config = serin_config::parse(
            "[[routes]]\nname = \"a\"\n[[routes.versions]]\nname = \"v1\"\n\
             url = \"http://127.0.0.1:9\"\nweight = 1\n",
            "t.toml",
        )
        .unwrap();
        let shared = serin_control::Shared::default();
        let live = Arc::new(Live::new(config, "r1", shared).unwrap());
        let proxy = Arc::new(Proxy::new(live, &Limits::default()));
        let size = Arc::new(AtomicUsize::new(0));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = size.clone();
        tokio::spawn(async move {
            let (s, peer) = l.accept().await.unwrap();
            let svc = hyper::service::service_fn(move |req| {
                let fut = proxy.handle(
                    req,
                    Peer {
                        addr: peer,
                        tls: false,
                    },
                );
                seen.store(std::mem::size_of_val(&fut), Ordering::Relaxed);
                drop(fut);
                async {
                    Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Empty::<
                        bytes::Bytes,
                    >::new()))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::get("/")
            .header("host", "a")
            .body(http_body_util::Empty::<bytes::Bytes>::new());
        tx.send_request(req.unwrap()).await.unwrap();
        let size = size.load(Ordering::Relaxed);
        eprintln!("Proxy::handle future: {size} bytes");

        // 5.4 KiB when this was written (debug and release alike); it was
        // 9 KiB before `Clock::timed` became a hand-written future. 6.1 KiB
        // since trace context: `Forwarding` carries the trace (+56 bytes),
        // and the generator keeps it in more than one await slot.
        assert!(
            size > 0 && size <= 6 * 1024 + 256,
            "Proxy::handle's future is {size} bytes"
        );
    }
}
