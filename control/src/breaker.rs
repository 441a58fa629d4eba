//! The breakers' background task: opens a closed breaker when its
//! version's error rate over the breaker window reaches the threshold,
//! half-opens idle open breakers whose time is up, and turns every state
//! change into an event and the `serin_breaker_state` gauge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::event::{Actor, Draft, EventKind};
use crate::handle::BreakerState;
use crate::{Live, RouteSnap, VersionSnap};

/// How often breakers are evaluated: well under a second, so a failing
/// version is cut off within a few hundred milliseconds of the threshold.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Last seen state per (route, version), to notice changes made on the
/// request path (a half-open breaker closed or reopened by its probes).
type Seen = HashMap<(Arc<str>, Arc<str>), BreakerState>;

/// Runs the monitor until the task is aborted.
pub fn spawn(live: Arc<Live>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = Seen::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            check(&live, &mut seen);
        }
    })
}

/// One evaluation of every breaker in the current table.
pub(crate) fn check(live: &Live, seen: &mut Seen) {
    let snap = live.snapshot();
    for route in snap.routes.iter() {
        let Some(cfg) = &route.breaker else {
            // A breaker left open by a removed `[routes.breaker]` must not
            // keep its version cut off.
            for v in route.versions.iter() {
                if v.breaker.reset() != BreakerState::Closed {
                    record(
                        live,
                        route,
                        v,
                        EventKind::BreakerClosed,
                        "breaker settings removed",
                        "open",
                        "closed",
                    );
                }
            }
            continue;
        };
        for v in route.versions.iter() {
            let tripped = evaluate(live, route, v, cfg);
            let now = v.breaker.state();
            let key = (route.name.clone(), v.name.clone());
            let before = seen.insert(key, now).unwrap_or(BreakerState::Closed);
            crate::metrics::breaker_state(&route.name, &v.name, now as u8);
            if before != now && !tripped {
                note_change(live, route, v, before, now);
            }
        }
    }
}

/// Trips a closed breaker whose window crossed the threshold; half-opens
/// an idle open one. Returns true when it tripped (and recorded why).
fn evaluate(live: &Live, route: &RouteSnap, v: &VersionSnap, cfg: &serin_config::Breaker) -> bool {
    match v.breaker.state() {
        BreakerState::Closed => {
            // Failures from before the last close do not count again.
            let look = cfg.window.min(v.breaker.closed_for());
            let w = v.stats.tally(look);
            let Some(rate) = w.error_rate() else {
                return false;
            };
            if w.requests < cfg.min_requests || rate < cfg.error_rate {
                return false;
            }
            if !v.breaker.trip(cfg.open_for, cfg.half_open_probes) {
                return false;
            }
            let reason = format!(
                "error_rate {rate:.2} >= {:.2} over {} (n={}, {} errors)",
                cfg.error_rate,
                serin_config::format_duration(Duration::from_millis(look.as_millis() as u64)),
                w.requests,
                w.errors
            );
            live.shared().events.record(
                Draft::new(Actor::Engine, EventKind::BreakerOpened, reason)
                    .route(&route.name)
                    .version(&v.name)
                    .change(json!("closed"), json!("open")),
            );
            true
        }
        BreakerState::Open => {
            v.breaker.try_half_open();
            false
        }
        BreakerState::HalfOpen => false,
    }
}

fn note_change(
    live: &Live,
    route: &RouteSnap,
    v: &VersionSnap,
    before: BreakerState,
    now: BreakerState,
) {
    let (kind, reason) = match now {
        BreakerState::Closed => (EventKind::BreakerClosed, "half-open probes succeeded"),
        BreakerState::Open => (EventKind::BreakerOpened, "a half-open probe failed"),
        // Half-opening is not an event of its own: it only lets probes through.
        BreakerState::HalfOpen => return,
    };
    record(live, route, v, kind, reason, before.as_str(), now.as_str());
}

fn record(
    live: &Live,
    route: &RouteSnap,
    v: &VersionSnap,
    kind: EventKind,
    reason: &str,
    before: &str,
    after: &str,
) {
    live.shared().events.record(
        Draft::new(Actor::Engine, kind, reason)
            .route(&route.name)
            .version(&v.name)
            .change(json!(before), json!(after)),
    );
}
