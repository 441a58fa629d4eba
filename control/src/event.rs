//! Events: every state change, by whom and why, in SPEC.md's shape.
//!
//! `Events` is the journal: a bounded in-memory ring the API reads, a
//! broadcast for followers and, when serin has a state directory, the
//! hash-chained audit log (`audit.rs`). The journal chains each event and
//! hands its line to the log's writer thread: `record` never waits on the
//! disk (it is called from tasks beside the accept loops), and
//! `record_durably`, the record of a state change, returns once its line
//! is on disk. It is control-side only: the request path never records an
//! event; background tasks and API handlers do.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::audit::{AuditWriter, Ticket};

/// How long the record of a state change waits for its audit line: a
/// disk slower than this is logged, and the line written when it can be.
const DURABLE_WAIT: Duration = Duration::from_secs(5);

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
    audit: Option<AuditWriter>,
    /// The chain's last hash: the next entry's `prev_hash`.
    head: String,
}

/// `draft` as an event: its time assigned; its seq and chain are the
/// journal's to give when it is published.
fn stamp(draft: Draft) -> Event {
    Event {
        seq: 0,
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

// === impl Event ===

impl Event {
    /// Chains this event after an entry whose hash is `prev_hash`: fills
    /// its `prev_hash` and `hash` (the audit log's rule, `audit.rs`).
    ///
    /// # Errors
    /// When the event cannot be serialized.
    pub(crate) fn chain(&mut self, prev_hash: &str) -> std::io::Result<()> {
        prev_hash.clone_into(&mut self.prev_hash);
        self.hash = crate::audit::entry_hash(&serde_json::to_value(&*self)?);
        Ok(())
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
                head: crate::audit::GENESIS.to_owned(),
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
        let (audit, past) = AuditWriter::open::<Event>(&dir.join("audit.log"))?;
        let me = Self::default();
        {
            let mut ring = me.ring.lock().unwrap_or_else(|p| p.into_inner());
            ring.next_seq = past.last().map_or(1, |e| e.seq + 1);
            if let Some(last) = past.last() {
                ring.head.clone_from(&last.hash);
            }
            let skip = past.len().saturating_sub(me.capacity);
            ring.events.extend(past.into_iter().skip(skip));
            ring.audit = Some(audit);
        }
        Ok(me)
    }

    /// Records an event that changes no saved state (a breaker opened, a
    /// file refused) and returns it as stored. With an audit log, its line
    /// is handed to the log's writer: on disk within milliseconds, without
    /// this caller waiting ([`Events::flush`] waits).
    pub fn record(&self, draft: Draft) -> Event {
        let event = stamp(draft);
        let mut ring = self.lock();
        self.publish(&mut ring, event).0
    }

    /// Records the event of a state change: `save` gets the event with its
    /// time (its seq is the journal's to give) and makes the new state
    /// durable, the event in it, before the event is journaled; this
    /// returns once its audit line is on disk too. A crash in between
    /// leaves the event in the saved state, and [`Events::recover`] puts
    /// it in the log at the next start. The journal is not held while
    /// `save` runs (a fleet's is a round trip to etcd): other events are
    /// recorded meanwhile. Callers serialize their state changes.
    ///
    /// # Errors
    /// `save`'s: nothing is recorded then.
    pub fn record_durably<T, E>(
        &self,
        draft: Draft,
        save: impl FnOnce(&Event) -> Result<T, E>,
    ) -> Result<(Event, T), E> {
        let event = stamp(draft);
        let saved = save(&event)?;
        let mut ring = self.lock();
        let (event, ticket) = self.publish(&mut ring, event);
        drop(ring);
        if let Some(ticket) = ticket {
            self.wait(ticket);
        }
        Ok((event, saved))
    }

    /// Waits until every event recorded so far is on disk (a shutdown, a
    /// reader of the file), as long as a state change would.
    pub fn flush(&self) {
        let last = self.lock().audit.as_ref().map(AuditWriter::last);
        if let Some(ticket) = last {
            self.wait(ticket);
        }
    }

    fn wait(&self, ticket: Ticket) {
        let ring = self.lock();
        let Some(audit) = ring.audit.as_ref() else {
            return;
        };
        // Waiting must not hold the journal: other events go on.
        let waiter = audit.waiter();
        let path = audit.path().to_owned();
        drop(ring);
        if !waiter.wait(ticket, DURABLE_WAIT) {
            tracing::error!(path = %path.display(), "audit log: an entry is not on disk yet; written when the disk takes it");
        }
    }

    /// Records an event another replica of the fleet recorded (its actor,
    /// kind, reason and time kept), as this journal's next entry.
    pub fn record_foreign(&self, mut event: Event) -> Event {
        let mut ring = self.lock();
        event.prev_hash.clear();
        event.hash.clear();
        self.publish(&mut ring, event).0
    }

    /// Appends `event`, saved with a state whose audit line a crash lost,
    /// if the journal does not hold it (the same time, kind, route, version
    /// and reason) and is not newer than it: as the next entry. Returns
    /// whether it was appended; once it is, it is on disk.
    pub fn recover(&self, event: &Event) -> bool {
        let mut ring = self.lock();
        let same = |e: &Event| {
            (&e.time, &e.kind, &e.route, &e.version, &e.reason)
                == (
                    &event.time,
                    &event.kind,
                    &event.route,
                    &event.version,
                    &event.reason,
                )
        };
        // Times are RFC 3339 UTC with milliseconds: they sort as text. An
        // entry older than the ring's oldest is not judged (it was written
        // long ago, or the ring would hold it).
        let older = ring.events.front().is_some_and(|e| event.time < e.time)
            && ring.events.len() == self.capacity;
        if older || ring.events.iter().rev().any(same) {
            return false;
        }
        tracing::warn!(kind = %event.kind, time = %event.time, "audit: the last change's entry was missing; appended from the state file");
        let (_, ticket) = self.publish(&mut ring, event.clone());
        drop(ring);
        if let Some(ticket) = ticket {
            self.wait(ticket);
        }
        true
    }

    /// `event` as the journal's next entry: chained, handed to the audit
    /// writer (the ticket of its line), kept in the ring, broadcast.
    fn publish(&self, ring: &mut Ring, mut event: Event) -> (Event, Option<Ticket>) {
        event.seq = ring.next_seq;
        let mut ticket = None;
        if let Some(audit) = ring.audit.as_mut() {
            let appended = event.chain(&ring.head).and_then(|()| audit.append(&event));
            match appended {
                Ok(t) => {
                    ring.head.clone_from(&event.hash);
                    ticket = Some(t);
                }
                Err(e) => {
                    tracing::error!(path = %audit.path().display(), error = %e, seq = event.seq, "audit: an event could not be serialized; not in the log");
                }
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
        (event, ticket)
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
