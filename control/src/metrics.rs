//! Every `serin_*` Prometheus metric in one place: names, label keys, the
//! process-wide recorder behind `GET /metrics`, and the handles the rest of
//! serin updates.
//!
//! Label values are route and version names from the routing file and a few
//! fixed words (outcomes, modes, results), never paths or status codes, so
//! cardinality is bounded by the routing file.
//!
//! Per-request metrics are not updated on the request path: telemetry's
//! fold publishes each 1 s slot (see [`crate::telemetry`]). Everything else
//! is rare (a fallback, a breaker change, a rollback, a reload) and updates
//! its handle directly.

use std::sync::{Mutex, OnceLock, PoisonError};

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::outcome::Outcome;
use serin_config::MAX_SIGNALS;

/// Upstream attempts per version: `{route, version, outcome}`.
pub(crate) const REQUESTS_TOTAL: &str = "serin_requests_total";
/// Attempt latency, request sent → response headers: `{route, version}`.
pub(crate) const REQUEST_DURATION_SECONDS: &str = "serin_request_duration_seconds";
/// Client requests per route, end to end: `{route, outcome}`.
pub(crate) const ROUTE_REQUESTS_TOTAL: &str = "serin_route_requests_total";
/// Client-seen latency per route: `{route}`.
pub(crate) const ROUTE_DURATION_SECONDS: &str = "serin_route_duration_seconds";
/// Requests handed down the fallback chain: `{route, from, to}`.
pub(crate) const FALLBACKS_TOTAL: &str = "serin_fallbacks_total";
/// Breaker state per version, 0 closed, 1 half-open, 2 open: `{route, version}`.
pub(crate) const BREAKER_STATE: &str = "serin_breaker_state";
/// Active health per version, 1 healthy or not yet probed (the pick uses
/// it), 0 unhealthy: `{route, version}`.
pub(crate) const VERSION_HEALTHY: &str = "serin_version_healthy";
/// Health probe latency, to response headers (the timeout when none came):
/// `{route, version}`.
pub(crate) const HEALTH_PROBE_DURATION_SECONDS: &str = "serin_health_probe_duration_seconds";
/// Live weight per version: `{route, version}`.
pub(crate) const ROUTE_WEIGHT: &str = "serin_route_weight";
/// Rollbacks started: `{route, mode}`.
pub(crate) const ROLLBACKS_TOTAL: &str = "serin_rollbacks_total";
/// Routing-file reloads: `{result}`.
pub(crate) const CONFIG_RELOADS_TOTAL: &str = "serin_config_reloads_total";
/// Mirrored answers that differed from the live one: `{route, version}`.
pub(crate) const MIRROR_MISMATCHES_TOTAL: &str = "serin_mirror_mismatches_total";
/// Answers reporting a quality signal true or above 0:
/// `{route, version, signal}`.
pub(crate) const SIGNAL_TOTAL: &str = "serin_signal_total";

/// Label keys.
pub(crate) mod label {
    /// The route's name.
    pub(crate) const ROUTE: &str = "route";
    /// The version's name.
    pub(crate) const VERSION: &str = "version";
    /// [`Outcome::label`](crate::telemetry::Outcome::label).
    pub(crate) const OUTCOME: &str = "outcome";
    /// The version a fallback left.
    pub(crate) const FROM: &str = "from";
    /// The version a fallback went to.
    pub(crate) const TO: &str = "to";
    /// `immediate` or `gradual`.
    pub(crate) const MODE: &str = "mode";
    /// A reload's result, e.g. `applied`, `rejected`, `unchanged`.
    pub(crate) const RESULT: &str = "result";
    /// A quality signal's name (`[[routes.signals]]`).
    pub(crate) const SIGNAL: &str = "signal";
}

/// Bucket bounds (seconds) of both duration histograms: 0.5 ms to 60 s.
pub(crate) const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Per-request handles of one `VersionStats`, resolved at registration.
pub(crate) struct Exports {
    /// In [`Outcome::ALL`] order; `None` for the client outcomes of a
    /// version (only routes have them), so no always-zero series is exported.
    requests: [Option<Counter>; 6],
    duration: Histogram,
    /// `serin_signal_total` per signal index, named when a table compiles
    /// (a reload may rename them); folds only, never the request path.
    signals: Mutex<[Option<Counter>; MAX_SIGNALS]>,
}

