//! The open-loop load generator behind `serin-load`.
//!
//! Request `i` is due at `start + i / rate`, whether or not earlier ones have
//! been answered, and its latency counts from that due time: a server that
//! stalls shows as the queue it builds, not as a pause in the load
//! (no coordinated omission). Each of `connections` workers owns one
//! HTTP/1.1 keep-alive connection (or shares an h2c one), takes the next
//! index from one atomic counter, sleeps until it is due, sends it and
//! records into its own histogram; histograms merge at the end. (A worker
//! that was idle and slept until the due time counts from its wake-up, so
//! the timer's tick is not charged to the server.)
//!
//! With `rate = 0` there are no due times: every worker sends back to back
//! (closed loop, for maximum throughput) and latency counts from the send.

#[cfg(test)]
mod tests;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Method, Uri};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::worker::{H2Slot, Worker};
use crate::report::{Progress, Recorder, Report};

/// How many h2 workers share one connection: below the usual stream limit.
const H2_WORKERS_PER_CONN: usize = 100;

/// The most sticky keys a run can cycle through (their values are made up front).
const STICKY_KEYS_MAX: u32 = 1_000_000;

/// What to send, how fast and for how long.
///
/// Build it with [`LoadConfig::new`] and set the fields that differ.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// `http://host[:port]/path?query`; the host is resolved once at start.
    pub url: Uri,
    /// Requests per second across all connections; 0 runs closed loop.
    pub rate: f64,
    /// How long new requests are issued.
    pub duration: Duration,
    /// Workers, each with its own HTTP/1.1 connection (h2: concurrent streams).
    pub connections: usize,
    /// The request method.
    pub method: Method,
    /// The request body, sent with every request.
    pub body: Option<Bytes>,
    /// Extra request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Spread requests over a number of sticky keys.
    pub sticky: Option<Sticky>,
    /// Speak h2c with prior knowledge instead of HTTP/1.1.
    pub h2: bool,
    /// The longest one request may take from its send to its last body byte.
    pub timeout: Duration,
    /// Live counters to update while the run goes on.
    pub progress: Option<Arc<Progress>>,
}

/// A header whose value cycles through `keys` distinct keys, `key-0`,
/// `key-1`, …, request by request: the load of `keys` users on a sticky route.
#[derive(Clone, Debug)]
pub struct Sticky {
    /// The header the route is sticky on, e.g. `x-user-id`.
    pub header: HeaderName,
    /// How many distinct users; `1..=1_000_000`.
    pub keys: u32,
}

/// A load run that cannot start; failures of single requests are in the
/// [`Report`] instead.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Only `http://` is spoken.
    #[error("unsupported URL scheme in {0} (want http://)")]
    UnsupportedScheme(Uri),
    /// The URL names no host.
    #[error("URL {0} has no host")]
    MissingHost(Uri),
    /// The host did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host as written.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid load config: {0}")]
    Invalid(&'static str),
}

/// Everything the workers share, fixed before the first request.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    /// Origin-form for HTTP/1.1, absolute for h2 (hyper takes `:authority` from it).
    pub(crate) uri: Uri,
    pub(crate) method: Method,
    pub(crate) body: Bytes,
    /// Host first (HTTP/1.1 only), then the configured headers.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) sticky: Option<(HeaderName, Box<[HeaderValue]>)>,
    pub(crate) h2: bool,
    pub(crate) timeout: Duration,
    /// Requests per second; `None` in closed loop.
    pub(crate) rate: Option<f64>,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// The next request index to take.
    pub(crate) next: AtomicU64,
}

// === impl LoadConfig ===

impl LoadConfig {
    /// 100 GET/s to `url` for 10 s over 64 HTTP/1.1 connections, 10 s timeout.
    pub fn new(url: Uri) -> Self {
        Self {
            url,
            rate: 100.0,
            duration: Duration::from_secs(10),
            connections: 64,
            method: Method::GET,
            body: None,
            headers: Vec::new(),
            sticky: None,
            h2: false,
            timeout: Duration::from_secs(10),
            progress: None,
        }
    }
}

