//! The live routing table: one `ArcSwap<Snapshot>` and the control-side
//! state it is compiled from.

mod compile;
mod pick;
mod routes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use http::uri::{Authority, Scheme};
use http::HeaderValue;
use serin_config::{Config, Sticky};

pub use compile::CompileError;

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
pub use pick::PickTable;
pub use routes::RouteIndex;

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
}

/// The swap point between the control plane and the data plane.
///
/// The data plane calls [`Live::load`] once per request: lock-free, no clone
/// of the table. Control-side changes go through `inner` (a plain mutex: it
/// is never touched by a request) and end in one `ArcSwap::store`.
pub struct Live {
    table: ArcSwap<Snapshot>,
    inner: Mutex<Inner>,
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
    pub fn new(config: Config, revision: &str) -> Result<Self, CompileError> {
        let revision: Arc<str> = revision.into();
        let weights = BTreeMap::new();
        let snapshot = compile::compile(&config, &weights, revision.clone())?;
        Ok(Self {
            table: ArcSwap::from_pointee(snapshot),
            inner: Mutex::new(Inner {
                config: Arc::new(config),
                revision,
                weights,
            }),
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
        let snapshot = compile::compile(&inner.config, &all, inner.revision.clone())?;
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