/// Installs the process-wide Prometheus recorder on first call and returns
/// its handle (`handle.render()` is the `GET /metrics` body); later calls
/// return the same handle, so many serins in one test process share it.
/// Handles resolved before the first call are no-ops: call it before
/// registering metrics ([`Telemetry::new`](crate::telemetry::Telemetry::new)
/// does). If another recorder was installed first, the handle renders only
/// serin's descriptions and a warning is logged.
pub(crate) fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_DURATION_SECONDS.into()),
                    DURATION_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(ROUTE_DURATION_SECONDS.into()),
                        DURATION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(HEALTH_PROBE_DURATION_SECONDS.into()),
                        DURATION_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if let Err(e) = ::metrics::set_global_recorder(recorder) {
                tracing::warn!("metrics recorder already installed, /metrics stays empty: {e}");
            }
            describe();
            // At 0 from the start, so `increase()` sees the first one.
            for result in ["applied", "unchanged", "rejected"] {
                ::metrics::counter!(CONFIG_RELOADS_TOTAL, label::RESULT => result).increment(0);
            }
            handle
        })
        .clone()
}

/// Drains the exporter's sample queues into its histograms; the telemetry
/// task calls it every slot so memory stays flat between scrapes.
pub(crate) fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

/// The `serin_fallbacks_total{route,from,to}` counter.
pub(crate) fn fallback_counter(route: &str, from: &str, to: &str) -> Counter {
    ::metrics::counter!(FALLBACKS_TOTAL,
        label::ROUTE => route.to_owned(), label::FROM => from.to_owned(), label::TO => to.to_owned())
}

/// Sets `serin_breaker_state{route,version}` to `state`, the breaker's
/// gauge value (0 closed, 1 half-open, 2 open: `BreakerState as u8`).
pub(crate) fn breaker_state(route: &str, version: &str, state: u8) {
    ::metrics::gauge!(BREAKER_STATE,
        label::ROUTE => route.to_owned(), label::VERSION => version.to_owned())
    .set(f64::from(state));
}

/// Sets `serin_version_healthy{route,version}`: 0 when unhealthy, else 1
/// (healthy, or not judged yet).
pub(crate) fn version_healthy(route: &str, version: &str, unhealthy: bool) {
    let up = if unhealthy { 0.0 } else { 1.0 };
    ::metrics::gauge!(VERSION_HEALTHY,
        label::ROUTE => route.to_owned(), label::VERSION => version.to_owned())
    .set(up);
}

/// The `serin_health_probe_duration_seconds{route,version}` histogram.
pub(crate) fn health_probe_duration(route: &str, version: &str) -> Histogram {
    ::metrics::histogram!(HEALTH_PROBE_DURATION_SECONDS,
        label::ROUTE => route.to_owned(), label::VERSION => version.to_owned())
}

/// Sets `serin_route_weight{route,version}`.
pub(crate) fn route_weight(route: &str, version: &str, weight: f64) {
    ::metrics::gauge!(ROUTE_WEIGHT,
        label::ROUTE => route.to_owned(), label::VERSION => version.to_owned())
    .set(weight);
}

/// Registers `serin_rollbacks_total{route,mode}` at 0 for both modes, so
/// `increase()` sees the route's first rollback (a series that appears at
/// 1 has no increase).
pub(crate) fn rollbacks_at_zero(route: &str) {
    for mode in ["immediate", "gradual"] {
        ::metrics::counter!(ROLLBACKS_TOTAL, label::ROUTE => route.to_owned(), label::MODE => mode)
            .increment(0);
    }
}

/// Counts a rollback in `serin_rollbacks_total{route,mode}`.
pub(crate) fn rollback(route: &str, mode: &'static str) {
    ::metrics::counter!(ROLLBACKS_TOTAL, label::ROUTE => route.to_owned(), label::MODE => mode)
        .increment(1);
}

/// `serin_mirror_mismatches_total{route,version}`, resolved once per mirror.
pub(crate) fn mirror_mismatches(route: &str, version: &str) -> Counter {
    ::metrics::counter!(MIRROR_MISMATCHES_TOTAL,
        label::ROUTE => route.to_owned(), label::VERSION => version.to_owned())
}

