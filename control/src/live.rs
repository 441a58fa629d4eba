//! The live routing table: one `ArcSwap<Snapshot>` and the control-side
//! state it is compiled from.

mod compile;
mod pick;
mod routes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, StatusCode};
use serin_config::{Config, FallbackOn, Sticky};

use crate::breaker::Breaker;
use crate::event::Events;
use crate::registry::Registry;
use crate::telemetry::{Telemetry, VersionStats};

pub use compile::CompileError;
pub use pick::PickTable;
pub use routes::RouteIndex;

/// A control-side change that was refused; the live table is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no route named {0:?}")]
    NoRoute(String),
    #[error("route {0:?} has no version named {1:?}")]
    NoVersion(String, String),
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// The whole compiled table a request is routed by. Immutable once stored:
/// a request loads it once and passes `&Snapshot` down, so it sees the old
/// table or the new one, never a mix.
#[derive(Debug)]
pub struct Snapshot {
    /// Config revision id, e.g. `r3`.
    pub revision: Arc<str>,
    pub routes: Box<[RouteSnap]>,
    pub index: RouteIndex,
}

/// One route, compiled.
#[derive(Debug)]
pub struct RouteSnap {
    pub name: Arc<str>,
    pub sticky: Option<Sticky>,
    pub versions: Box<[VersionSnap]>,
    /// Cumulative shares over `versions`, in the same order.
    pub pick: PickTable,
    /// Add `x-serin-version` / `x-serin-fallback` to responses.
    pub response_headers: bool,
    /// `next[i]`: the version after `i` in the fallback chain, if any.
    pub next: Box<[Option<usize>]>,
    /// `in_chain[i]`: version `i` is in the fallback chain (its failure,
    /// even as the last one, ends in the route's final answer).
    pub in_chain: Box<[bool]>,
    pub fallback: Option<FallbackSnap>,
    /// Breaker settings; `None` = no breaker on this route.
    pub breaker: Option<serin_config::Breaker>,
    /// End-to-end telemetry as the client sees it.
    pub stats: Arc<VersionStats>,
}

/// `[routes.fallback]`, compiled: final answers made once.
#[derive(Debug)]
pub struct FallbackSnap {
    pub on: FallbackOn,
    pub final_status: StatusCode,
    /// `final_body` as text.
    pub final_text: Bytes,
    /// `{"error": final_body}` for clients that accept JSON.
    pub final_json: Bytes,
    pub max_replay_body: u64,
    pub retry_non_idempotent: bool,
    pub deadline: Option<Duration>,
}

/// One version of a route, compiled: everything a request needs, typed.
#[derive(Debug)]
pub struct VersionSnap {
    pub name: Arc<str>,
    pub url: http::Uri,
    pub scheme: Scheme,
    pub authority: Authority,
    /// Live weight (file weight unless overridden).
    pub weight: f64,
    /// Response-headers timeout of one attempt.
    pub timeout: Duration,
    /// `x-serin-version` value, made once.
    pub header: HeaderValue,
    /// Per-attempt telemetry; the same `Arc` across table swaps.
    pub stats: Arc<VersionStats>,
    /// The same `Arc` across table swaps.
    pub breaker: Arc<Breaker>,
    /// `serin_fallbacks_total{route, from: this, to: next}`, resolved once;
    /// `None` when the version has no next in the chain.
    pub fallback_counter: Option<metrics::Counter>,
}

/// Long-lived per-(route, version) state the compiler wires into every
/// snapshot, so telemetry and breakers survive reloads.
#[derive(Debug, Default)]
pub struct Shared {
    pub telemetry: Arc<Telemetry>,
    pub breakers: Registry<Breaker>,
    pub events: Arc<Events>,
}

/// The swap point between the control plane and the data plane.
///
/// The data plane calls [`Live::load`] once per request: lock-free, no clone
/// of the table. Control-side changes go through `inner` (a plain mutex: it
/// is never touched by a request) and end in one `ArcSwap::store`.
pub struct Live {
    table: ArcSwap<Snapshot>,
    inner: Mutex<Inner>,
    shared: Shared,
}

struct Inner {
    config: Arc<Config>,
    revision: Arc<str>,
    /// Live weight overrides per route, per version.
    weights: BTreeMap<String, BTreeMap<String, f64>>,
}

// === impl Live ===

impl Live {
    /// Compiles `config` as revision `revision`.
    ///
    /// # Errors
    /// When a version URL cannot be used upstream (validation normally
    /// catches it first).
    pub fn new(config: Config, revision: &str, shared: Shared) -> Result<Self, CompileError> {
        let revision: Arc<str> = revision.into();
        let weights = BTreeMap::new();
        let snapshot = compile::compile(&config, &weights, revision.clone(), &shared)?;
        Ok(Self {
            table: ArcSwap::from_pointee(snapshot),
            inner: Mutex::new(Inner {
                config: Arc::new(config),
                revision,
                weights,
            }),
            shared,
        })
    }

    /// The current table, for one request. Lock-free; does not clone the table.
    #[inline]
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.table.load()
    }

    /// The current table as an owned `Arc`, for control-side readers.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.table.load_full()
    }

    /// The routing file the table was compiled from.
    pub fn config(&self) -> Arc<Config> {
        self.lock().config.clone()
    }

    /// Telemetry, breakers and the event journal.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Sets live weights of `route` (versions not named keep theirs) and
    /// swaps in the recompiled table.
    ///
    /// # Errors
    /// Unknown route or version, a weight that is negative or not finite,
    /// or a result where every weight is zero. Nothing changes then.
    pub fn set_weights(
        &self,
        route: &str,
        weights: &BTreeMap<String, f64>,
    ) -> Result<(), LiveError> {
        let mut inner = self.lock();
        let Some(r) = inner.config.routes.iter().find(|r| r.name == route) else {
            return Err(LiveError::NoRoute(route.to_owned()));
        };
        if let Some(v) = weights
            .keys()
            .find(|v| !r.versions.iter().any(|rv| &rv.name == *v))
        {
            return Err(LiveError::NoVersion(route.to_owned(), v.clone()));
        }
        let mut all = inner.weights.clone();
        all.entry(route.to_owned())
            .or_default()
            .extend(weights.iter().map(|(k, v)| (k.clone(), *v)));
        let snapshot = compile::compile(&inner.config, &all, inner.revision.clone(), &self.shared)?;
        // Computed first, assigned after: a failure above leaves `inner` as it was.
        inner.weights = all;
        self.table.store(Arc::new(snapshot));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves `Inner` consistent (every
        // change is computed first, then assigned), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("revision", &self.load().revision)
            .finish_non_exhaustive()
    }
}
