//! The prober: one background task for the whole process that keeps one
//! probe loop per (route, version) of every route with
//! `[routes.health_check]`, following table swaps.
//!
//! Every [`SYNC`] (and whenever a probe loop reports a transition) the
//! supervisor compares the current snapshot and routing file with the ones
//! it last saw; on a change it starts loops for new versions, stops loops of
//! removed ones and restarts loops whose settings changed. A probe loop
//! probes, feeds [`Health::observe`], and turns each transition into a
//! `health_changed` event and the `serin_version_healthy` gauge. The
//! supervisor also notices when every weighted version of a route is
//! unhealthy — the pick then fails open — and records `health_fail_open`
//! (and `health_fail_open_ended` when it is over).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use serin_config::{Config, HealthCheck};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::probe::{self, Connector, ProbeTarget};
use crate::event::{Actor, Draft, EventKind};
use crate::handle::{Health, HealthState, Transition};
use crate::{Live, RouteSnap, Snapshot};

/// How often the supervisor looks for a new table.
pub(crate) const SYNC: Duration = Duration::from_secs(1);

/// A probe loop's schedule varies by this fraction either way, so the
/// versions of a route are not probed in lockstep.
const JITTER: f64 = 0.1;

type Key = (Arc<str>, Arc<str>);

/// What a probe loop was started with; a change restarts it.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    to: ProbeTarget,
    check: HealthCheck,
}

/// The supervisor's state; dropping it aborts every probe loop.
#[derive(Debug)]
pub(crate) struct Prober {
    live: Arc<Live>,
    connector: Arc<dyn Connector>,
    loops: HashMap<Key, Running>,
    tasks: JoinSet<()>,
    /// Probe loops ping this after a transition, so fail-open is noticed at once.
    wake: Arc<Notify>,
    /// Routes currently failing open.
    fail_open: HashSet<Arc<str>>,
    seen: Option<(Arc<Snapshot>, Arc<Config>)>,
}

#[derive(Debug)]
struct Running {
    target: Target,
    abort: AbortHandle,
    /// Probes of this target in flight (a hanging endpoint must hold at
    /// most one connection): read by the test that says so.
    #[cfg_attr(not(test), allow(dead_code))]
    in_flight: Arc<AtomicUsize>,
}

/// Runs the prober until the task is aborted (which stops every probe).
pub fn spawn(live: Arc<Live>, connector: Arc<dyn Connector>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut prober = Prober::new(live, connector);
        let wake = prober.wake.clone();
        let mut tick = tokio::time::interval(SYNC);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = wake.notified() => {}
            }
            prober.sync();
            prober.check_fail_open();
        }
    })
}

// === impl Prober ===

impl Prober {
    /// A prober with no loop running yet; [`Prober::sync`] starts them.
    /// Probes reach versions through `connector`.
    pub(crate) fn new(live: Arc<Live>, connector: Arc<dyn Connector>) -> Self {
        Self {
            live,
            connector,
            loops: HashMap::new(),
            tasks: JoinSet::new(),
            wake: Arc::new(Notify::new()),
            fail_open: HashSet::new(),
            seen: None,
        }
    }

    /// Brings the probe loops in line with the current table; does nothing
    /// when neither the snapshot nor the routing file changed.
    pub(crate) fn sync(&mut self) {
        // Aborted loops are reaped here so the set does not grow.
        while self.tasks.try_join_next().is_some() {}
        let snap = self.live.snapshot();
        let config = self.live.config();
        if let Some((s, c)) = &self.seen {
            if Arc::ptr_eq(s, &snap) && Arc::ptr_eq(c, &config) {
                return;
            }
        }
        let mut wanted: HashMap<Key, (Target, Arc<Health>)> = HashMap::new();
        for route in snap.routes.iter() {
            let check = config
                .routes
                .iter()
                .find(|r| *r.name == *route.name)
                .and_then(|r| r.health_check.clone());
            for v in route.versions.iter() {
                let key = (route.name.clone(), v.name.clone());
                match &check {
                    Some(check) => {
                        let target = Target {
                            to: probe_target(v, &check.path),
                            check: check.clone(),
                        };
                        wanted.insert(key, (target, v.health.clone()));
                    }
                    // A verdict left by a removed check must not keep the
                    // version out of the pick.
                    None => self.forget(&key, &v.health, "health check removed"),
                }
            }
        }
        let gone: Vec<Key> = self
            .loops
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(r) = self.loops.remove(&key) {
                r.abort.abort();
            }
            // The version left the table; should it come back, it starts over.
            self.live.shared().health.get(&key.0, &key.1).reset();
        }
        for (key, (target, health)) in wanted {
            if self.loops.get(&key).is_some_and(|r| r.target == target) {
                continue;
            }
            if let Some(old) = self.loops.remove(&key) {
                old.abort.abort();
            }
            self.start(key, target, health);
        }
        self.seen = Some((snap, config));
    }

    /// Records `health_fail_open` for each route whose weighted versions
    /// are all unhealthy (the pick sends traffic as if all were healthy),
    /// and `health_fail_open_ended` once one of them is back.
    pub(crate) fn check_fail_open(&mut self) {
        let snap = self.live.snapshot();
        let mut still = HashSet::new();
        for route in snap.routes.iter() {
            if !self.loops.keys().any(|(r, _)| *r == route.name) {
                continue;
            }
            let Some(down) = all_weighted_unhealthy(route) else {
                continue;
            };
            still.insert(route.name.clone());
            if self.fail_open.contains(&route.name) {
                continue;
            }
            let reason = format!(
                "every weighted version is unhealthy ({down}): traffic is sent as if all were healthy"
            );
            self.record_route(route, EventKind::HealthFailOpen, reason);
        }
        for route in self.fail_open.difference(&still) {
            if let Some(r) = snap.routes.iter().find(|r| r.name == *route) {
                let reason = "a weighted version is healthy again: unhealthy versions are skipped";
                self.record_route(r, EventKind::HealthFailOpenEnded, reason.to_owned());
            }
        }
        self.fail_open = still;
    }

    /// Probes in flight for (`route`, `version`): 0 or 1 by construction
    /// (a loop awaits its probe, and a timed-out probe is dropped).
    #[cfg(test)]
    pub(crate) fn in_flight(&self, route: &str, version: &str) -> Option<usize> {
        self.loops
            .iter()
            .find(|((r, v), _)| **r == *route && **v == *version)
            .map(|(_, running)| running.in_flight.load(Acquire))
    }

    fn start(&mut self, key: Key, target: Target, health: Arc<Health>) {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let probe_loop = ProbeLoop {
            live: self.live.clone(),
            connector: self.connector.clone(),
            route: key.0.clone(),
            version: key.1.clone(),
            target: target.clone(),
            health,
            wake: self.wake.clone(),
            in_flight: in_flight.clone(),
        };
        let abort = self.tasks.spawn(probe_loop.run());
        self.loops.insert(
            key,
            Running {
                target,
                abort,
                in_flight,
            },
        );
    }

    fn forget(&mut self, key: &Key, health: &Health, reason: &str) {
        if let Some(r) = self.loops.remove(key) {
            r.abort.abort();
        }
        let before = health.reset();
        if before != HealthState::Unknown {
            record(&self.live, key, before, HealthState::Unknown, reason);
        }
    }

    fn record_route(&self, route: &RouteSnap, kind: EventKind, reason: String) {
        self.live
            .shared()
            .events
            .record(Draft::new(Actor::Engine, kind, reason).route(&route.name));
    }
}

