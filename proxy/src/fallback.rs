//! The attempt loop: start at the picked version and, when an attempt
//! fails in a configured way, walk right along the chain — each attempt
//! with its version's own timeout, an open breaker skipped at once, the
//! whole walk bounded by the route's deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Uri, Version};
use serin_control::Admit;
use serin_control::Injection;
use serin_control::{FallbackSnap, RouteSnap, VersionSnap};
use serin_control::{Outcome, SignalValues};

use crate::body::{Phase, Upload, UpstreamBody};
use crate::classify::{classify, Attempted, BodyFault, TimedOut};
use crate::upstream::{Target, UpstreamClient};

/// How a request ended after its walk.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // reason: `Answered` is the common end; boxing it would allocate per request
pub(crate) enum Walk {
    /// A version answered; `path` lists the versions tried before it.
    Answered {
        resp: http::Response<crate::upstream::RespBody>,
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
    /// How far the streamed body has gone (`None`: kept, or no body).
    pub(crate) upload: Option<Arc<Upload>>,
    /// The `Upgrade` the request asks for, when it is an allowed upgrade.
    pub(crate) upgrade: Option<http::HeaderValue>,
    /// The forwarding headers written in place of the client's.
    pub(crate) fwd: crate::headers::Forwarding,
    /// Where this request's attempts are counted.
    pub(crate) count: Count,
}

/// Where a request's attempts are counted: in each version's own stats
/// (what rules and breakers judge), or, for a request that forced its
/// version (`[routes.override]`), apart under `forced` — and in both when
/// the route's `rules_include_forced` says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Own,
    Forced,
    Both,
}

// === impl Count ===

impl Count {
    /// The stats that judge this request's attempts on `v`: the version's
    /// own, or the forced ones when it counts apart only.
    fn primary(self, v: &VersionSnap) -> &Arc<serin_control::VersionStats> {
        match (self, v.forced.as_ref()) {
            (Self::Forced, Some(forced)) => forced,
            _ => &v.stats,
        }
    }

    /// Runs `f` on every stats this request's attempts on `v` count in.
    #[inline]
    fn each(self, v: &VersionSnap, f: impl Fn(&Arc<serin_control::VersionStats>)) {
        match (self, v.forced.as_ref()) {
            (Self::Own, _) | (_, None) => f(&v.stats),
            (Self::Forced, Some(forced)) => f(forced),
            (Self::Both, Some(forced)) => {
                f(forced);
                f(&v.stats);
            }
        }
    }
}

