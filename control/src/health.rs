//! Active health checks: the prober task that probes every version of a
//! route with `[routes.health_check]` (`health/prober.rs`, one probe each
//! in `health/probe.rs`) and feeds each result to the version's
//! [`Health`](crate::handle::Health) handle, which the pick reads.

mod probe;
pub(crate) mod prober;

pub use probe::{Connector, Failure, ProbeTarget, BODY_MAX, USER_AGENT};

#[cfg(test)]
mod tests;
