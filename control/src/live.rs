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

use crate::event::{Draft, Event};
use crate::handle::{Breaker, Fault, Health, Shared};
use crate::persist::{LiveState, Phase};
use crate::store::{LocalStore, MemoryStore, Store, StoreError, Stored};
use crate::telemetry::VersionStats;

pub(crate) use compile::CompileError;
pub(crate) use pick::PickTable;
pub(crate) use routes::RouteIndex;

/// A control-side change that was refused; the live table is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no route named {0:?}")]
    NoRoute(String),
    #[error("route {0:?} has no version named {1:?}")]
    NoVersion(String, String),
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The new state could not be made durable; nothing changed.
    #[error("cannot persist live state: {0}")]
    Persist(#[from] std::io::Error),
    /// Another replica (or caller) changed the state first; nothing
    /// changed here but that state, which is now in force (`current`).
    #[error("{message}")]
    Stale {
        message: String,
        current: Box<LiveState>,
    },
    /// The fleet's store cannot be reached: nothing changed.
    #[error("{0}")]
    Unavailable(String),
    /// A change the current state does not allow (e.g. promote a promoted route).
    #[error("{0}")]
    Refused(String),
    /// A well-formed request whose values are out of bounds (a drill's
    /// rate above 1): 422.
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for LiveError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(e) => Self::Persist(e),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Conflict { current } => Self::Unavailable(format!(
                "the state changed meanwhile (now version {})",
                current.version
            )),
        }
    }
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
    /// `Some` while maintenance mode is on: every route answers 503 with it.
    pub maintenance: Option<Maintenance>,
}

/// The maintenance answer, made once per change.
#[derive(Debug)]
pub struct Maintenance {
    pub message: String,
    /// `message` as text/html.
    pub html: Bytes,
    /// `{"error": message}`.
    pub json: Bytes,
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
    /// Rollout/rollback phase (SPEC.md's route `state`).
    pub phase: Phase,
    /// `[routes.override]`, compiled; `None`: no request picks its version.
    pub force: Option<ForceSnap>,
    /// `[routes.mirror]`, compiled; `None`: nothing is copied.
    pub mirror: Option<MirrorSnap>,
    /// `[[routes.signals]]`, compiled, by index.
    pub signals: Box<[SignalSnap]>,
}

/// `[routes.mirror]`, compiled.
#[derive(Debug)]
pub struct MirrorSnap {
    /// The version copies go to, by index; its `mirrored` stats count them.
    pub to: usize,
    /// A request is copied when a uniform `u32` falls below this.
    pub below: u32,
    pub compare: serin_config::Compare,
    pub max_body: u64,
    pub queue: usize,
    /// The same across reloads.
    pub log: Arc<crate::mirror::MirrorLog>,
}

/// One `[[routes.signals]]` entry, compiled.
#[derive(Debug)]
pub struct SignalSnap {
    pub name: Arc<str>,
    pub header: http::HeaderName,
    /// Pass the header on to the client.
    pub keep: bool,
}

/// `[routes.override]`, compiled: where a request names its version, and
/// which versions (by index) it may name.
#[derive(Debug)]
pub struct ForceSnap {
    pub header: Option<http::HeaderName>,
    pub cookie: Option<Box<str>>,
    /// `allowed[i]`: version `i` may be forced.
    pub allowed: Box<[bool]>,
    /// Forced requests also count in the version's own stats (rules see them).
    pub rules_include_forced: bool,
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
    /// Attempts of requests that forced this version (`[routes.override]`);
    /// `None` when the route forces nothing.
    pub forced: Option<Arc<VersionStats>>,
    /// Mirrored copies sent to this version and their comparisons
    /// (`[routes.mirror]`); `None` unless the route mirrors to it.
    pub mirrored: Option<Arc<VersionStats>>,
    /// The same `Arc` across table swaps.
    pub breaker: Arc<Breaker>,
    /// Active health (one atomic the pick reads); the same `Arc` across
    /// table swaps; `unknown` while the route has no health check.
    pub health: Arc<Health>,
    /// `serin_fallbacks_total{route, from: this, to: next}`, resolved once;
    /// `None` when the version has no next in the chain.
    pub fallback_counter: Option<metrics::Counter>,
    /// Drill fault switch; the same `Arc` across table swaps.
    pub drill: Arc<Fault>,
    /// TLS to an `https://` version (the same client configuration across
    /// table swaps while its settings do not change); `None` otherwise.
    pub tls: Option<serin_config::UpstreamTls>,
}