/// A wait for the client's bytes at least this long is a stall, not a
/// pause between segments: a version that hangs up on it gave up on the
/// client.
const CLIENT_PAUSE: Duration = Duration::from_millis(100);

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
        let useful = worth_trying(deadline, v.timeout);
        let admit = if useful && (i == first || !v.health.is_unhealthy()) {
            v.breaker.admit()
        } else {
            Admit::No
        };
        match admit {
            Admit::Yes | Admit::Probe => {}
            Admit::No => {
                if let (Some(f), true) = (fb, can_go_on) {
                    note_fallback(route, i, f, out.count);
                }
                path.push(i);
                at = route.next[i].filter(|_| can_go_on);
                continue;
            }
        }
        // A probe whose request ends with nothing said about the version
        // (the client left or its body failed, the drain ended) hands its
        // permit back: the breaker never waits for a result that never
        // comes, and a client cannot keep it open by abandoning probes.
        let probe = (admit == Admit::Probe).then(|| ProbeGuard {
            breaker: &v.breaker,
            period: v.breaker.half_open_period(),
            done: false,
        });
        let Some(body) = out.body() else { break };
        let req = out.request(body);
        let sent = tokio::time::Instant::now();
        // The deadline caps the clock itself: a progressing upload may take
        // the version's whole `timeout` after it, never past the deadline.
        let clock = Clock {
            timeout: v.timeout,
            deadline: deadline.map(tokio::time::Instant::from_std),
            upload: out.upload.as_deref(),
        };
        let attempted = if v.drill.active() {
            // Boxed: a drill is rare, and its future holds a second request
            // future; inline it would double the size of every request's.
            Box::pin(drilled(
                client,
                v,
                req,
                clock,
                out.upgrade.as_ref(),
                &out.fwd,
            ))
            .await
        } else {
            let attempt = clock.timed(client.request(Target::of(v), req, Some(&out.fwd)));
            classify(attempt.await, out.upgrade.as_ref())
        };
        let outcome = match attempted.outcome() {
            // A version that hung up (or the route's deadline that ran
            // out) while serin had been waiting for the client's next bytes
            // gave up on the client: its own body-read timeout, the
            // client's stall. An answer, even a 5xx, is the version's.
            Ok(Outcome::Connect | Outcome::Timeout)
                if out
                    .upload
                    .as_deref()
                    .is_some_and(|u| u.waited_for_client(CLIENT_PAUSE)) =>
            {
                return Walk::ClientBody(BodyFault::Stalled);
            }
            Ok(o) => o,
            // The client's body failed on the way: no version is to blame
            // (nothing recorded; a probe's guard hands its permit back, so
            // the breaker is never left waiting) and no other version could
            // get the same bytes.
            Err(fault) => return Walk::ClientBody(fault),
        };
        // Request sent → response headers: an upload's own time is the
        // client's, never the version's latency.
        let took = clock.waiting_since(sent).elapsed();
        let mut attempted = attempted;
        let signals = match &mut attempted {
            Attempted::Answered(resp, _) => take_signals(route, resp.headers_mut()),
            _ => None,
        };
        out.count.each(v, |s| match &signals {
            Some(values) => s.record_signals(outcome, took, values),
            None => s.record(outcome, took),
        });
        // A forced request says nothing to the breaker: a tester hitting a
        // broken build must not hold its breaker open, nor a lucky one close
        // what users' traffic opened (its permit goes back unused).
        if let (Some(mut p), false) = (probe, out.count == Count::Forced) {
            p.done = true;
            v.breaker.probe_result(!outcome.is_error());
        }
        // A configured failure of a chained version goes on down the chain,
        // or, at its end, to the route's final answer.
        let chained = route.in_chain[i] && (out.replay.is_some() || !can_go_on);
        let falls = fb.is_some_and(|f| falls_back(f, outcome)) && chained;
        match attempted {
            Attempted::Answered(mut resp, _) if !falls => {
                if resp.body().is_h2() {
                    grpc_errors(&mut resp, v, out.count);
                }
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
                    note_fallback(route, i, f, out.count);
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

/// What an answer reported of the route's quality signals
/// (`[[routes.signals]]`), their headers removed but for those `keep`
/// names (the client never sees them); `None` for a route without any.
pub(crate) fn take_signals(route: &RouteSnap, headers: &mut HeaderMap) -> Option<SignalValues> {
    if route.signals.is_empty() {
        return None;
    }
    let mut values = SignalValues::default();
    for (slot, s) in values.0.iter_mut().zip(route.signals.iter()) {
        *slot = headers
            .get(&s.header)
            .and_then(|v| SignalValues::parse(v.as_bytes()));
        if !s.keep {
            headers.remove(&s.header);
        }
    }
    Some(values)
}

/// Hands back the permit of a probe that ended without a result.
struct ProbeGuard<'a> {
    breaker: &'a serin_control::Breaker,
    period: u32,
    done: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.probe_abandoned(self.period);
        }
    }
}

/// The clock of one attempt: the version's `timeout` (cut to what the
/// route's deadline leaves) for its response headers, counted from the
/// moment the request is wholly sent. While a streamed body is still
/// going, the wait is the client's when it owes bytes (its own clock,
/// `body_read_timeout`, cuts a stalled upload with 408) and the version's
/// when it stops taking them (then `timeout` runs from its last pull).
/// The route's `deadline`, when set, bounds the whole wait, upload
/// included: reached while serin waits for the client, it is the client's
/// stall (408); otherwise the version's timeout.
#[derive(Debug, Clone, Copy)]
struct Clock<'a> {
    timeout: Duration,
    deadline: Option<tokio::time::Instant>,
    upload: Option<&'a Upload>,
}

// === impl Clock ===

