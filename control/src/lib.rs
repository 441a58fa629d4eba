//! serin-control: the control plane's state and decisions.
//!
//! It owns the live routing table (the one `Arc<Snapshot>` the data plane
//! reads through `arc-swap`), the live state that overrides the routing
//! file (weights, phases, maintenance), where that state is kept (the state
//! directory, or a fleet's etcd), the per-version handles, telemetry, the
//! rollback engine, the event journal and audit log, and the admin REST API.
//!
//! It must not sit on the request path beyond `Live::load`: everything a
//! request needs is compiled into the snapshot ahead of time. It opens no
//! data-plane socket. No file or etcd call waits on a data-plane or accept
//! thread: saves run on blocking threads, audit lines go to each log's one
//! writer thread.
//!
//! # Layout
//! The modules are private; what other crates use is the one `pub use`
//! block below.
//! - `handle`: the per-version handles the snapshot carries and reloads
//!   keep (breaker, health, drill fault switch, registries, `Shared`). A
//!   leaf: it knows nothing of the table, the engine or the API.
//! - `live`: `Live` (the swap point) and `Snapshot` (the compiled table);
//!   `live/compile.rs` turns a `Config` plus live state into a snapshot,
//!   `live/pick.rs` the cumulative pick table, `live/routes.rs` host/path
//!   matching. `Live` changes state only through the store.
//! - `store`: where live state is kept, the seam `Live` saves through (the
//!   state directory, `persist`; with feature `fleet`, etcd: `fleet`, shared
//!   by the replicas of a fleet).
//! - `event`: the event journal (every state change, actor and reason);
//!   `audit`: its hash-chained log and that log's writer thread;
//!   `incident`: every rollback's report, read off the journal.
//! - `engine`: the rollout and rollback engine (`decide` judges, `apply`
//!   acts); it owns its verdicts. `drill`: rehearsal faults, timed; it owns
//!   its registry of drills.
//! - `breaker`: the task that opens breakers; `health`: the prober task.
//! - `mirror`: what a route's `[routes.mirror]` sent, shed and found
//!   different (the copies are the data plane's; their stats telemetry's).
//! - `telemetry`: per-version and per-route counts and latency histograms
//!   in 1 s slots (sharded recording, packed slots, windows read on demand);
//!   `outcome`: what one attempt came to, the word they all count in.
//! - `metrics`: every `serin_*` Prometheus name and the `/metrics` recorder.
//! - `reload`: hot reload of the routing file (`reload/merge.rs` the rule
//!   that carries live state over, `reload/watch.rs` the debounced watcher
//!   task); `revisions`: every applied file, kept and restorable.
//! - `notify`: webhooks. `api`: the admin REST API (axum router) and `/ui`.

mod api;
mod audit;
mod breaker;
mod drill;
mod engine;
mod event;
#[cfg(feature = "fleet")]
mod fleet;
mod handle;
mod health;
mod incident;
mod live;
mod metrics;
mod mirror;
mod notify;
mod outcome;
mod persist;
mod reload;
mod revisions;
mod store;
mod telemetry;

pub use api::{endpoints as api_endpoints, router as api_router, ApiState, Auth};
pub use audit::verify as verify_audit_log;
pub use breaker::spawn as spawn_breaker_monitor;
pub use engine::Engine;
pub use event::{Actor, Draft, Event, EventKind, Events};
#[cfg(feature = "fleet")]
pub use fleet::{verify_cluster, EtcdStore};
pub use handle::{Admit, Breaker, Injection, Shared};
pub use health::prober::spawn as spawn_prober;
pub use health::{
    Connector, Failure, ProbeTarget, BODY_MAX as PROBE_BODY_MAX, USER_AGENT as PROBE_USER_AGENT,
};
pub use incident::{list as incidents, markdown as incident_markdown};
pub use live::{
    FallbackSnap, ForceSnap, Live, LiveError, Maintenance, MirrorSnap, RouteSnap, SignalSnap,
    Snapshot, VersionSnap,
};
pub use mirror::{stamp as mirror_stamp, Answer, InFlight, Mismatch};
pub use notify::spawn as spawn_notifiers;
pub use outcome::Outcome;
pub use persist::LiveState;
pub use reload::watch::{watch as watch_routing_file, Watch};
pub use reload::{ReloadError, Reloader};
pub use store::{Store, StoreError};
pub use telemetry::{SignalValues, Telemetry, VersionStats};
