//! The attempt loop: start at the picked version and, when an attempt
//! fails in a configured way, walk right along the chain — each attempt
//! with its version's own timeout, an open breaker skipped at once, the
//! whole walk bounded by the route's deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Uri, Version};
use serin_control::breaker::Admit;
use serin_control::drill::Injection;
use serin_control::telemetry::Outcome;
use serin_control::{FallbackSnap, RouteSnap, VersionSnap};

use crate::body::UpstreamBody;
use crate::classify::{classify, Attempted, BodyFault};
use crate::upstream::UpstreamClient;

/// How a request ended after its walk.
#[derive(Debug)]
pub(crate) enum Walk {
    /// A version answered; `path` lists the versions tried before it.
    Answered {
        resp: http::Response<hyper::body::Incoming>,
        version: usize,
        path: Vec<usize>,
    },
    /// Nothing answered: the last failure, and whether the chain was in play
    /// (then the client gets the route's final answer).
    Exhausted {
        last: Option<(usize, Outcome)>,
        chain: bool,
    },
    /// The client's request body failed (stalled past `body_read_timeout`,
    /// reset, malformed) while it streamed to a version.
    ClientBody(BodyFault),
}

/// The request as kept for (re)sending.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) parts: Parts,
    pub(crate) pq: PathAndQuery,
    /// `Some` when the body is kept and attempts may be replayed.
    pub(crate) replay: Option<Bytes>,
    /// The streamed body, taken by the first attempt that sends.
    pub(crate) stream: Option<UpstreamBody>,
}

/// An attempt that starts with less than this left of the deadline is
/// skipped: it could not get a useful answer in time.
const MIN_USEFUL: Duration = Duration::from_millis(100);

/// Walks the chain from `first`.
pub(crate) async fn walk(
    client: &UpstreamClient,
    route: &RouteSnap,
    first: usize,
    mut out: Outgoing,
) -> Walk {
    let fb = route.fallback.as_ref();
    let start = Instant::now();
    let deadline = fb.and_then(|f| f.deadline).map(|d| start + d);
    let mut path = Vec::new();
    let mut at = Some(first);
    let mut last = None;
    while let Some(i) = at {
        let v = &route.versions[i];
        // Only a kept body can go to a second version; a streamed one can
        // still skip versions it was never sent to.
        let can_go_on = route.next[i].is_some() && fb.is_some();
        // A version known to be down is skipped on the way down the chain
        // (the pick already avoided it, unless every version is down). The
        // deadline is checked before the breaker so a skip never takes a
        // half-open probe permit.
        let timeout = remaining(deadline, v.timeout);
        let admit = match timeout {
            Some(_) if i == first || !v.health.is_unhealthy() => v.breaker.admit(),
            _ => Admit::No,
        };
        let timeout = match timeout {
            Some(t) if admit != Admit::No => t,
            _ => {
                if let (Some(f), true) = (fb, can_go_on) {
                    note_fallback(route, i, f);
                }
                path.push(i);
                at = route.next[i].filter(|_| can_go_on);
                continue;
            }
        };
        // A probe whose request is dropped (client gone, drain over) still
        // reports: as a failure, so the breaker reopens instead of waiting
        // for a result that never comes.
        let probe = (admit == Admit::Probe).then(|| ProbeGuard {
            breaker: &v.breaker,
            done: false,
        });
        let Some(body) = out.body() else { break };
        let req = out.request(body);
        let sent = Instant::now();
        let attempted = if v.drill.active() {
            drilled(client, v, req, timeout).await
        } else {
            classify(
                tokio::time::timeout(timeout, client.request(&v.scheme, &v.authority, req)).await,
            )
        };
        let outcome = match attempted.outcome() {
            Ok(o) => o,
            // The client's body failed on the way: no version is to blame
            // (nothing recorded; a probe's guard still reports, so the
            // breaker is never left waiting) and no other version could get
            // the same bytes.
            Err(fault) => return Walk::ClientBody(fault),
        };
        v.stats.record(outcome, sent.elapsed());
        if let Some(mut p) = probe {
            p.done = true;
            v.breaker.probe_result(!outcome.is_error());
        }
        // A configured failure of a chained version goes on down the chain,
        // or, at its end, to the route's final answer.
        let chained = route.in_chain[i] && (out.replay.is_some() || !can_go_on);
        let falls = fb.is_some_and(|f| falls_back(f, outcome)) && chained;
        match attempted {
            Attempted::Answered(resp, _) if !falls => {
                return Walk::Answered {
                    resp,
                    version: i,
                    path,
                };
            }
            Attempted::Failed(o, e) if !falls => {
                if let Some(e) = e {
                    tracing::debug!(version = %v.name, error = %e, "attempt failed");
                }
                last = Some((i, o));
                break;
            }
            _ => {
                last = Some((i, outcome));
                path.push(i);
                if !can_go_on {
                    break;
                }
                if let Some(f) = fb {
                    note_fallback(route, i, f);
                }
                at = route.next[i];
            }
        }
    }
    Walk::Exhausted {
        last,
        chain: fb.is_some() && !path.is_empty(),
    }
}

