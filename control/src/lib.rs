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
//! - [`api`]: the admin REST API (axum router).

pub mod api;
pub mod live;

pub use live::{Live, LiveError, RouteSnap, Snapshot, VersionSnap};
