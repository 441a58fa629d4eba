//! What a load run measured: per-worker recording and the merged report.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use http::{HeaderMap, HeaderName, StatusCode};
use serde::{Deserialize, Serialize};

/// The header the proxy sets with the version it picked; preferred over the
/// fake's own `x-upstream-version` when both are there.
pub const X_SERIN_VERSION: HeaderName = HeaderName::from_static("x-serin-version");

/// The slowest latency the histogram tells apart; slower ones count as this.
const LATENCY_MAX_US: u64 = 60_000_000;

/// The result of one load run.
///
/// `requests = ok + errors`, and `errors = status_4xx + status_5xx +
/// status_other + transport + timeouts`. Latencies (ms) cover the requests
/// that got a response, whatever its status; in open loop they are measured
/// from when each request was due, so queueing behind a slow server counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Requests issued and finished (answered, failed or timed out).
    pub requests: u64,
    /// Answers with a 2xx or 3xx status.
    pub ok: u64,
    /// Everything else.
    pub errors: u64,
    /// Answers with a 4xx status.
    pub status_4xx: u64,
    /// Answers with a 5xx status.
    pub status_5xx: u64,
    /// Answers with a 1xx status (not an upgrade the generator asked for).
    pub status_other: u64,
    /// Connect failures, resets, protocol errors.
    pub transport: u64,
    /// Requests with no complete answer within the timeout.
    pub timeouts: u64,
    /// Wall time from the first due request to the last finished one.
    pub duration_s: f64,
    /// The rate asked for; 0 for closed loop.
    pub target_rps: f64,
    /// `requests / duration_s`.
    pub throughput_rps: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 90th percentile latency.
    pub p90_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// 99.9th percentile latency.
    pub p999_ms: f64,
    /// Slowest latency.
    pub max_ms: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Answers per `x-serin-version`, or `x-upstream-version` when the proxy
    /// set none; answers with neither are not counted here.
    pub versions: BTreeMap<String, u64>,
}

/// Live counters of a run in progress, for a terminal that wants to show
/// them before the report is ready (`serin demo`).
#[derive(Debug, Default)]
pub struct Progress {
    requests: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
}

/// One worker's measurements, merged into a [`Report`] at the end.
///
/// Each worker owns one, so recording takes no lock.
#[derive(Debug)]
pub(crate) struct Recorder {
    hist: Histogram<u64>,
    counts: Report,
    versions: HashMap<String, u64>,
    progress: Option<Arc<Progress>>,
}

/// The two views [`Report::split_table`] prints.
#[derive(Debug)]
pub struct SplitTable<'a>(&'a Report);

// === impl Report ===

impl Report {
    /// Prints the human table (and nothing else) to stdout.
    pub fn print_table(&self) {
        println!("{self}");
    }

    /// The per-version answer counts and shares, as a table.
    pub fn split_table(&self) -> SplitTable<'_> {
        SplitTable(self)
    }

    /// The share of answers that came from `version`, in `0.0..=1.0`.
    pub fn share(&self, version: &str) -> f64 {
        let total: u64 = self.versions.values().sum();
        match (self.versions.get(version), total) {
            (Some(&n), total) if total > 0 => n as f64 / total as f64,
            _ => 0.0,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "requests   {:>10}   ok {}   errors {} (5xx {}, 4xx {}, 1xx {}, transport {}, timeout {})",
            self.requests,
            self.ok,
            self.errors,
            self.status_5xx,
            self.status_4xx,
            self.status_other,
            self.transport,
            self.timeouts
        )?;
        let target = if self.target_rps > 0.0 {
            format!("{:.0} rps", self.target_rps)
        } else {
            "closed loop".to_owned()
        };
        writeln!(
            f,
            "throughput {:>10.1} rps   over {:.2} s   target {target}",
            self.throughput_rps, self.duration_s
        )?;
        write!(
            f,
            "latency ms  p50 {:.3}   p90 {:.3}   p99 {:.3}   p99.9 {:.3}   max {:.3}   mean {:.3}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.mean_ms
        )
    }
}

impl fmt::Display for SplitTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        let width = report
            .versions
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(7);
        write!(
            f,
            "{:<width$}  {:>10}  {:>7}",
            "version", "answers", "share"
        )?;
        for (name, n) in &report.versions {
            let pct = report.share(name) * 100.0;
            write!(f, "\n{name:<width$}  {n:>10}  {pct:>6.2}%")?;
        }
        Ok(())
    }
}

// === impl Progress ===

impl Progress {
    /// Requests finished so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// 2xx/3xx answers so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Relaxed)
    }

    /// Failed requests so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }
}

// === impl Recorder ===

