//! serin-loadtest: the load generator and the fake versions serin is tested
//! and benchmarked with.
//!
//! This crate owns `serin-load` (an open-loop HTTP load generator with HDR
//! latency histograms), fake versioned upstreams with run-time fault
//! injection, and, later, the benchmark and drill scenarios built from them.
//!
//! It depends on no other serin crate and speaks only HTTP: the proxy embeds
//! it for `serin demo`, the end-to-end tests use it as their upstreams and
//! client, and benchmark scripts run it against nginx the same way as
//! against serin.
//!
//! # Layout
//!
//! - [`upstream`]: [`FakeVersion`] servers (HTTP/1.1, h2c, upgrades) and
//!   their [`Faults`] switches.
//! - [`generator`]: [`LoadConfig`] and [`run`], the open-loop generator.
//! - [`report`]: the [`Report`] a run returns, as a table or JSON.
//! - [`checksum`]: FNV-1a, the body checksum of `/echo` and `/upload`.
//! - [`drill`]: `serin-load drill`, a rollback drill through serin's drills API.
//! - [`duration`]: `30s`-style durations for the command line.
//! - `main.rs`: the `serin-load` binary, a thin CLI over the above.

pub mod checksum;
pub mod drill;
pub mod duration;
pub mod generator;
pub mod report;
pub mod upstream;

pub use crate::generator::{run, LoadConfig, LoadError, Sticky};
pub use crate::report::{Progress, Report, X_SERIN_VERSION};
pub use crate::upstream::{FakeHandle, FakeVersion, Faults, SIGNAL_HEADER, X_UPSTREAM_VERSION};