impl<'a> Clock<'a> {
    /// When the version's part of the wait began: `attempt`, or later when
    /// the body was still going then (its end, or the version's last pull
    /// for an answer that came before the end).
    fn waiting_since(&self, attempt: tokio::time::Instant) -> tokio::time::Instant {
        match self.upload.map(Upload::phase) {
            Some(Phase::Sent(at) | Phase::Sending { pulled: at, .. }) => at.max(attempt),
            None => attempt,
        }
    }

    /// Runs `attempt` under this clock.
    ///
    /// A future by hand rather than an `async fn`: an `async fn` keeps its
    /// argument and its pinned copy side by side, doubling the attempt's
    /// size inside every request's future (which hyper moves by value).
    fn timed<F: Future>(self, attempt: F) -> Timed<'a, F> {
        let start = tokio::time::Instant::now();
        Timed {
            attempt,
            sleep: tokio::time::sleep_until(self.cap(start + self.timeout)),
            clock: self,
            start,
        }
    }

    fn cap(&self, at: tokio::time::Instant) -> tokio::time::Instant {
        self.deadline.map_or(at, |d| at.min(d))
    }

    /// When the version's share of the wait runs out, as known `now`;
    /// `None`: it has.
    fn next(
        &self,
        start: tokio::time::Instant,
        now: tokio::time::Instant,
    ) -> Option<tokio::time::Instant> {
        // Every wake is at or before `sent + timeout`, so the deadline,
        // once the body is sent, is exact.
        let next = match self.upload.map(Upload::phase) {
            None => return None,
            Some(Phase::Sent(at)) => at + self.timeout,
            Some(Phase::Sending { waiting: true, .. }) => now + self.timeout,
            Some(Phase::Sending { pulled, .. }) => pulled.max(start) + self.timeout,
        };
        Some(self.cap(next)).filter(|&n| n > now)
    }
}

pin_project_lite::pin_project! {
    /// An attempt under its [`Clock`].
    ///
    /// Resolves to [`TimedOut`] when the version's share of the wait runs out.
    struct Timed<'a, F> {
        #[pin]
        attempt: F,
        #[pin]
        sleep: tokio::time::Sleep,
        clock: Clock<'a>,
        start: tokio::time::Instant,
    }
}

impl<F: Future> Future for Timed<'_, F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let mut me = self.project();
        if let Poll::Ready(out) = me.attempt.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        loop {
            if me.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            match me.clock.next(*me.start, tokio::time::Instant::now()) {
                Some(next) => me.sleep.as_mut().reset(next),
                None => return Poll::Ready(Err(TimedOut)),
            }
        }
    }
}

/// An attempt under a drill: the fault decides before the version is asked.
async fn drilled(
    client: &UpstreamClient,
    v: &VersionSnap,
    req: Request<UpstreamBody>,
    clock: Clock<'_>,
    upgrade: Option<&http::HeaderValue>,
    fwd: &crate::headers::Forwarding,
) -> Attempted {
    match v.drill.inject() {
        Injection::Error => Attempted::Failed(Outcome::Status5xx, None),
        Injection::Outage => Attempted::Failed(Outcome::Connect, None),
        Injection::Delay(d) => {
            let sent = async {
                tokio::time::sleep(d).await;
                client.request(Target::of(v), req, Some(fwd)).await
            };
            classify(clock.timed(sent).await, upgrade)
        }
        Injection::None => classify(
            clock
                .timed(client.request(Target::of(v), req, Some(fwd)))
                .await,
            upgrade,
        ),
    }
}

/// A gRPC failure is an HTTP 200 whose `grpc-status` is not 0: in the head
/// (a trailers-only answer) it is counted now, in the trailers when they
/// come. Counted as the version's error for its stats and rules; the
/// answer itself goes to the client as it is (no fallback: gRPC statuses
/// are the application's answers).
fn grpc_errors(
    resp: &mut http::Response<crate::upstream::RespBody>,
    v: &VersionSnap,
    count: Count,
) {
    let grpc = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|c| c.as_bytes().starts_with(b"application/grpc"));
    if !grpc {
        return;
    }
    match resp.headers().get("grpc-status") {
        Some(s) if s.as_bytes() != b"0" => count.each(v, |s| s.record_late_error()),
        Some(_) => {}
        None => resp.body_mut().report_grpc_to(count.primary(v).clone()),
    }
}