/// The swap point between the control plane and the data plane.
///
/// The data plane calls [`Live::load`] once per request: lock-free, no clone
/// of the table. Control-side changes go through `inner` (a plain mutex: it
/// is never touched by a request) and end in one `ArcSwap::store`.
pub struct Live {
    table: ArcSwap<Snapshot>,
    inner: Mutex<Inner>,
    /// `inner`'s config and state as of the last change, for readers: a
    /// reader never waits on a change in progress (which, in a fleet,
    /// waits on etcd).
    view: ArcSwap<View>,
    shared: Shared,
    /// Where the state is kept (`store.rs`).
    store: Arc<dyn Store>,
}

/// What readers see of [`Inner`].
struct View {
    config: Arc<Config>,
    state: LiveState,
}

struct Inner {
    config: Arc<Config>,
    state: LiveState,
    /// The store's version of `state`: what the next change is based on.
    version: u64,
}

// === impl Live ===

impl Live {
    /// A memory-only table compiled from `config` as revision `revision`.
    ///
    /// # Errors
    /// When a version URL cannot be used upstream (validation normally
    /// catches it first).
    pub fn new(config: Config, revision: &str, shared: Shared) -> Result<Self, LiveError> {
        let state = LiveState {
            revision: revision.to_owned(),
            ..LiveState::default()
        };
        Self::build(config, state, 0, shared, Arc::new(MemoryStore))
    }

    /// The table of a running serin: the live state saved in
    /// `config.state.dir` (weights, rollbacks, maintenance) is loaded and
    /// applied over the routing file, so a restart — `kill -9` included —
    /// loses no decision.
    ///
    /// # Errors
    /// When the saved state cannot be read or the table cannot be compiled.
    pub fn open(config: Config, shared: Shared) -> Result<Self, LiveError> {
        let store = Arc::new(LocalStore::new(&config.state.dir));
        Self::open_in(config, shared, store)
    }

    /// As [`Live::open`], with the state kept in `store` (a fleet's).
    ///
    /// # Errors
    /// As [`Live::open`], or the store cannot be read.
    pub fn open_in(
        config: Config,
        shared: Shared,
        store: Arc<dyn Store>,
    ) -> Result<Self, LiveError> {
        let (state, version) = match store.load()? {
            Some(stored) => {
                // A crash between the state's save and its audit line
                // (only this replica's own changes: a fleet's others are
                // mirrored as they come).
                if let (Some(event), None) = (&stored.saved.last_event, &stored.node) {
                    shared.events.recover(event);
                }
                (stored.saved.state, stored.version)
            }
            None => (
                LiveState {
                    revision: "r1".to_owned(),
                    ..LiveState::default()
                },
                0,
            ),
        };
        // A fleet's routing file in force wins over this replica's own
        // file (which may differ: `config_drift`).
        let config = match &state.routing {
            Some(r) => match r.config(&config) {
                Ok(fleet) => fleet,
                Err(e) => {
                    tracing::error!(revision = %r.revision, error = %e, "the fleet's routing file does not parse here; serving this replica's own");
                    config
                }
            },
            None => config,
        };
        Self::build(config, state, version, shared, store)
    }

    fn build(
        config: Config,
        state: LiveState,
        version: u64,
        shared: Shared,
        store: Arc<dyn Store>,
    ) -> Result<Self, LiveError> {
        let snapshot = compile::compile(&config, &state, &shared)?;
        weights_to_metrics(&snapshot);
        let config = Arc::new(config);
        Ok(Self {
            table: ArcSwap::from_pointee(snapshot),
            view: ArcSwap::from_pointee(View {
                config: config.clone(),
                state: state.clone(),
            }),
            inner: Mutex::new(Inner {
                config,
                state,
                version,
            }),
            shared,
            store,
        })
    }

    /// Puts `stored`, a state another replica saved, in force here: it is
    /// compiled over this replica's routing file (keeping this replica's
    /// revision) and swapped in, and its event is recorded in this
    /// replica's journal, saying which replica made the change. A state
    /// not newer than the one in force is ignored. Returns whether it was
    /// applied.
    ///
    /// # Errors
    /// The state does not compile over this routing file: nothing changed.
    pub fn adopt(&self, stored: Stored) -> Result<bool, LiveError> {
        let mut inner = self.lock();
        self.adopt_locked(&mut inner, stored)
    }