/// Reports a probe that ended without a result as failed.
struct ProbeGuard<'a> {
    breaker: &'a serin_control::breaker::Breaker,
    done: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.probe_result(false);
        }
    }
}

/// An attempt under a drill: the fault decides before the version is asked.
async fn drilled(
    client: &UpstreamClient,
    v: &VersionSnap,
    req: Request<UpstreamBody>,
    timeout: Duration,
) -> Attempted {
    match v.drill.inject() {
        Injection::Error => Attempted::Failed(Outcome::Status5xx, None),
        Injection::Outage => Attempted::Failed(Outcome::Connect, None),
        Injection::Delay(d) => {
            let sent = async {
                tokio::time::sleep(d).await;
                client.request(&v.scheme, &v.authority, req).await
            };
            classify(tokio::time::timeout(timeout, sent).await)
        }
        Injection::None => classify(
            tokio::time::timeout(timeout, client.request(&v.scheme, &v.authority, req)).await,
        ),
    }
}

/// The timeout of an attempt under the deadline, `None` when too little is left.
fn remaining(deadline: Option<Instant>, timeout: Duration) -> Option<Duration> {
    let Some(deadline) = deadline else {
        return Some(timeout);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    (left >= MIN_USEFUL.min(timeout)).then(|| left.min(timeout))
}

/// Whether `outcome` is one of the route's `on` failures.
fn falls_back(f: &FallbackSnap, outcome: Outcome) -> bool {
    match outcome {
        Outcome::Success => false,
        Outcome::Status5xx => f.on.status_5xx,
        Outcome::Connect => f.on.connect,
        Outcome::Timeout => f.on.timeout,
    }
}

fn note_fallback(route: &RouteSnap, from: usize, _f: &FallbackSnap) {
    let v = &route.versions[from];
    v.stats.record_fallback();
    if let Some(c) = &v.fallback_counter {
        c.increment(1);
    }
}

// === impl Outgoing ===

impl Outgoing {
    /// The body for the next attempt: the kept bytes again, or the stream once.
    fn body(&mut self) -> Option<UpstreamBody> {
        match &self.replay {
            Some(b) => Some(UpstreamBody::full(b.clone())),
            None => self.stream.take(),
        }
    }

    /// The request for the next attempt. Headers are cloned only when the request
    /// may be sent again; a single attempt moves them.
    fn request(&mut self, body: UpstreamBody) -> Request<UpstreamBody> {
        let mut req = Request::new(body);
        *req.method_mut() = self.parts.method.clone();
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = if self.replay.is_some() {
            self.parts.headers.clone()
        } else {
            std::mem::take(&mut self.parts.headers)
        };
        // Origin form: the connection already goes to the version.
        *req.uri_mut() = Uri::from(self.pq.clone());
        req
    }
}
