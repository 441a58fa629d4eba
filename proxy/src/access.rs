//! The access log (`[access_log]`): one line per client request, JSON or
//! the NCSA combined format, to standard output or a file. With
//! `[tracing]`, the same record of a request also becomes its span
//! (`crate::spans`), on the same thread.
//!
//! The request path never writes: when a response body has been sent
//! whole (or dropped), its [`Pending`] becomes a [`Record`] and goes to a
//! bounded channel with `try_send`; a thread of its own formats records
//! into a buffered writer and flushes when the channel goes quiet (at most
//! every 250 ms). A full channel drops the line and counts it, never
//! waits: a slow disk cannot slow a request.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderValue, Method, Request, Response, Uri, Version};
use serin_config::AccessFormat;

use crate::headers::SpanIds;
use crate::spans::Spans;

/// Lines waiting for the writer at most; more are dropped (counted).
const QUEUE: usize = 16 * 1024;
/// The writer flushes after this long without a new line.
const FLUSH_AFTER: Duration = Duration::from_millis(250);

/// The sending side, shared by every connection.
#[derive(Debug)]
pub(crate) struct AccessLog {
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

/// What the writer thread is sent.
#[derive(Debug)]
enum Msg {
    Line(Box<Record>),
    /// Write out what is buffered, then answer (shutdown).
    Flush(SyncSender<()>),
}

/// What the proxy learned of a request, as a response extension for the
/// access log (inserted only when the log is on).
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) route: Arc<str>,
    /// The version that answered; `None` when none did.
    pub(crate) version: Option<Arc<str>>,
    /// The request went down the fallback chain.
    pub(crate) fallback: bool,
    /// Request received → the version's response head.
    pub(crate) upstream: Option<Duration>,
    pub(crate) trace_id: u128,
    /// serin's span, when it records one.
    pub(crate) span: Option<SpanIds>,
    /// The `x-request-id` serin made (the client sent none).
    pub(crate) request_id: Option<HeaderValue>,
}

/// What the proxy keeps of a request for its line while the attempts run
/// (boxed in the request's future: 8 bytes there, allocated only with the
/// log on).
#[derive(Debug)]
pub(crate) struct Received {
    /// Bytes, not a `u128`: see `Forwarding::trace_id`.
    pub(crate) trace_id: [u8; 16],
    pub(crate) span: Option<SpanIds>,
    pub(crate) request_id: Option<HeaderValue>,
    pub(crate) at: Instant,
}

impl Received {
    /// The answer came from `version` (`None`: from serin, the chain
    /// exhausted), down the fallback chain or not.
    pub(crate) fn served(
        self,
        route: &Arc<str>,
        version: Option<&Arc<str>>,
        fallback: bool,
    ) -> Served {
        Served {
            route: route.clone(),
            version: version.cloned(),
            fallback,
            upstream: version.map(|_| self.at.elapsed()),
            trace_id: u128::from_be_bytes(self.trace_id),
            span: self.span,
            request_id: self.request_id,
        }
    }
}

/// A request whose answer is on its way: completed into a [`Record`] when
/// the response body is done.
#[derive(Debug)]
pub(crate) struct Pending {
    log: Arc<AccessLog>,
    record: Record,
    start: Instant,
    pub(crate) bytes: u64,
}

/// One line (and, with `[tracing]`, one span).
#[derive(Debug)]
pub(crate) struct Record {
    /// When the response ended.
    pub(crate) time: SystemTime,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    pub(crate) trace_id: Option<u128>,
    pub(crate) span: Option<SpanIds>,
    pub(crate) route: Option<Arc<str>>,
    pub(crate) upstream_version: Option<Arc<str>>,
    pub(crate) fallback: bool,
    pub(crate) status: u16,
    bytes: u64,
    /// Request received → last byte.
    pub(crate) duration: Duration,
    pub(crate) upstream: Option<Duration>,
    pub(crate) peer: SocketAddr,
}

/// The client's request line and the headers the log shows, taken before
/// the request is handled.
#[derive(Debug)]
pub(crate) struct Seen {
    method: Method,
    uri: Uri,
    version: Version,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    trace_id: Option<u128>,
    start: Instant,
}

// === impl AccessLog ===