    fn adopt_locked(&self, inner: &mut Inner, stored: Stored) -> Result<bool, LiveError> {
        if stored.version <= inner.version {
            return Ok(false);
        }
        let mut next = stored.saved.state;
        // The fleet's routing file, when it published one this replica
        // does not run yet: with this replica's own node-local sections.
        let config = match &next.routing {
            Some(r) if inner.state.routing.as_ref().map(|o| &o.sha256) != Some(&r.sha256) => {
                let config = r.config(&inner.config).map_err(|e| {
                    LiveError::Refused(format!("the fleet's routing file {}: {e}", r.revision))
                })?;
                Arc::new(config)
            }
            _ => inner.config.clone(),
        };
        if next.routing.is_none() {
            next.revision = inner.state.revision.clone();
        }
        let snapshot = compile::compile(&config, &next, &self.shared)?;
        if let Some(mut event) = stored.saved.last_event {
            let node = stored.node.as_deref().unwrap_or("another replica");
            event.reason = format!("{} (on {node})", event.reason);
            self.shared.events.record_foreign(event);
        }
        inner.config = config;
        inner.state = next;
        inner.version = stored.version;
        self.publish(inner);
        weights_to_metrics(&snapshot);
        self.table.store(Arc::new(snapshot));
        Ok(true)
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

    /// The routing file the table was compiled from. Never waits on a
    /// change in progress.
    pub fn config(&self) -> Arc<Config> {
        self.view.load().config.clone()
    }

    /// `inner` as readers see it from now on.
    fn publish(&self, inner: &Inner) {
        self.view.store(Arc::new(View {
            config: inner.config.clone(),
            state: inner.state.clone(),
        }));
    }

    /// The state in force is the store's `version` now (a fleet's replica
    /// wrote back what it decided while partitioned: the same state, a
    /// newer version).
    pub fn advance(&self, version: u64) {
        let mut inner = self.lock();
        inner.version = inner.version.max(version);
    }

    /// Whether this replica's engine decides: alone, always; in a fleet,
    /// while it is the elected leader.
    pub fn decides(&self) -> bool {
        self.store.decides()
    }

    /// The fleet this replica belongs to, as last seen; `None` alone.
    pub fn fleet(&self) -> Option<crate::store::FleetView> {
        self.store.fleet()
    }

    /// Telemetry, breakers and the event journal.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The live state (what the routing file does not say). Never waits
    /// on a change in progress.
    pub fn state(&self) -> LiveState {
        self.view.load().state.clone()
    }

    /// The one way live state changes: `change` edits a copy of the state;
    /// the result is compiled, saved to the state directory, recorded as
    /// the event `draft`, and only then swapped in. When the draft names a
    /// route and carries no before/after, the route's weights before and
    /// after are filled in.
    ///
    /// # Errors
    /// `change`'s own refusal, an uncompilable result or a failed save:
    /// nothing changed then, and no event is recorded.
    pub fn update(
        &self,
        draft: Draft,
        change: impl FnOnce(&Config, &mut LiveState) -> Result<(), LiveError>,
    ) -> Result<Event, LiveError> {
        self.update_with(draft, |config, state, _| change(config, state))
    }

    /// As [`Live::update`], with the draft in reach of `change` (its kind
    /// or reason may depend on what the change finds).
    ///
    /// # Errors
    /// As [`Live::update`].
    pub fn update_with(
        &self,
        mut draft: Draft,
        change: impl FnOnce(&Config, &mut LiveState, &mut Draft) -> Result<(), LiveError>,
    ) -> Result<Event, LiveError> {
        let mut inner = self.lock();
        let mut next = inner.state.clone();
        change(&inner.config, &mut next, &mut draft)?;
        let (snapshot, event) = self.commit(&mut inner, None, next, draft)?;
        weights_to_metrics(&snapshot);
        self.table.store(Arc::new(snapshot));
        Ok(event)
    }

    /// Replaces the routing file: `merge` carries the live state over to
    /// the new file (see `reload.rs` for the rule), then as [`Live::update`].
    ///
    /// # Errors
    /// As [`Live::update`].
    pub fn replace_config(
        &self,
        config: Config,
        draft: Draft,
        merge: impl FnOnce(&Config, &Config, &mut LiveState),
    ) -> Result<Event, LiveError> {
        let mut inner = self.lock();
        let mut next = inner.state.clone();
        merge(&inner.config, &config, &mut next);
        let (snapshot, event) = self.commit(&mut inner, Some(Arc::new(config)), next, draft)?;
        weights_to_metrics(&snapshot);
        self.table.store(Arc::new(snapshot));
        Ok(event)
    }

    fn commit(
        &self,
        inner: &mut Inner,
        config: Option<Arc<Config>>,
        next: LiveState,
        mut draft: Draft,
    ) -> Result<(Snapshot, Event), LiveError> {
        let config = config.unwrap_or_else(|| inner.config.clone());
        let snapshot = compile::compile(&config, &next, &self.shared)?;
        if let (Some(route), true) = (draft.route.clone(), draft.before.is_null()) {
            draft.before = inner.state.weights_json(&inner.config, &route);
            draft.after = next.weights_json(&config, &route);
        }
        // Saved (with its event), then audited; the caller swaps last. No
        // request sees a change that is not stored, and a crash between
        // the save and the audit line is mended at the next start.
        let based_on = inner.version;
        let saved = self
            .shared
            .events
            .record_durably(draft, |event| self.store.save(based_on, &next, event));
        let (event, version) = match saved {
            Ok(done) => done,
            Err(StoreError::Conflict { current }) => {
                let message = format!(
                    "the state changed first on {} (version {}); nothing was applied, and \
                     that state is in force here now: retry on it",
                    current.node.as_deref().unwrap_or("another replica"),
                    current.version
                );
                let state = Box::new(current.saved.state.clone());
                if let Err(e) = self.adopt_locked(inner, *current) {
                    tracing::error!(error = %e, "the fleet's state does not compile here");
                }
                return Err(LiveError::Stale {
                    message,
                    current: state,
                });
            }
            Err(StoreError::Unavailable(m)) => return Err(LiveError::Unavailable(m)),
            Err(StoreError::Io(e)) => return Err(LiveError::Persist(e)),
        };
        inner.config = config;
        inner.state = next;
        inner.version = version;
        self.publish(inner);
        Ok((snapshot, event))
    }

    /// Sets live weights of `route` (versions not named keep theirs).
    ///
    /// Weights set by hand are the operator's intent: when they give a
    /// rolled-back (or rolling-back) canary traffic again, the route leaves
    /// that state and the engine judges the canary again from the next tick;
    /// the event's reason says so.
    ///
    /// # Errors
    /// Unknown route or version, a weight that is negative or not finite,
    /// or a result where every weight is zero. Nothing changes then.
    pub fn set_weights(
        &self,
        route: &str,
        weights: &BTreeMap<String, f64>,
        draft: Draft,
    ) -> Result<Event, LiveError> {
        self.update_with(draft.route(route), |config, state, draft| {
            let Some(r) = config.routes.iter().find(|r| r.name == route) else {
                return Err(LiveError::NoRoute(route.to_owned()));
            };
            if let Some(v) = weights
                .keys()
                .find(|v| !r.versions.iter().any(|rv| &rv.name == *v))
            {
                return Err(LiveError::NoVersion(route.to_owned(), v.clone()));
            }
            state
                .weights
                .entry(route.to_owned())
                .or_default()
                .extend(weights.iter().map(|(k, v)| (k.clone(), *v)));
            let back = state.routes.get(route).and_then(|rs| {
                let (canary, _) = rs.canary.as_ref()?;
                let pulled = matches!(rs.phase, Phase::RolledBack | Phase::RollingBack);
                (pulled && weights.get(canary).is_some_and(|w| *w > 0.0))
                    .then(|| (canary.clone(), rs.phase))
            });
            if let (Some((canary, phase)), true) = (&back, r.rollout.is_some()) {
                // A rollout route keeps the operator's weights too: paused
                // there (not restarted by the engine) until resumed.
                let rs = state.routes.entry(route.to_owned()).or_default();
                rs.phase = Phase::Paused;
                rs.step = None;
                rs.since = Some(crate::persist::now());
                draft.reason = format!(
                    "{}; {canary} back from {}: the engine judges it again, the rollout paused at these weights until resumed",
                    draft.reason,
                    phase.as_str()
                );
            } else if let Some((canary, phase)) = back {
                state.routes.remove(route);
                draft.reason = format!(
                    "{}; {canary} back from {}: the engine judges it again",
                    draft.reason,
                    phase.as_str()
                );
            } else if r.rollout.is_some() {
                // An operator's hand during a rollout (or before it began)
                // holds: the rollout pauses at these weights until resumed.
                let rs = state.routes.entry(route.to_owned()).or_default();
                if rs.phase == Phase::Progressing
                    || (rs.phase == Phase::Stable && rs.since.is_none())
                {
                    rs.phase = Phase::Paused;
                    rs.since = Some(crate::persist::now());
                    draft.reason = format!(
                        "{}; rollout paused at these weights until resumed",
                        draft.reason
                    );
                }
            }
            Ok(())
        })
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

/// `serin_route_weight` for every version of the table about to serve.
fn weights_to_metrics(snap: &Snapshot) {
    for r in snap.routes.iter() {
        crate::metrics::rollbacks_at_zero(&r.name);
        for v in r.versions.iter() {
            crate::metrics::route_weight(&r.name, &v.name, v.weight);
        }
    }
}
