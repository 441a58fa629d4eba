//! `[routes.mirror]` on the data plane: a share of a route's requests is
//! copied to one version by a task of its own, and that version's answer
//! is compared with the one the client got.
//!
//! The live request never waits for its copy and never fails with it: the
//! copy is spawned before the live attempt, takes a place among `queue`
//! copies in flight or is shed, and the live side only hands over what it
//! answered — status and compared headers when its head is ready, and, to
//! compare bodies, a hash of the body taken as it streams to the client
//! ([`Tee`], fed by the response body itself). The copy's outcome, latency
//! and quality signals go to the version's `mirrored` stats, its
//! comparison too; a mismatch is kept as a sample (`GET
//! /api/v1/routes/{route}/mirror`).
//!
//! A copy carries the live request's method, path, headers (with
//! `x-serin-mirror: 1` added) and body, which must be whole in memory: a
//! request is copied only when its body is at most `max_body` (the live
//! request then goes out from the same bytes, as a fallback route's does).

use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use serin_control::Outcome;
use serin_control::{Answer, InFlight, Mismatch};
use serin_control::{MirrorSnap, RouteSnap, Snapshot};
use tokio::sync::oneshot;

use crate::body::UpstreamBody;
use crate::fallback::Count;
use crate::headers::Forwarding;
use crate::upstream::{RespBody, Target, UpstreamClient};

static X_SERIN_MIRROR: HeaderName = HeaderName::from_static("x-serin-mirror");

/// How long a copy waits for the live answer to end (a live body may
/// stream for a while) before giving up on comparing.
const LIVE_WAIT: Duration = Duration::from_secs(60);

/// What the client got, for the copy to compare against.
#[derive(Debug, Default)]
struct Live {
    status: u16,
    headers: Vec<Option<HeaderValue>>,
    /// (bytes, hash) when the body is compared and arrived whole.
    body: Option<(u64, u64)>,
}

/// The live side of a copy: hand it the answer the client gets.
#[derive(Debug)]
pub(crate) struct LiveSide {
    tx: oneshot::Sender<Live>,
    compare_body: bool,
    headers: Vec<HeaderName>,
}

/// A live body's hash, taken as the client reads it; sent when the body
/// ends (or, incomplete, when it is dropped: then bodies are not compared).
#[derive(Debug)]
pub(crate) struct Tee {
    hasher: DefaultHasher,
    bytes: u64,
    complete: bool,
    live: Option<(Live, oneshot::Sender<Live>)>,
}

/// Whether this request is copied: the route mirrors, the request is its
/// users' (not forced), not an upgrade, not bound for the mirrored version
/// itself, not gRPC (a stream of messages), its body's length is known up
/// front (no body, or a `Content-Length`: keeping it whole never holds a
/// client that waits for an answer before it sends more), and it falls
/// within the share.
pub(crate) fn chosen<'a>(
    route: &'a RouteSnap,
    first: usize,
    count: Count,
    upgrade: bool,
    headers: &HeaderMap,
    body: &impl http_body::Body,
) -> Option<&'a MirrorSnap> {
    let m = route.mirror.as_ref()?;
    if count != Count::Own || upgrade || first == m.to || fastrand::u32(..) >= m.below {
        return None;
    }
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let size = if body.is_end_stream() {
        Some(0)
    } else {
        body.size_hint().exact()
    };
    if grpc || size.is_none_or(|n| n > m.max_body) {
        m.log.skipped();
        return None;
    }
    Some(m)
}

/// Spawns the copy of a request to route `route` of `snap` whose body is
/// `body`; `None` when it is too large or the queue is full (counted
/// either way).
pub(crate) fn spawn(
    snap: Arc<Snapshot>,
    route: usize,
    client: &UpstreamClient,
    parts: &http::request::Parts,
    pq: &PathAndQuery,
    body: &Bytes,
    fwd: &Forwarding,
) -> Option<LiveSide> {
    let m = snap.routes[route].mirror.as_ref()?;
    if body.len() as u64 > m.max_body {
        m.log.skipped();
        return None;
    }
    let slot = m.log.start(m.queue)?;
    let (tx, rx) = oneshot::channel();
    let live = LiveSide {
        tx,
        compare_body: m.compare.body,
        headers: m.compare.headers.clone(),
    };
    let mut req = Request::new(UpstreamBody::full(body.clone()));
    *req.method_mut() = parts.method.clone();
    *req.version_mut() = Version::HTTP_11;
    *req.uri_mut() = Uri::from(pq.clone());
    *req.headers_mut() = parts.headers.clone();
    req.headers_mut()
        .insert(&X_SERIN_MIRROR, HeaderValue::from_static("1"));
    let task = Shadow {
        snap,
        route,
        client: client.clone(),
        fwd: fwd.clone(),
        _slot: slot,
    };
    tokio::spawn(task.run(req, rx));
    Some(live)
}

// === impl LiveSide ===

impl LiveSide {
    /// The client's answer is `resp`: its head now, its body as it streams.
    pub(crate) fn answered(self, resp: &mut Response<RespBody>) {
        let live = Live {
            status: resp.status().as_u16(),
            headers: self
                .headers
                .iter()
                .map(|h| resp.headers().get(h).cloned())
                .collect(),
            body: None,
        };
        if self.compare_body {
            resp.body_mut().tee(Box::new(Tee {
                hasher: DefaultHasher::new(),
                bytes: 0,
                complete: false,
                live: Some((live, self.tx)),
            }));
        } else {
            let _ = self.tx.send(live);
        }
    }
}