/// The names of the weighted versions when every one of them is
/// unhealthy; `None` when at least one is not.
fn all_weighted_unhealthy(route: &RouteSnap) -> Option<String> {
    let mut weighted = route.versions.iter().filter(|v| v.weight > 0.0).peekable();
    weighted.peek()?;
    let mut names = Vec::new();
    for v in weighted {
        if !v.health.is_unhealthy() {
            return None;
        }
        names.push(&*v.name);
    }
    Some(names.join(", "))
}

/// Where a version's probes go.
fn probe_target(v: &crate::VersionSnap, path: &str) -> ProbeTarget {
    ProbeTarget {
        scheme: v.scheme.clone(),
        authority: v.authority.clone(),
        tls: v.tls.clone(),
        // Validation makes the path start with '/'; should it still not
        // parse, the probe goes to the root rather than not at all.
        path: path
            .parse()
            .unwrap_or_else(|_| http::uri::PathAndQuery::from_static("/")),
    }
}

fn record(live: &Live, key: &Key, before: HealthState, after: HealthState, reason: &str) {
    crate::metrics::version_healthy(&key.0, &key.1, after == HealthState::Unhealthy);
    live.shared().events.record(
        Draft::new(Actor::Engine, EventKind::HealthChanged, reason)
            .route(&key.0)
            .version(&key.1)
            .change(json!(before.as_str()), json!(after.as_str())),
    );
}

/// One version's probe loop.
struct ProbeLoop {
    live: Arc<Live>,
    connector: Arc<dyn Connector>,
    route: Arc<str>,
    version: Arc<str>,
    target: Target,
    health: Arc<Health>,
    wake: Arc<Notify>,
    in_flight: Arc<AtomicUsize>,
}

// === impl ProbeLoop ===

impl ProbeLoop {
    /// Probes until aborted. Probes are sequential: the next starts one
    /// (jittered) interval after the previous one started, or at once when
    /// that one took longer, so at most one is ever in flight.
    async fn run(self) {
        let check = &self.target.check;
        let key = (self.route.clone(), self.version.clone());
        let latency = crate::metrics::health_probe_duration(&self.route, &self.version);
        self.health.restart_counts();
        crate::metrics::version_healthy(&self.route, &self.version, self.health.is_unhealthy());
        // The first probe comes soon, but not at the same instant for every version.
        tokio::time::sleep(check.interval.mul_f64(JITTER * fastrand::f64())).await;
        loop {
            let start = Instant::now();
            self.in_flight.fetch_add(1, AcqRel);
            let (result, took) =
                probe::probe(&*self.connector, &self.target.to, check.timeout).await;
            self.in_flight.fetch_sub(1, AcqRel);
            latency.record(took.as_secs_f64());
            let seen = self
                .health
                .observe(result, check.unhealthy_after, check.healthy_after);
            if let Some(Transition {
                before,
                after,
                reason,
            }) = seen
            {
                record(&self.live, &key, before, after, &reason);
                self.wake.notify_one();
            }
            let jitter = 1.0 + JITTER * (2.0 * fastrand::f64() - 1.0);
            tokio::time::sleep_until(start + check.interval.mul_f64(jitter)).await;
        }
    }
}