impl Recorder {
    pub(crate) fn new(progress: Option<Arc<Progress>>) -> Self {
        // Fixed, valid bounds: an error here is a bug in the constants.
        let hist = Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
            .expect("1µs..60s at 3 digits is a valid histogram");
        Self {
            hist,
            counts: Report::default(),
            versions: HashMap::new(),
            progress,
        }
    }

    /// Records an answer that arrived `latency` after it was due (or sent).
    pub(crate) fn response(&mut self, status: StatusCode, headers: &HeaderMap, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(us.max(1));
        let ok = status.is_success() || status.is_redirection();
        let c = &mut self.counts;
        match status.as_u16() {
            _ if ok => c.ok += 1,
            400..=499 => c.status_4xx += 1,
            500..=599 => c.status_5xx += 1,
            _ => c.status_other += 1,
        }
        let version = headers
            .get(X_SERIN_VERSION)
            .or_else(|| headers.get(crate::X_UPSTREAM_VERSION))
            .and_then(|v| v.to_str().ok());
        if let Some(version) = version {
            // Look up by `&str` first: no allocation once a version is known.
            match self.versions.get_mut(version) {
                Some(n) => *n += 1,
                None => {
                    self.versions.insert(version.to_owned(), 1);
                }
            }
        }
        self.finish(ok);
    }

    /// Records a request that failed below HTTP.
    pub(crate) fn transport(&mut self) {
        self.counts.transport += 1;
        self.finish(false);
    }

    /// Records a request that ran out of time.
    pub(crate) fn timeout(&mut self) {
        self.counts.timeouts += 1;
        self.finish(false);
    }

    fn finish(&mut self, ok: bool) {
        self.counts.requests += 1;
        if let Some(p) = &self.progress {
            p.requests.fetch_add(1, Relaxed);
            let counter = if ok { &p.ok } else { &p.errors };
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Folds another worker's measurements into this one.
    pub(crate) fn merge(&mut self, other: Recorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        self.hist
            .add(&other.hist)
            .expect("histograms with equal bounds always add");
        let (a, b) = (&mut self.counts, &other.counts);
        a.requests += b.requests;
        a.ok += b.ok;
        a.status_4xx += b.status_4xx;
        a.status_5xx += b.status_5xx;
        a.status_other += b.status_other;
        a.transport += b.transport;
        a.timeouts += b.timeouts;
        for (name, n) in other.versions {
            *self.versions.entry(name).or_default() += n;
        }
    }

    /// The report of everything recorded, over `elapsed` at `target_rps`.
    pub(crate) fn into_report(self, elapsed: Duration, target_rps: f64) -> Report {
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |quantile| ms(self.hist.value_at_quantile(quantile));
        let empty = self.hist.is_empty();
        let c = self.counts;
        let duration_s = elapsed.as_secs_f64();
        Report {
            errors: c.status_4xx + c.status_5xx + c.status_other + c.transport + c.timeouts,
            duration_s,
            target_rps,
            throughput_rps: if duration_s > 0.0 {
                c.requests as f64 / duration_s
            } else {
                0.0
            },
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ms(self.hist.max()),
            mean_ms: if empty {
                0.0
            } else {
                self.hist.mean() / 1000.0
            },
            versions: self.versions.into_iter().collect(),
            ..c
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_report() {
        let mut a = Recorder::new(None);
        let mut b = Recorder::new(None);
        let mut h = HeaderMap::new();
        h.insert(crate::X_UPSTREAM_VERSION, "v1".parse().unwrap());
        a.response(StatusCode::OK, &h, Duration::from_millis(10));
        h.insert(X_SERIN_VERSION, "v2".parse().unwrap());
        b.response(
            StatusCode::SERVICE_UNAVAILABLE,
            &h,
            Duration::from_millis(30),
        );
        b.response(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            Duration::from_millis(20),
        );
        b.transport();
        b.timeout();
        a.merge(b);
        let r = a.into_report(Duration::from_secs(1), 5.0);
        assert_eq!((r.requests, r.ok, r.errors), (5, 1, 4));
        assert_eq!(
            (r.status_5xx, r.status_4xx, r.transport, r.timeouts),
            (1, 1, 1, 1)
        );
        assert_eq!(r.versions.get("v1"), Some(&1));
        assert_eq!(r.versions.get("v2"), Some(&1));
        assert!((r.p50_ms - 20.0).abs() < 0.1, "{}", r.p50_ms);
        assert!((r.max_ms - 30.0).abs() < 0.1, "{}", r.max_ms);
        assert!((r.throughput_rps - 5.0).abs() < 1e-9);
        assert!((r.share("v2") - 0.5).abs() < 1e-9);
        let text = format!("{r}\n{}", r.split_table());
        assert!(text.contains("p99"), "{text}");
        assert!(text.contains("50.00%"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["versions"]["v1"], 1);
    }
}
