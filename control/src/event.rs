//! Events: every state change, by whom and why, in SPEC.md's shape.
//!
//! `Events` is the journal: a bounded in-memory ring the API reads, a
//! broadcast for followers and, when serin has a state directory, the
//! hash-chained audit log (`audit.rs`) each event is written to durably
//! before `record` returns. It is control-side only: the request path never
//! records an event; background tasks and API handlers do.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::audit::AuditLog;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Engine,
    Api,
    File,
    Signal,
}

/// What happened: every kind of event serin records. Stored and served
/// as its snake_case name (`EventKind::LevelBreached` is
/// `"level_breached"`), which is what webhooks filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    ConfigApplied,
    ConfigRejected,
    TlsReloaded,
    TlsRejected,
    WeightsChanged,
    MaintenanceOn,
    MaintenanceOff,
    /// A level's rules started to hold.
    LevelBreached,
    /// A breached level's rules stopped holding.
    LevelCleared,
    /// Too few requests in the window to judge.
    Inconclusive,
    /// A `shadow` rule started to hold.
    ShadowBreached,
    /// What the engine would have done (`dry_run`).
    DryRun,
    Alert,
    RollbackStarted,
    RollbackStep,
    RollbackCompleted,
    RolloutStep,
    Promoted,
    Paused,
    Resumed,
    BreakerOpened,
    BreakerClosed,
    HealthChanged,
    HealthFailOpen,
    HealthFailOpenEnded,
    DrillStarted,
    /// A rollback's canary reached 0: the incident's client-visible numbers.
    IncidentClosed,
    /// A fleet's replica cut off from etcd past `partition_after`: it
    /// judges and decides alone.
    FleetPartitioned,
    /// It reached etcd again: its decisions written back, or dropped for
    /// the fleet's newer state (the reason says which).
    FleetRejoined,
}

/// One recorded change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub seq: u64,
    /// RFC 3339 with milliseconds, UTC.
    pub time: String,
    pub actor: Actor,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub before: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub after: Value,
    pub reason: String,
    /// The previous entry's hash (the audit log's chain); empty in memory-only journals.
    #[serde(default)]
    pub prev_hash: String,
    #[serde(default)]
    pub hash: String,
}

/// What a caller says about a change; `Events::record` adds seq and time.
#[derive(Debug, Clone)]
pub struct Draft {
    pub actor: Actor,
    pub kind: EventKind,
    pub route: Option<String>,
    pub version: Option<String>,
    pub before: Value,
    pub after: Value,
    pub reason: String,
}