impl AccessLog {
    /// Starts the writer thread for `config` (its `path` opened for
    /// appending; `None`: standard output) and `spans`, either or both;
    /// `None` with neither.
    ///
    /// # Errors
    /// The file cannot be opened, or the thread cannot start.
    pub(crate) fn open(
        config: Option<&serin_config::AccessLog>,
        spans: Option<Spans>,
    ) -> io::Result<Option<Arc<Self>>> {
        if config.is_none() && spans.is_none() {
            return Ok(None);
        }
        let out = match config {
            Some(c) => {
                let out: Box<dyn Write + Send> = match &c.path {
                    None => Box::new(io::stdout()),
                    Some(path) => Box::new(append(path)?),
                };
                Some((BufWriter::with_capacity(64 * 1024, out), c.format))
            }
            None => None,
        };
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        std::thread::Builder::new()
            .name("serin-access-log".into())
            .spawn(move || write_lines(rx, out, spans))?;
        Ok(Some(Arc::new(Self {
            tx,
            dropped: AtomicU64::new(0),
        })))
    }

    /// Lines dropped because the writer fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Writes out every line sent so far, and exports the spans; waits at
    /// most a few seconds (at shutdown, after the drain).
    pub(crate) fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(6));
        }
    }

    fn send(&self, record: Record) {
        match self.tx.try_send(Msg::Line(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if (self.dropped.fetch_add(1, Relaxed) + 1).is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped(),
                        "access log: the writer is behind; lines dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn append(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("access log {}: {e}", path.display())))
}

/// The writer thread: until every sender is gone. Flushes at least every
/// `FLUSH_AFTER` while lines come, and whenever they stop.
fn write_lines(
    rx: mpsc::Receiver<Msg>,
    mut out: Option<(impl Write, AccessFormat)>,
    spans: Option<Spans>,
) {
    let mut line = String::with_capacity(512);
    let mut flushed = Instant::now();
    let mut failed = 0u64;
    let flush = |out: &mut Option<(_, _)>| {
        if let Some((w, _)) = out {
            let _ = Write::flush(w);
        }
    };
    loop {
        match rx.recv_timeout(FLUSH_AFTER) {
            Ok(Msg::Line(record)) => {
                if let Some(spans) = &spans {
                    spans.record(&record);
                }
                let Some((w, format)) = &mut out else {
                    continue;
                };
                line.clear();
                match format {
                    AccessFormat::Json => record.json(&mut line),
                    AccessFormat::Combined => record.combined(&mut line),
                }
                line.push('\n');
                if let Err(e) = w.write_all(line.as_bytes()) {
                    failed += 1;
                    if failed.is_power_of_two() {
                        tracing::warn!(error = %e, failed, "access log: lines not written");
                    }
                }
                if flushed.elapsed() >= FLUSH_AFTER {
                    flush(&mut out);
                    flushed = Instant::now();
                }
            }
            Ok(Msg::Flush(done)) => {
                flush(&mut out);
                if let Some(spans) = &spans {
                    spans.flush();
                }
                flushed = Instant::now();
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                flush(&mut out);
                flushed = Instant::now();
            }
            Err(RecvTimeoutError::Disconnected) => {
                flush(&mut out);
                return;
            }
        }
    }
}

// === impl Seen ===

impl Seen {
    /// What the log needs of `req`, read before it is handled.
    pub(crate) fn of<B>(req: &Request<B>) -> Self {
        let h = req.headers();
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            user_agent: h.get(http::header::USER_AGENT).cloned(),
            referer: h.get(http::header::REFERER).cloned(),
            request_id: h.get("x-request-id").cloned(),
            trace_id: h
                .get(&crate::headers::TRACEPARENT)
                .and_then(|v| crate::headers::trace_of(v.as_bytes())),
            start: Instant::now(),
        }
    }

    /// The request answered with `resp` (whose [`Served`] extension, if
    /// any, is taken): what is left is the body.
    pub(crate) fn answered<B>(
        self,
        log: &Arc<AccessLog>,
        resp: &mut Response<B>,
        peer: SocketAddr,
    ) -> Pending {
        let served = resp.extensions_mut().remove::<Served>();
        let (route, upstream_version, fallback, upstream, trace, span, made_id) = match served {
            Some(s) => (
                Some(s.route),
                s.version,
                s.fallback,
                s.upstream,
                Some(s.trace_id),
                s.span,
                s.request_id,
            ),
            None => (None, None, false, None, self.trace_id, None, None),
        };
        Pending {
            log: log.clone(),
            start: self.start,
            bytes: 0,
            record: Record {
                time: SystemTime::now(),
                method: self.method,
                uri: self.uri,
                version: self.version,
                user_agent: self.user_agent,
                referer: self.referer,
                request_id: self.request_id.or(made_id),
                trace_id: trace,
                span,
                route,
                upstream_version,
                fallback,
                status: resp.status().as_u16(),
                bytes: 0,
                duration: Duration::ZERO,
                upstream,
                peer,
            },
        }
    }
}

/// A request being handled, for the log: if its future is dropped before
/// an answer (the client left), the line says 499, as nginx's does.
#[derive(Debug)]
pub(crate) struct Watch {
    seen: Option<Seen>,
    log: Arc<AccessLog>,
    peer: SocketAddr,
}

// === impl Watch ===

impl Watch {
    pub(crate) fn new(seen: Seen, log: &Arc<AccessLog>, peer: SocketAddr) -> Self {
        Self {
            seen: Some(seen),
            log: log.clone(),
            peer,
        }
    }

    /// The request was answered with `resp`: the line waits for its body.
    pub(crate) fn answered<B>(mut self, resp: &mut Response<B>) -> Option<Pending> {
        let seen = self.seen.take()?;
        Some(seen.answered(&self.log, resp, self.peer))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.take() {
            let mut resp = Response::new(());
            *resp.status_mut() = http::StatusCode::from_u16(499).unwrap_or_default();
            seen.answered(&self.log, &mut resp, self.peer).finish();
        }
    }
}

// === impl Pending ===

impl Pending {
    /// The body is done (sent whole, or dropped): the line goes out.
    pub(crate) fn finish(mut self) {
        self.record.bytes = self.bytes;
        self.record.duration = self.start.elapsed();
        self.record.time = SystemTime::now();
        self.log.send(self.record);
    }
}

/// A header's value as text, when it is.
fn text(v: &Option<HeaderValue>) -> Option<&str> {
    v.as_ref().and_then(|v| v.to_str().ok())
}

// === impl Record ===

impl Record {
    /// `{"time", "request_id", "trace_id", "route", "version", "fallback",
    /// "status", "bytes", "duration_ms", "upstream_ms", "peer", "method",
    /// "path", "protocol", "user_agent"}`.
    fn json(&self, out: &mut String) {
        let line = serde_json::json!({
            "time": humantime::format_rfc3339_millis(self.time).to_string(),
            "request_id": text(&self.request_id),
            "trace_id": self.trace_id.map(crate::headers::trace_hex),
            "route": self.route.as_deref(),
            "version": self.upstream_version.as_deref(),
            "fallback": self.fallback,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": millis(self.duration),
            "upstream_ms": self.upstream.map(millis),
            "peer": self.peer.ip().to_string(),
            "method": self.method.as_str(),
            "path": self.uri.path_and_query().map_or("/", |p| p.as_str()),
            "protocol": protocol(self.version),
            "user_agent": text(&self.user_agent),
        });
        let _ = write!(out, "{line}");
    }

    /// `PEER - - [03/Dec/2026:16:31:37 +0000] "GET /path HTTP/1.1" 200 1234
    /// "REFERER" "USER-AGENT"`, then serin's own: route, version, request
    /// id, trace id, duration and upstream time in ms.
    fn combined(&self, out: &mut String) {
        let quoted = |v: &Option<HeaderValue>| {
            v.as_ref()
                .and_then(|v| v.to_str().ok())
                .map_or("-".to_owned(), |s| s.replace('"', "\\\""))
        };
        let time = clf_time(self.time);
        let _ = write!(
            out,
            "{} - - [{time}] \"{} {} {}\" {} {} \"{}\" \"{}\" route={} version={} request_id={} trace_id={} duration_ms={} upstream_ms={}",
            self.peer.ip(),
            self.method,
            self.uri.path_and_query().map_or("/", |p| p.as_str()),
            protocol(self.version),
            self.status,
            self.bytes,
            quoted(&self.referer),
            quoted(&self.user_agent),
            self.route.as_deref().unwrap_or("-"),
            self.upstream_version.as_deref().unwrap_or("-"),
            self.request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            self.trace_id
                .map_or("-".to_owned(), crate::headers::trace_hex),
            millis(self.duration),
            self.upstream.map_or("-".to_owned(), |d| millis(d).to_string()),
        );
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 1e2
}

pub(crate) fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// `03/Dec/2026:16:31:37 +0000`, from RFC 3339.
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `2026-12-03T16:31:37Z`
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let month = s
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{}/{month}/{}:{} +0000",
        s.get(8..10).unwrap_or("01"),
        s.get(0..4).unwrap_or("1970"),
        s.get(11..19).unwrap_or("00:00:00")
    )
}
