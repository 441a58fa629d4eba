//! The per-version handles: what the compiler wires into each version of
//! every snapshot and what outlives table swaps, so a reload keeps a
//! version's telemetry, breaker, health, drill switch, mirror log and TLS
//! client. The request path reads them through the snapshot (atomics, and
//! telemetry's sharded recording); their background tasks (`breaker.rs`,
//! `health.rs`, `drill.rs`) and the engine drive them.
//!
//! A leaf: it knows nothing of the live table, the engine or the API.

mod breaker;
mod fault;
mod health;
mod registry;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) use breaker::BreakerState;
pub use breaker::{Admit, Breaker};
pub use fault::Injection;
pub(crate) use fault::{Fault, Scenario};
pub use health::Failure;
pub(crate) use health::{Health, HealthState, Transition};
pub(crate) use registry::Registry;

use crate::event::Events;
use crate::mirror::MirrorLog;
use crate::telemetry::Telemetry;

/// Long-lived per-(route, version) state the compiler wires into every
/// snapshot, so telemetry and breakers survive reloads.
#[derive(Debug, Default)]
pub struct Shared {
    pub telemetry: Arc<Telemetry>,
    pub breakers: Registry<Breaker>,
    pub health: Registry<Health>,
    pub events: Arc<Events>,
    /// Drill fault switches per (route, version).
    pub faults: Registry<Fault>,
    /// Mirror counters and samples per (route, mirrored version).
    pub mirrors: Registry<MirrorLog>,
    /// The TLS settings of `https://` versions in force, one value per
    /// distinct setting: a reload that keeps a version's settings keeps
    /// its client configuration, so pooled connections and TLS sessions
    /// (resumption) outlive the swap.
    pub upstream_tls: UpstreamTlsRegistry,
}

/// See [`Shared::upstream_tls`].
#[derive(Debug, Default)]
pub struct UpstreamTlsRegistry {
    known: Mutex<Vec<serin_config::UpstreamTls>>,
}

// === impl UpstreamTlsRegistry ===

impl UpstreamTlsRegistry {
    /// The value in use that equals `tls`, or `tls` itself from now on.
    /// Settings no table uses any more are forgotten.
    pub fn canonical(&self, tls: &serin_config::UpstreamTls) -> serin_config::UpstreamTls {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.retain(|k| Arc::strong_count(&k.client) > 1);
        if let Some(k) = known.iter().find(|k| *k == tls) {
            return k.clone();
        }
        known.push(tls.clone());
        tls.clone()
    }
}

// === impl Shared ===

impl Shared {
    /// Shared state whose event journal is the audit log in `state_dir`.
    ///
    /// # Errors
    /// When the audit log cannot be opened.
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            events: Arc::new(Events::open(state_dir)?),
            ..Self::default()
        })
    }
}