/// Runs the load and reports what it measured.
///
/// Connections are opened before the clock starts. Issuing stops after
/// `duration`; requests in flight then get up to `timeout` to finish.
///
/// # Errors
///
/// [`LoadError`] when the URL is not `http://`, its host does not resolve,
/// or `rate`, `connections` or `sticky` are out of range.
pub async fn run(cfg: LoadConfig) -> Result<Report, LoadError> {
    if !(cfg.rate.is_finite() && cfg.rate >= 0.0) {
        return Err(LoadError::Invalid("rate must be a finite number >= 0"));
    }
    if cfg.connections == 0 {
        return Err(LoadError::Invalid("connections must be at least 1"));
    }
    let sticky = match &cfg.sticky {
        None => None,
        Some(s) if (1..=STICKY_KEYS_MAX).contains(&s.keys) => {
            // "key-N" is always a valid header value; the error arm is unreachable.
            let values = (0..s.keys)
                .map(|k| HeaderValue::try_from(format!("key-{k}")))
                .collect::<Result<Box<[_]>, _>>()
                .map_err(|_| LoadError::Invalid("sticky key is not a header value"))?;
            Some((s.header.clone(), values))
        }
        Some(_) => return Err(LoadError::Invalid("sticky keys must be in 1..=1000000")),
    };
    let (addr, authority) = resolve(&cfg.url).await?;
    let path = cfg
        .url
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut headers = Vec::with_capacity(cfg.headers.len() + 1);
    let uri = if cfg.h2 {
        cfg.url.clone()
    } else {
        headers.push((HOST, authority));
        Uri::from(path)
    };
    headers.extend(cfg.headers.iter().cloned());

    // Connect every worker before the clock starts: the run measures
    // requests, not handshakes.
    let h2_slots: Vec<Arc<H2Slot>> = if cfg.h2 {
        let n = cfg.connections.div_ceil(H2_WORKERS_PER_CONN);
        (0..n).map(|_| Arc::new(H2Slot::new(addr))).collect()
    } else {
        Vec::new()
    };
    let mut connecting = JoinSet::new();
    for id in 0..cfg.connections {
        let slot = h2_slots.get(id % h2_slots.len().max(1)).cloned();
        connecting.spawn(Worker::connect(addr, slot, cfg.timeout));
    }
    let mut workers = Vec::with_capacity(cfg.connections);
    while let Some(joined) = connecting.join_next().await {
        // A panic while connecting is a bug; tokio already printed it.
        if let Ok(conn) = joined {
            workers.push(conn);
        }
    }

    let start = Instant::now();
    let plan = Arc::new(Plan {
        addr,
        uri,
        method: cfg.method.clone(),
        body: cfg.body.clone().unwrap_or_default(),
        headers,
        sticky,
        h2: cfg.h2,
        timeout: cfg.timeout,
        rate: (cfg.rate > 0.0).then_some(cfg.rate),
        start,
        end: start + cfg.duration,
        next: AtomicU64::new(0),
    });
    let mut running = JoinSet::new();
    for conn in workers {
        let rec = Recorder::new(cfg.progress.clone());
        running.spawn(Worker::new(plan.clone(), conn, rec).run());
    }
    let mut total = Recorder::new(None);
    while let Some(joined) = running.join_next().await {
        if let Ok(rec) = joined {
            total.merge(rec);
        }
    }
    Ok(total.into_report(start.elapsed(), cfg.rate))
}

/// The socket address to connect to and the `Host` value for `url`.
async fn resolve(url: &Uri) -> Result<(SocketAddr, HeaderValue), LoadError> {
    if url.scheme() != Some(&Scheme::HTTP) {
        return Err(LoadError::UnsupportedScheme(url.clone()));
    }
    let authority = url
        .authority()
        .filter(|a| !a.host().is_empty())
        .ok_or_else(|| LoadError::MissingHost(url.clone()))?;
    // `Uri::host` keeps an IPv6 literal's brackets; the resolver wants none.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let resolve_err = |source| LoadError::Resolve {
        host: host.to_owned(),
        source,
    };
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(resolve_err)?
        .next()
        .ok_or_else(|| {
            resolve_err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ))
        })?;
    // An authority is always a valid header value: it parsed as part of a URI.
    let host_value = HeaderValue::from_str(authority.as_str())
        .map_err(|_| LoadError::MissingHost(url.clone()))?;
    Ok((addr, host_value))
}
