//! serin-control: the control plane's state and decisions.
//!
//! It owns the live routing table (the one `Arc<Snapshot>` the data plane
//! reads through `arc-swap`), the live weights that override the routing
//! file, and the admin REST API. Later modules add per-version telemetry
//! windows, the rollback engine, persisted state and the audit log.
//!
//! It must not sit on the request path beyond `Live::load`: everything a
//! request needs is compiled into the snapshot ahead of time. It opens no
//! data-plane socket.
//!
//! # Layout
//! - [`live`]: `Live` (the swap point) and `Snapshot` (the compiled table);
//!   `live/compile.rs` turns a `Config` plus live weights into a snapshot,
//!   `live/pick.rs` the cumulative pick table, `live/routes.rs` host/path matching.
//! - [`breaker`]: per-version circuit breakers (atomics the request path
//!   reads) and `breaker/monitor.rs`, the task that opens them.
//! - [`event`]: the event journal (every state change, actor and reason);
//!   [`incident`]: every rollback's report, read off that journal.
//! - [`engine`]: the rollout and rollback engine (`decide` judges, `apply`
//!   acts); [`drill`]: rehearsal faults, timed.
//! - [`health`]: active health checks (an atomic per version the pick
//!   reads) and `health/prober.rs`, the task that probes every version.
//! - [`mirror`]: what a route's `[routes.mirror]` sent, shed and found
//!   different (the copies are the data plane's; their stats telemetry's).
//! - [`registry`]: long-lived per-(route, version) objects across reloads.
//! - [`telemetry`]: per-version and per-route counts and latency histograms
//!   in 1 s slots (sharded recording, packed slots, windows read on demand).
//! - [`metrics`]: every `serin_*` Prometheus name and the `/metrics` recorder.
//! - [`reload`]: hot reload of the routing file (`reload/merge.rs` the rule
//!   that carries live state over, `reload/watch.rs` the debounced watcher
//!   task); [`revisions`]: every applied file, kept and restorable.
//! - [`store`]: where live state is kept, the seam `Live` saves through
//!   (the state directory alone; [`fleet`], with feature `fleet`: etcd,
//!   shared by the replicas of a fleet).
//! - [`api`]: the admin REST API (axum router).

pub mod api;
pub mod audit;
pub mod breaker;
pub mod drill;
pub mod engine;
pub mod event;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod health;
pub mod incident;
pub mod live;
pub mod metrics;
pub mod mirror;
pub mod notify;
pub mod persist;
pub mod registry;
pub mod reload;
pub mod revisions;
pub mod store;
pub mod telemetry;

pub use live::{
    FallbackSnap, ForceSnap, Live, LiveError, MirrorSnap, RouteSnap, Shared, SignalSnap, Snapshot,
    VersionSnap,
};