/// Whether an attempt is worth starting under the deadline: not with less
/// than [`MIN_USEFUL`] (or its whole `timeout`, if shorter) left.
fn worth_trying(deadline: Option<Instant>, timeout: Duration) -> bool {
    deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) >= MIN_USEFUL.min(timeout))
}

/// Whether `outcome` is one of the route's `on` failures.
fn falls_back(f: &FallbackSnap, outcome: Outcome) -> bool {
    match outcome {
        Outcome::Success => false,
        Outcome::Status5xx => f.on.status_5xx,
        Outcome::Connect => f.on.connect,
        Outcome::Timeout => f.on.timeout,
        // Never recorded for a version: the walk ends at a client failure.
        Outcome::ClientTimeout | Outcome::ClientAbort => false,
    }
}

fn note_fallback(route: &RouteSnap, from: usize, _f: &FallbackSnap, count: Count) {
    let v = &route.versions[from];
    count.each(v, |s| s.record_fallback());
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

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(2);

    /// When `clock` gives up on an attempt that never answers.
    async fn gives_up(clock: Clock<'_>) -> Duration {
        let start = tokio::time::Instant::now();
        let r = clock.timed(std::future::pending::<()>()).await;
        assert_eq!(r, Err(TimedOut));
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_upload_the_timeout_runs_from_the_start() {
        let clock = Clock {
            timeout: T,
            deadline: None,
            upload: None,
        };
        assert_eq!(gives_up(clock).await, T);
        let quick = clock.timed(async { 7 }).await;
        assert_eq!(quick, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_progressing_upload_is_not_the_versions_time() {
        let upload = Arc::new(Upload::new());
        let u = upload.clone();
        // Four seconds of upload, a pull every 400 ms, waiting for the
        // client in between; sent at 4 s.
        tokio::spawn(async move {
            for _ in 0..10 {
                u.pulled(tokio::time::Instant::now(), true);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            u.finished(tokio::time::Instant::now());
        });
        let clock = Clock {
            timeout: T,
            deadline: None,
            upload: Some(&upload),
        };
        assert_eq!(gives_up(clock).await, Duration::from_secs(4) + T);
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_that_stops_taking_the_body_times_out() {
        let upload = Arc::new(Upload::new());
        let u = upload.clone();
        // Pulled (a frame was there) at 1 s, then never again.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            u.pulled(tokio::time::Instant::now(), false);
        });
        let clock = Clock {
            timeout: T,
            deadline: None,
            upload: Some(&upload),
        };
        assert_eq!(gives_up(clock).await, Duration::from_secs(1) + T);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_even_a_progressing_upload() {
        let upload = Arc::new(Upload::new());
        let u = upload.clone();
        tokio::spawn(async move {
            loop {
                u.pulled(tokio::time::Instant::now(), true);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        });
        let start = tokio::time::Instant::now();
        let clock = Clock {
            timeout: T,
            deadline: Some(start + Duration::from_secs(3)),
            upload: Some(&upload),
        };
        assert_eq!(gives_up(clock).await, Duration::from_secs(3));
        assert!(
            upload.waited_for_client(Duration::from_secs(2)),
            "since the start"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn latency_counts_from_the_end_of_the_upload() {
        let upload = Upload::new();
        let attempt = tokio::time::Instant::now();
        let clock = Clock {
            timeout: T,
            deadline: None,
            upload: Some(&upload),
        };
        assert_eq!(clock.waiting_since(attempt), attempt);
        tokio::time::advance(Duration::from_secs(1)).await;
        upload.pulled(tokio::time::Instant::now(), true);
        assert_eq!(
            clock.waiting_since(attempt),
            attempt + Duration::from_secs(1)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        upload.finished(tokio::time::Instant::now());
        assert_eq!(
            clock.waiting_since(attempt),
            attempt + Duration::from_secs(3)
        );
    }
}