/// The journal.
#[derive(Debug)]
pub struct Events {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Event>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Ring {
    next_seq: u64,
    events: VecDeque<Event>,
    audit: Option<AuditLog>,
    /// Events whose audit write failed, oldest first: appended before the
    /// next one, so the log keeps every seq in order.
    unwritten: Vec<Event>,
}

/// `draft` as the next event: seq and time assigned, not yet chained.
fn stamp(ring: &Ring, draft: Draft) -> Event {
    Event {
        seq: ring.next_seq,
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        actor: draft.actor,
        kind: draft.kind.as_str().to_owned(),
        route: draft.route,
        version: draft.version,
        before: draft.before,
        after: draft.after,
        reason: draft.reason,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

// === impl EventKind ===

impl EventKind {
    /// Every kind, for docs and for checking webhook filters.
    pub const ALL: [Self; 29] = [
        Self::ConfigApplied,
        Self::ConfigRejected,
        Self::TlsReloaded,
        Self::TlsRejected,
        Self::WeightsChanged,
        Self::MaintenanceOn,
        Self::MaintenanceOff,
        Self::LevelBreached,
        Self::LevelCleared,
        Self::Inconclusive,
        Self::ShadowBreached,
        Self::DryRun,
        Self::Alert,
        Self::RollbackStarted,
        Self::RollbackStep,
        Self::RollbackCompleted,
        Self::RolloutStep,
        Self::Promoted,
        Self::Paused,
        Self::Resumed,
        Self::BreakerOpened,
        Self::BreakerClosed,
        Self::HealthChanged,
        Self::HealthFailOpen,
        Self::HealthFailOpenEnded,
        Self::DrillStarted,
        Self::IncidentClosed,
        Self::FleetPartitioned,
        Self::FleetRejoined,
    ];

    /// The name events carry.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConfigApplied => "config_applied",
            Self::ConfigRejected => "config_rejected",
            Self::TlsReloaded => "tls_reloaded",
            Self::TlsRejected => "tls_rejected",
            Self::WeightsChanged => "weights_changed",
            Self::MaintenanceOn => "maintenance_on",
            Self::MaintenanceOff => "maintenance_off",
            Self::LevelBreached => "level_breached",
            Self::LevelCleared => "level_cleared",
            Self::Inconclusive => "inconclusive",
            Self::ShadowBreached => "shadow_breached",
            Self::DryRun => "dry_run",
            Self::Alert => "alert",
            Self::RollbackStarted => "rollback_started",
            Self::RollbackStep => "rollback_step",
            Self::RollbackCompleted => "rollback_completed",
            Self::RolloutStep => "rollout_step",
            Self::Promoted => "promoted",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::BreakerOpened => "breaker_opened",
            Self::BreakerClosed => "breaker_closed",
            Self::HealthChanged => "health_changed",
            Self::HealthFailOpen => "health_fail_open",
            Self::HealthFailOpenEnded => "health_fail_open_ended",
            Self::DrillStarted => "drill_started",
            Self::IncidentClosed => "incident_closed",
            Self::FleetPartitioned => "fleet_partitioned",
            Self::FleetRejoined => "fleet_rejoined",
        }
    }

    /// The kind named `s`, if serin records it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<EventKind> for String {
    fn eq(&self, other: &EventKind) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<EventKind> for str {
    fn eq(&self, other: &EventKind) -> bool {
        self == other.as_str()
    }
}

// === impl Draft ===

impl Draft {
    /// A change with no before/after values.
    pub fn new(actor: Actor, kind: EventKind, reason: impl Into<String>) -> Self {
        Self {
            actor,
            kind,
            route: None,
            version: None,
            before: Value::Null,
            after: Value::Null,
            reason: reason.into(),
        }
    }

    /// Names the route.
    pub fn route(mut self, route: &str) -> Self {
        self.route = Some(route.to_owned());
        self
    }

    /// Names the version.
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// Values before and after the change.
    pub fn change(mut self, before: Value, after: Value) -> Self {
        self.before = before;
        self.after = after;
        self
    }
}

// === impl Events ===

impl Default for Events {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl Events {
    /// A journal keeping the last `capacity` events in memory.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            ring: Mutex::new(Ring {
                next_seq: 1,
                events: VecDeque::new(),
                audit: None,
                unwritten: Vec::new(),
            }),
            tx,
            capacity: capacity.max(1),
        }
    }

    /// A journal backed by `dir/audit.log` (created with `dir` if missing);
    /// the events already in the log are loaded and the chain continues.
    ///
    /// # Errors
    /// When the directory or the log cannot be created or read.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (audit, past) = AuditLog::open(&dir.join("audit.log"))?;
        let me = Self::default();
        {
            let mut ring = me.ring.lock().unwrap_or_else(|p| p.into_inner());
            ring.next_seq = past.last().map_or(1, |e| e.seq + 1);
            let skip = past.len().saturating_sub(me.capacity);
            ring.events.extend(past.into_iter().skip(skip));
            ring.audit = Some(audit);
        }
        Ok(me)
    }

    /// Records an event that changes no saved state (a breaker opened, a
    /// file refused) and returns it as stored. With an audit log, the event
    /// is on disk before this returns; a failed write is logged loudly and
    /// the event is kept in memory.
    pub fn record(&self, draft: Draft) -> Event {
        let mut ring = self.lock();
        let event = stamp(&ring, draft);
        self.publish(&mut ring, event)
    }

    /// Records the event of a state change: `save` gets the event with its
    /// seq and time and makes the new state durable (with the event in it)
    /// before the event is appended to the audit log. No other event can
    /// come in between, so the saved event's seq is the next line's.
    ///
    /// # Errors
    /// `save`'s: nothing is recorded then, and the seq is not used.
    pub fn record_durably<T, E>(
        &self,
        draft: Draft,
        save: impl FnOnce(&Event) -> Result<T, E>,
    ) -> Result<(Event, T), E> {
        let mut ring = self.lock();
        let event = stamp(&ring, draft);
        let saved = save(&event)?;
        Ok((self.publish(&mut ring, event), saved))
    }

    /// Records an event another replica of the fleet recorded (its actor,
    /// kind, reason and time kept), as this journal's next entry.
    pub fn record_foreign(&self, mut event: Event) -> Event {
        let mut ring = self.lock();
        event.seq = ring.next_seq;
        event.prev_hash.clear();
        event.hash.clear();
        self.publish(&mut ring, event)
    }

    /// Appends `event`, saved with a state whose audit line a crash (or a
    /// failed write) lost, if the log does not have it yet: its seq is the
    /// next one. Returns whether it was appended.
    pub fn recover(&self, event: &Event) -> bool {
        let mut ring = self.lock();
        if event.seq != ring.next_seq {
            return false;
        }
        tracing::warn!(seq = event.seq, kind = %event.kind, "audit: the last change's entry was missing; appended from the state file");
        self.publish(&mut ring, event.clone());
        true
    }

    fn publish(&self, ring: &mut Ring, mut event: Event) -> Event {
        let Ring {
            audit, unwritten, ..
        } = ring;
        if let Some(audit) = audit.as_mut() {
            while let Some(first) = unwritten.first_mut() {
                if audit.append(first).is_err() {
                    break;
                }
                unwritten.remove(0);
            }
            let appended = if unwritten.is_empty() {
                audit.append(&mut event)
            } else {
                Err(std::io::Error::other("earlier entries are not written yet"))
            };
            if let Err(e) = appended {
                tracing::error!(path = %audit.path().display(), error = %e, pending = unwritten.len() + 1, "audit log write failed; retried with the next event");
                unwritten.push(event.clone());
            }
        }
        ring.next_seq = event.seq + 1;
        if ring.events.len() == self.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        tracing::info!(
            kind = %event.kind,
            route = event.route.as_deref().unwrap_or("-"),
            version = event.version.as_deref().unwrap_or("-"),
            reason = %event.reason,
            "event"
        );
        // No follower is fine.
        let _ = self.tx.send(event.clone());
        event
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events with `seq > since`, optionally of one route, oldest first.
    pub fn since(&self, since: u64, route: Option<&str>) -> Vec<Event> {
        let ring = self.lock();
        ring.events
            .iter()
            .filter(|e| e.seq > since && route.is_none_or(|r| e.route.as_deref() == Some(r)))
            .cloned()
            .collect()
    }

    /// New events as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