/// Counts a reload in `serin_config_reloads_total{result}`.
pub(crate) fn config_reload(result: &'static str) {
    ::metrics::counter!(CONFIG_RELOADS_TOTAL, label::RESULT => result).increment(1);
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(REQUESTS_TOTAL, "Upstream attempts per version, by outcome.");
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Attempt latency per version: request sent to response headers."
    );
    describe_counter!(
        ROUTE_REQUESTS_TOTAL,
        "Client requests per route, by outcome."
    );
    describe_histogram!(
        ROUTE_DURATION_SECONDS,
        Unit::Seconds,
        "Client-seen latency per route."
    );
    describe_counter!(FALLBACKS_TOTAL, "Requests handed down the fallback chain.");
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker: 0 closed, 1 half-open, 2 open."
    );
    describe_gauge!(
        VERSION_HEALTHY,
        "Active health check: 1 healthy or not yet probed, 0 unhealthy."
    );
    describe_histogram!(
        HEALTH_PROBE_DURATION_SECONDS,
        Unit::Seconds,
        "Health probe latency per version, to response headers."
    );
    describe_gauge!(ROUTE_WEIGHT, "Live weight per version.");
    describe_counter!(ROLLBACKS_TOTAL, "Rollbacks started, by mode.");
    describe_counter!(CONFIG_RELOADS_TOTAL, "Routing-file reloads, by result.");
    describe_counter!(
        MIRROR_MISMATCHES_TOTAL,
        "Mirrored answers that differed from the live answer."
    );
    describe_counter!(
        SIGNAL_TOTAL,
        "Answers reporting a quality signal true or above 0."
    );
}

// === impl Exports ===

impl Exports {
    /// `serin_requests_total` / `serin_request_duration_seconds`.
    pub(crate) fn version(route: &str, version: &str) -> Self {
        Self {
            requests: Outcome::ALL.map(|o| {
                (!o.is_client()).then(|| {
                    ::metrics::counter!(REQUESTS_TOTAL,
                        label::ROUTE => route.to_owned(),
                        label::VERSION => version.to_owned(),
                        label::OUTCOME => o.label())
                })
            }),
            duration: ::metrics::histogram!(REQUEST_DURATION_SECONDS,
                label::ROUTE => route.to_owned(), label::VERSION => version.to_owned()),
            signals: Mutex::default(),
        }
    }

    /// Names the signals of `version` of `route` for `serin_signal_total`.
    pub(crate) fn name_signals(&self, route: &str, version: &str, names: &[&str]) {
        let mut out = self.signals.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = names.get(i).map(|name| {
                ::metrics::counter!(SIGNAL_TOTAL,
                    label::ROUTE => route.to_owned(),
                    label::VERSION => version.to_owned(),
                    label::SIGNAL => (*name).to_owned())
            });
        }
    }

    /// Adds one folded slot's signal hits, by signal index.
    pub(crate) fn publish_signals(&self, hits: impl Iterator<Item = u64>) {
        let counters = self.signals.lock().unwrap_or_else(PoisonError::into_inner);
        for (counter, n) in counters.iter().zip(hits) {
            if let (Some(c), true) = (counter, n > 0) {
                c.increment(n);
            }
        }
    }

    /// `serin_route_requests_total` / `serin_route_duration_seconds`.
    pub(crate) fn route(route: &str) -> Self {
        Self {
            requests: Outcome::ALL.map(|o| {
                Some(::metrics::counter!(ROUTE_REQUESTS_TOTAL,
                    label::ROUTE => route.to_owned(), label::OUTCOME => o.label()))
            }),
            duration: ::metrics::histogram!(ROUTE_DURATION_SECONDS, label::ROUTE => route.to_owned()),
            signals: Mutex::default(),
        }
    }

    /// Adds one folded slot: counts per outcome, latency samples as
    /// (µs, count).
    pub(crate) fn publish(&self, by_outcome: [u64; 6], samples: impl Iterator<Item = (u64, u64)>) {
        for (counter, n) in self.requests.iter().zip(by_outcome) {
            if let (Some(counter), true) = (counter, n > 0) {
                counter.increment(n);
            }
        }
        for (micros, count) in samples {
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            self.duration.record_many(micros as f64 / 1e6, count);
        }
    }
}