// === impl Tee ===

impl Tee {
    pub(crate) fn data(&mut self, bytes: &[u8]) {
        self.hasher.write(bytes);
        self.bytes += bytes.len() as u64;
    }

    /// The body ended cleanly.
    pub(crate) fn end(&mut self) {
        self.complete = true;
        self.send();
    }

    fn send(&mut self) {
        if let Some((mut live, tx)) = self.live.take() {
            live.body = self.complete.then(|| (self.bytes, self.hasher.finish()));
            let _ = tx.send(live);
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        self.send();
    }
}

/// One copy on its way.
struct Shadow {
    snap: Arc<Snapshot>,
    route: usize,
    client: UpstreamClient,
    fwd: Forwarding,
    /// Holds the copy's place in the queue until it is done.
    _slot: InFlight,
}

impl Shadow {
    async fn run(self, req: Request<UpstreamBody>, live: oneshot::Receiver<Live>) {
        let route = &self.snap.routes[self.route];
        let Some(m) = route.mirror.as_ref() else {
            return;
        };
        let v = &route.versions[m.to];
        let Some(stats) = v.mirrored.as_ref() else {
            return;
        };
        let method = req.method().to_string();
        let path = req.uri().to_string();
        let sent = tokio::time::Instant::now();
        let attempt = self.client.request(Target::of(v), req, Some(&self.fwd));
        let (outcome, resp) = match tokio::time::timeout(v.timeout, attempt).await {
            Ok(Ok(resp)) if resp.status().is_server_error() => (Outcome::Status5xx, Some(resp)),
            Ok(Ok(resp)) => (Outcome::Success, Some(resp)),
            Ok(Err(_)) => (Outcome::Connect, None),
            Err(_) => (Outcome::Timeout, None),
        };
        let took = sent.elapsed();
        let mut mine = Answer::default();
        let mut hash = None;
        if let Some(mut resp) = resp {
            // Compared as the client would have seen them: without
            // hop-by-hop headers and the signals serin hides.
            let signals = crate::fallback::take_signals(route, resp.headers_mut());
            crate::headers::strip_hop_by_hop(resp.headers_mut(), false);
            match signals {
                Some(s) => stats.record_signals(outcome, took, &s),
                None => stats.record(outcome, took),
            }
            mine.status = Some(resp.status().as_u16());
            mine.headers = shown(&m.compare.headers, resp.headers());
            let (_, body) = resp.into_parts();
            match tokio::time::timeout(v.timeout, hashed(body)).await {
                Ok(Some((n, h))) => {
                    mine.body_bytes = n;
                    hash = Some(h);
                }
                // A copy's body that broke off or took too long is not an
                // answer to compare (as a client's that did not arrive whole).
                _ if m.compare.body => return,
                _ => {}
            }
        } else {
            stats.record(outcome, took);
        }
        let Ok(Ok(theirs)) = tokio::time::timeout(LIVE_WAIT, live).await else {
            return;
        };
        if m.compare.body && theirs.body.is_none() {
            return; // the client's body did not arrive whole: nothing to compare
        }
        let mut differs = Vec::new();
        let answered = mine.status.is_some();
        if m.compare.status && mine.status != Some(theirs.status) {
            differs.push("status".to_owned());
        }
        if m.compare.body && (!answered || hash != theirs.body.map(|(_, h)| h)) {
            differs.push("body".to_owned());
        }
        for (name, value) in m.compare.headers.iter().zip(&theirs.headers) {
            let mirrored = v_of(&mine.headers, name);
            if !answered || mirrored != value.as_ref().and_then(|v| v.to_str().ok()) {
                differs.push(format!("header:{name}"));
            }
        }
        stats.record_comparison(differs.is_empty());
        if differs.is_empty() {
            return;
        }
        mine.body_hash = hash.filter(|_| m.compare.body).map(hex);
        let (live_bytes, live_hash) = theirs.body.map_or((0, None), |(n, h)| (n, Some(hex(h))));
        let theirs_headers = m
            .compare
            .headers
            .iter()
            .zip(&theirs.headers)
            .filter_map(|(n, v)| Some((n.to_string(), v.as_ref()?.to_str().ok()?.to_owned())))
            .collect();
        let sample = Mismatch {
            time: serin_control::mirror_stamp(),
            method,
            path,
            differs,
            live: Answer {
                status: Some(theirs.status),
                body_bytes: live_bytes,
                body_hash: live_hash,
                headers: theirs_headers,
            },
            mirror: mine,
        };
        m.log.mismatch(&route.name, &v.name, sample);
    }
}

/// The named headers of `headers` that are present, as text.
fn shown(names: &[HeaderName], headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|n| Some((n.to_string(), headers.get(n)?.to_str().ok()?.to_owned())))
        .collect()
}

fn v_of<'a>(
    shown: &'a std::collections::BTreeMap<String, String>,
    name: &HeaderName,
) -> Option<&'a str> {
    shown.get(name.as_str()).map(String::as_str)
}

/// Reads a body to its end: (bytes, hash); `None` if it broke off.
async fn hashed(mut body: RespBody) -> Option<(u64, u64)> {
    let mut hasher = DefaultHasher::new();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.ok()?.data_ref() {
            hasher.write(data);
            n += data.len() as u64;
        }
    }
    Some((n, hasher.finish()))
}

fn hex(h: u64) -> String {
    format!("{h:016x}")
}
