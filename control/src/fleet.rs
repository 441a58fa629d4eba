//! Fleet mode (`[cluster]`, feature `fleet`): the replicas of one fleet
//! share live state through etcd v3 — an [`EtcdStore`] behind
//! [`Live`](crate::Live)'s [`Store`] seam.
//!
//! Keys, all under `[cluster] prefix`:
//! - `PREFIX/state`: the live state in force (weights, route phases,
//!   maintenance), with the event that made it and the replica that wrote
//!   it, as JSON. Its etcd `mod_revision` is the state's version: a change
//!   is one transaction, "if `mod_revision(state)` is still the version
//!   this change was computed from, put it; else return what is there" —
//!   so of two conflicting changes exactly one is applied, and the other's
//!   caller gets the state that won (409 at the API).
//! - `PREFIX/audit/SEQ`: the fleet's audit chain. Every state change's
//!   event is chained (`prev_hash`, `hash`, the fleet's `seq`) after the
//!   head the state it is based on records (`audit` in `PREFIX/state`), and
//!   written in the same transaction as the state: the chain cannot fork,
//!   and a deleted last entry shows against the head. Every replica
//!   mirrors the chain to `state.dir/fleet-audit.log`; `serin audit verify`
//!   checks the mirror, `--cluster` checks etcd's own.
//! - `PREFIX/nodes/NODE`: each replica's presence (`revision`,
//!   `last_seen`, the state version it runs), put every second under a
//!   lease of 5 s: a replica that stops is gone from the list within 5 s.
//! - `PREFIX/leader`: etcd's election (campaign under the same lease). The
//!   leader's engine alone decides; one killed is replaced within the
//!   lease's 5 s, and as the phase and step live in `PREFIX/state`, a
//!   rollout or gradual rollback in flight goes on from the step reached.
//! - `PREFIX/slots/NODE`: every half second, the telemetry slots this
//!   replica folded since the last put (counts and packed latency
//!   histograms, which merge exactly), under the lease. Every replica
//!   watches the others' and adds them to its own windows' fleet view
//!   (`VersionStats::inject`), so the engine judges each canary on the
//!   fleet's merged windows — and a new leader starts with them warm.
//!
//! A thread of its own runs a small runtime with the etcd client. It
//! watches `PREFIX/state` and puts every change another replica writes in
//! force here ([`Live::adopt`](crate::Live::adopt), on a blocking thread),
//! keeps the presence, and answers the calls `Live` makes through
//! [`Store`] (sent over a channel; the caller, always a blocking thread and
//! never the data plane, waits at most [`CALL_TIMEOUT`]). Every state this
//! replica saves or adopts is also written to its state directory
//! (`state.json`), so a replica that restarts while etcd is unreachable
//! starts on the last state it knew.
//!
//! The data plane never waits on etcd: with etcd unreachable, every
//! replica serves the table it has; changes answer 503 until etcd is back,
//! and the watch resumes from the last version seen.
//!
//! A replica cut off from etcd longer than `partition_after` is
//! *partitioned* (`fleet_partitioned` in its log): its engine decides on
//! its own windows (the others' slots no longer come), and what it decides
//! is kept in its state directory, based on the fleet's version it last
//! saw. Back in touch, it writes that state back — in the same
//! compare-and-swap, so only if the fleet made no change meanwhile — or
//! drops it for the fleet's newer state; `fleet_rejoined` says which.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, LeaseKeepAliveStream,
    LeaseKeeper, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::event::{Event, EventKind};
use crate::persist::{LiveState, Saved};
use crate::store::{FleetView, LocalStore, NodeView, Store, StoreError, Stored};
use crate::telemetry::{SlotSummary, VersionStats};
use crate::Live;

/// The longest a change waits for etcd before it is refused (503).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A replica's presence outlives its last heartbeat by this much.
const PRESENCE_TTL: i64 = 5;
/// Between two heartbeats (and two reads of the fleet's list).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Between two puts of this replica's new telemetry slots.
const SLOTS_EVERY: Duration = Duration::from_millis(500);

/// Live state kept in etcd, shared by the fleet.
#[derive(Debug)]
pub struct EtcdStore {
    calls: mpsc::UnboundedSender<Call>,
    node: String,
    /// The state directory's copy, for a start while etcd is away.
    mirror: LocalStore,
    /// The fleet as last read (every heartbeat).
    view: Arc<Mutex<FleetView>>,
    /// This replica is the elected leader (as of the last heartbeat).
    leader: Arc<AtomicBool>,
    /// Cut off from etcd past `partition_after`: it decides alone.
    partitioned: Arc<AtomicBool>,
    /// Ends the thread when dropped.
    _stop: oneshot::Sender<()>,
}

/// What a call from `Live` asks of the thread.
enum Call {
    Load(std::sync::mpsc::SyncSender<Result<Option<Stored>, StoreError>>),
    Save {
        based_on: u64,
        state: Box<LiveState>,
        event: Box<Event>,
        /// The caller stops waiting then: a save not begun by then is
        /// not made (the caller answered 503; nothing may change).
        deadline: std::time::Instant,
        reply: std::sync::mpsc::SyncSender<Result<u64, StoreError>>,
    },
    Follow(Weak<Live>),
}

/// `PREFIX/state` as written.
#[derive(Serialize)]
struct Writing<'a> {
    node: &'a str,
    #[serde(flatten)]
    state: &'a LiveState,
    /// The change's event, as chained in `PREFIX/audit/`.
    last_event: &'a Event,
    audit: &'a Head,
}

/// The fleet audit chain's last entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: crate::audit::GENESIS.to_owned(),
        }
    }
}

/// The worker's watch tasks; `None` or finished: to (re)start.
#[derive(Default)]
struct Watches {
    state: Option<tokio::task::JoinHandle<()>>,
    slots: Option<tokio::task::JoinHandle<()>>,
}

/// `PREFIX/slots/NODE`: the slots a replica folded since its last put.
#[derive(Serialize, Deserialize)]
struct Slots {
    node: String,
    slots: Vec<RemoteSlot>,
}

/// One (route, version)'s slot; `mirrored`: of its mirrored copies.
#[derive(Serialize, Deserialize)]
struct RemoteSlot {
    route: String,
    version: String,
    #[serde(default)]
    mirrored: bool,
    #[serde(flatten)]
    slot: SlotSummary,
}

/// `PREFIX/state` as read.
#[derive(Deserialize)]
struct Reading {
    node: Option<String>,
    #[serde(flatten)]
    saved: Saved,
    #[serde(default)]
    audit: Head,
}

/// Where a decision taken while partitioned waits for its write-back.
const PENDING_FILE: &str = "fleet-pending.json";

/// A decision taken while partitioned: the fleet version it was based on,
/// and the state to write back (the last one decided) with its event.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    based_on: u64,
    state: LiveState,
    event: Event,
}

/// The thread's own state.
struct Worker {
    endpoints: Vec<String>,
    prefix: String,
    node: String,
    client: Option<Client>,
    /// The local mirror of every state seen.
    mirror: LocalStore,
    live: Option<Weak<Live>>,
    /// The highest state version seen (saved, adopted or loaded).
    seen: u64,
    view: Arc<Mutex<FleetView>>,
    /// The presence lease and its keep-alive stream.
    lease: Option<(i64, LeaseKeeper, LeaseKeepAliveStream)>,
    leader: Arc<AtomicBool>,
    partitioned: Arc<AtomicBool>,
    partition_after: Duration,
    /// When etcd was last reached (`None`: not yet).
    reached: Option<tokio::time::Instant>,
    /// Decided while partitioned, to be written back; kept on disk too
    /// (`state.dir/fleet-pending.json`), so a restart before the write-back
    /// loses no decision.
    pending: Option<Pending>,
    /// Where `pending` is kept.
    pending_file: std::path::PathBuf,
    /// The fleet audit chain's head, as of the last state seen.
    head: Head,
    /// The last state this replica wrote, until its caller has it.
    written: Option<Stored>,
    /// When this replica, leading, last compacted etcd's history.
    compacted: Option<tokio::time::Instant>,
    /// The chain's mirror, `state.dir/fleet-audit.log`, and its last entry.
    chain: Option<(crate::audit::AuditWriter, Head)>,
    /// This replica's revisions archive: every fleet routing file it puts
    /// in force is kept there, so a restore works on any replica.
    revisions: crate::revisions::Revisions,
    /// The campaign under the current lease (its id).
    campaign: Option<(i64, tokio::task::JoinHandle<()>)>,
    /// The presence key held under another lease, as last seen (its lease
    /// and revision): a dead predecessor's, which expires, or a live
    /// replica's under the same name, which keeps being refreshed.
    foreign: Option<(i64, i64)>,
    /// Another live replica runs under this name: stand aside.
    duplicate: bool,
    /// The last slot end put, per (route, version, mirrored).
    published: HashMap<(String, String, bool), tokio::time::Instant>,
}

// === impl EtcdStore ===

impl EtcdStore {
    /// Starts the fleet's thread for `cluster`, mirroring to `state_dir`
    /// (its revisions archive keeps `keep_revisions`).
    /// Etcd need not be reachable yet: the thread connects (and
    /// reconnects) by itself.
    ///
    /// # Errors
    /// The thread or its runtime cannot start.
    pub fn start(
        cluster: &serin_config::Cluster,
        state_dir: &std::path::Path,
        keep_revisions: usize,
    ) -> std::io::Result<Arc<Self>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (calls, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let view = Arc::new(Mutex::new(FleetView {
            node: cluster.node.clone(),
            ..FleetView::default()
        }));
        let leader = Arc::new(AtomicBool::new(false));
        let partitioned = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            endpoints: cluster.etcd.clone(),
            prefix: cluster.prefix.clone(),
            node: cluster.node.clone(),
            client: None,
            mirror: LocalStore::new(state_dir),
            live: None,
            seen: 0,
            view: view.clone(),
            lease: None,
            leader: leader.clone(),
            partitioned: partitioned.clone(),
            partition_after: cluster.partition_after,
            reached: None,
            pending: Pending::load(&state_dir.join(PENDING_FILE)),
            pending_file: state_dir.join(PENDING_FILE),
            head: Head::default(),
            written: None,
            compacted: None,
            chain: open_chain(state_dir),
            revisions: crate::revisions::Revisions::new(state_dir, keep_revisions),
            campaign: None,
            published: HashMap::new(),
            foreign: None,
            duplicate: false,
        };
        std::thread::Builder::new()
            .name("serin-fleet".into())
            .spawn(move || {
                rt.block_on(worker.run(rx, stopped));
            })?;
        Ok(Arc::new(Self {
            calls,
            node: cluster.node.clone(),
            mirror: LocalStore::new(state_dir),
            view,
            leader,
            partitioned,
            _stop: stop,
        }))
    }

    /// From now on, changes other replicas make are put in force in
    /// `live`.
    pub fn follow(&self, live: &Arc<Live>) {
        let _ = self.calls.send(Call::Follow(Arc::downgrade(live)));
    }

    /// This replica's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn ask<T>(
        &self,
        call: impl FnOnce(std::sync::mpsc::SyncSender<Result<T, StoreError>>) -> Call,
    ) -> Result<T, StoreError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.calls
            .send(call(reply))
            .map_err(|_| StoreError::Unavailable("the fleet thread is gone".into()))?;
        // Called from blocking threads only (see `store.rs`).
        answer.recv_timeout(CALL_TIMEOUT).unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "etcd did not answer within {}s",
                CALL_TIMEOUT.as_secs()
            )))
        })
    }
}

impl Store for EtcdStore {
    fn load(&self) -> Result<Option<Stored>, StoreError> {
        match self.ask(Call::Load) {
            // Etcd too slow at start: serve the last state mirrored here;
            // the worker catches up (and puts the fleet's in force) once
            // etcd answers.
            Err(StoreError::Unavailable(why)) => {
                tracing::warn!(%why, "fleet: starting on the state mirrored here");
                Ok(self.mirror.load()?.map(|s| Stored {
                    node: Some(self.node.clone()),
                    ..s
                }))
            }
            other => other,
        }
    }

    fn save(&self, based_on: u64, state: &LiveState, event: &Event) -> Result<u64, StoreError> {
        // The worker must begin within the caller's wait, with room for
        // the transaction itself.
        let deadline = std::time::Instant::now() + CALL_TIMEOUT / 2;
        self.ask(|reply| Call::Save {
            based_on,
            state: Box::new(state.clone()),
            event: Box::new(event.clone()),
            deadline,
            reply,
        })
    }

    fn fleet(&self) -> Option<FleetView> {
        Some(self.view.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn decides(&self) -> bool {
        self.leader.load(Ordering::Relaxed) || self.partitioned.load(Ordering::Relaxed)
    }
}

// === impl Worker ===

impl Worker {
    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    async fn run(
        mut self,
        mut calls: mpsc::UnboundedReceiver<Call>,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut slots_every = tokio::time::interval(SLOTS_EVERY);
        slots_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (changes_tx, mut changes) = mpsc::unbounded_channel::<Stored>();
        let (slots_tx, mut slots_in) = mpsc::unbounded_channel::<Slots>();
        let mut watches = Watches::default();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                call = calls.recv() => {
                    let Some(call) = call else { break };
                    let follow = matches!(call, Call::Follow(_));
                    self.answer(call).await;
                    if follow {
                        // Watching from the moment there is a table to
                        // put changes in, not from the next heartbeat.
                        self.watch(&mut watches, &changes_tx, &slots_tx).await;
                    }
                }
                _ = beat.tick() => {
                    self.heartbeat().await;
                    self.watch(&mut watches, &changes_tx, &slots_tx).await;
                }
                _ = slots_every.tick() => self.publish_slots().await,
                Some(stored) = changes.recv() => {
                    self.adopt(stored);
                    self.sync_chain().await;
                }
                Some(slots) = slots_in.recv() => self.inject(slots),
            }
        }
        // Stopping: give the leadership and the presence up at once
        // rather than when the lease runs out.
        self.leader.store(false, Ordering::Relaxed);
        if let (Some(mut client), Some((id, ..))) = (self.client.clone(), &self.lease) {
            let _ = tokio::time::timeout(Duration::from_secs(1), client.lease_revoke(*id)).await;
        }
    }

    /// (Re)starts the watches that are not running: the state's (after
    /// catching up on what changed meanwhile) and the slots'.
    async fn watch(
        &mut self,
        w: &mut Watches,
        changes: &mpsc::UnboundedSender<Stored>,
        slots: &mpsc::UnboundedSender<Slots>,
    ) {
        let (Some(client), true) = (self.connected().await, self.live.is_some()) else {
            return;
        };
        if w.state.as_ref().is_none_or(|t| t.is_finished()) {
            // What changed while not watching (etcd away, a compacted
            // history), then the watch from there.
            let caught_up = self.catch_up().await;
            self.sync_chain().await;
            if let Some(from) = caught_up {
                let key = self.key("state");
                w.state = Some(tokio::spawn(watch(
                    client.clone(),
                    key,
                    from,
                    changes.clone(),
                )));
            }
        }
        if w.slots.as_ref().is_none_or(|t| t.is_finished()) {
            let key = self.key("slots/");
            w.slots = Some(tokio::spawn(watch_slots(client, key, slots.clone())));
        }
    }

    /// Reads the fleet's state and puts it in force if it is newer than
    /// the last seen; returns the etcd revision to watch from.
    async fn catch_up(&mut self) -> Option<u64> {
        let mut client = self.client.clone()?;
        let resp = match client.get(self.key("state"), None).await {
            Ok(r) => r,
            Err(_) => {
                self.client = None;
                return None;
            }
        };
        if let Some(kv) = resp.kvs().first() {
            match parse(kv.value(), kv.mod_revision()) {
                Ok(stored) if stored.node.as_deref() != Some(self.node.as_str()) => {
                    self.adopt(stored);
                }
                Ok(stored) => {
                    // This replica's own last write: `Live` may not have it
                    // (a restart that loaded the mirror, a caller that gave
                    // up); it ignores it if it does.
                    if let Some(e) = &stored.saved.last_event {
                        if stored.version >= self.seen {
                            self.head = Head {
                                seq: e.seq,
                                hash: e.hash.clone(),
                            };
                        }
                    }
                    self.seen = self.seen.max(stored.version);
                    self.push(stored);
                }
                Err(e) => tracing::error!(error = %e, "fleet: unreadable state in etcd"),
            }
        }
        let at = resp
            .header()
            .map_or(0, |h| u64::try_from(h.revision()).unwrap_or(0));
        Some(at.max(self.seen) + 1)
    }

    /// Puts the slots this replica folded since the last put.
    async fn publish_slots(&mut self) {
        if self.duplicate {
            // Its slots would overwrite the other replica's.
            return;
        }
        let (Some(live), Some(id)) = (
            self.live.as_ref().and_then(Weak::upgrade),
            self.lease.as_ref().map(|l| l.0),
        ) else {
            return;
        };
        let snap = live.snapshot();
        let mut slots = Vec::new();
        for r in snap.routes.iter() {
            for v in r.versions.iter() {
                let kinds = [(false, Some(&v.stats)), (true, v.mirrored.as_ref())];
                for (mirrored, stats) in kinds {
                    let Some(stats) = stats else { continue };
                    let key = (r.name.to_string(), v.name.to_string(), mirrored);
                    let after = self.published.get(&key).copied();
                    let new = stats.slots_after(after);
                    if let Some((end, _)) = new.last() {
                        self.published.insert(key, *end);
                    }
                    slots.extend(new.into_iter().map(|(_, slot)| RemoteSlot {
                        route: r.name.to_string(),
                        version: v.name.to_string(),
                        mirrored,
                        slot,
                    }));
                }
            }
        }
        if slots.is_empty() {
            return;
        }
        let Some(mut client) = self.client.clone() else {
            return;
        };
        let value = serde_json::to_vec(&Slots {
            node: self.node.clone(),
            slots,
        })
        .unwrap_or_default();
        let key = self.key(&format!("slots/{}", self.node));
        if let Err(e) = client
            .put(key, value, Some(PutOptions::new().with_lease(id)))
            .await
        {
            tracing::debug!(error = %e, "fleet: slots not put");
        }
    }

    /// Another replica's slots, into this replica's fleet windows.
    fn inject(&self, slots: Slots) {
        if slots.node == self.node {
            return;
        }
        let Some(live) = self.live.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        let snap = live.snapshot();
        for s in &slots.slots {
            let stats: Option<&Arc<VersionStats>> = snap
                .routes
                .iter()
                .find(|r| *r.name == *s.route)
                .and_then(|r| r.versions.iter().find(|v| *v.name == *s.version))
                .and_then(|v| {
                    if s.mirrored {
                        v.mirrored.as_ref()
                    } else {
                        Some(&v.stats)
                    }
                });
            if let Some(stats) = stats {
                stats.inject(&s.slot);
            }
        }
    }

    async fn connected(&mut self) -> Option<Client> {
        if self.client.is_none() {
            // HTTP/2 keep-alive: a link that silently drops packets ends
            // the watches within seconds, and they are started again.
            let options = ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(2))
                .with_timeout(CALL_TIMEOUT / 2)
                .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
                .with_keep_alive_while_idle(true);
            match Client::connect(&self.endpoints, Some(options)).await {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    tracing::debug!(error = %e, "fleet: etcd unreachable");
                }
            }
        }
        self.client.clone()
    }

    async fn answer(&mut self, call: Call) {
        match call {
            Call::Load(reply) => {
                let got = self.load().await;
                let _ = reply.send(got);
            }
            Call::Save {
                based_on,
                state,
                event,
                deadline,
                reply,
            } => {
                if std::time::Instant::now() >= deadline {
                    let _ = reply.send(Err(StoreError::Unavailable(
                        "etcd was too slow to answer; nothing was changed".into(),
                    )));
                    return;
                }
                let got = self.save(based_on, *state, *event).await;
                let saved = got.is_ok();
                if reply.send(got).is_err() && saved {
                    // The caller gave up, yet the fleet has the change: put
                    // it in force here too rather than serve the old table.
                    if let Some(own) = self.written.take() {
                        self.push(own);
                    }
                }
            }
            Call::Follow(live) => self.live = Some(live),
        }
    }

    /// The fleet's state, or (etcd unreachable) the last one mirrored. A
    /// decision this replica took while partitioned and has not written
    /// back (it restarted meanwhile) is what runs while the fleet has not
    /// changed since: the write-back follows at once.
    async fn load(&mut self) -> Result<Option<Stored>, StoreError> {
        let key = self.key("state");
        let fleet = match self.connected().await {
            Some(mut c) => c.get(key, None).await.ok(),
            None => None,
        };
        let Some(resp) = fleet else {
            tracing::warn!(
                "fleet: etcd unreachable at start; serving the last state mirrored here"
            );
            return self.mirrored();
        };
        match resp.kvs().first() {
            Some(kv) => {
                let (stored, head) = parse_with_head(kv.value(), kv.mod_revision())?;
                self.seen = stored.version;
                self.head = head;
                self.keep_revision(&stored);
                match &self.pending {
                    Some(p) if p.based_on == stored.version => Ok(Some(Stored {
                        saved: Saved {
                            state: p.state.clone(),
                            last_event: Some(p.event.clone()),
                        },
                        version: stored.version,
                        node: Some(self.node.clone()),
                    })),
                    _ => Ok(Some(stored)),
                }
            }
            None => self.mirrored(),
        }
    }

    /// The last state mirrored here: a fleet's (its event was recorded when
    /// it was applied, never recovered from this copy).
    fn mirrored(&self) -> Result<Option<Stored>, StoreError> {
        Ok(self.mirror.load()?.map(|s| Stored {
            node: Some(self.node.clone()),
            ..s
        }))
    }

    async fn save(
        &mut self,
        based_on: u64,
        state: LiveState,
        event: Event,
    ) -> Result<u64, StoreError> {
        if self.partitioned.load(Ordering::Relaxed) {
            return self.save_alone(based_on, state, event);
        }
        // The event, chained after the head of the state this is based on.
        let mut entry = event.clone();
        entry.seq = self.head.seq + 1;
        entry.chain(&self.head.hash)?;
        let head = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        let value = serde_json::to_vec(&Writing {
            node: &self.node,
            state: &state,
            last_event: &entry,
            audit: &head,
        })
        .map_err(std::io::Error::from)?;
        let entry_json = serde_json::to_vec(&entry).map_err(std::io::Error::from)?;
        let Some(mut client) = self.connected().await else {
            return Err(StoreError::Unavailable("etcd is unreachable".into()));
        };
        let key = self.key("state");
        let audit_key = self.key(&format!("audit/{:020}", head.seq));
        let txn = Txn::new()
            .when([
                Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    i64::try_from(based_on).unwrap_or(i64::MAX),
                ),
                // An entry is never overwritten: the chain cannot fork.
                Compare::create_revision(audit_key.clone(), CompareOp::Equal, 0),
            ])
            .and_then([
                TxnOp::put(key.clone(), value.clone(), None),
                TxnOp::put(audit_key, entry_json, None),
            ])
            .or_else([TxnOp::get(key, None)]);
        let resp = match client.txn(txn).await {
            Ok(r) => r,
            Err(e) => {
                self.client = None;
                return Err(StoreError::Unavailable(format!("etcd: {e}")));
            }
        };
        if resp.succeeded() {
            let version = resp
                .header()
                .map_or(0, |h| u64::try_from(h.revision()).unwrap_or(0));
            self.seen = self.seen.max(version);
            self.head = head;
            if let Ok(stored) = parse(&value, i64::try_from(version).unwrap_or(0)) {
                self.mirror_state(&stored);
                self.written = Some(stored);
            }
            self.mirror_entry(&entry);
            return Ok(version);
        }
        let current = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .map(|kv| parse_with_head(kv.value(), kv.mod_revision())),
            _ => None,
        });
        match current {
            Some(Ok((current, head))) => {
                // `Live` puts this state in force (the conflict's answer):
                // the worker follows it at once, head included, so the
                // next save chains after the right entry.
                if current.version > self.seen {
                    self.seen = current.version;
                    self.head = head;
                    self.keep_revision(&current);
                    self.mirror_state(&current);
                    if let Some(e) = &current.saved.last_event {
                        self.mirror_entry(e);
                    }
                }
                Err(StoreError::Conflict {
                    current: Box::new(current),
                })
            }
            Some(Err(e)) => Err(e),
            None => Err(StoreError::Unavailable(
                "the fleet's state vanished meanwhile".into(),
            )),
        }
    }

    /// Partitioned: the state is kept here, to be written back; its
    /// version stays the fleet's it was based on.
    fn save_alone(
        &mut self,
        based_on: u64,
        state: LiveState,
        event: Event,
    ) -> Result<u64, StoreError> {
        self.mirror_state(&Stored {
            saved: Saved {
                state: state.clone(),
                last_event: Some(event.clone()),
            },
            version: based_on,
            node: Some(self.node.clone()),
        });
        let base = self.pending.as_ref().map_or(based_on, |p| p.based_on);
        self.set_pending(Some(Pending {
            based_on: base,
            state,
            event,
        }));
        Ok(based_on)
    }

    /// Back in touch after a partition: the state decided alone is
    /// written back if the fleet did not change meanwhile, else the
    /// fleet's is adopted. Either way, said in the log.
    async fn rejoin(&mut self) {
        self.partitioned.store(false, Ordering::Relaxed);
        let Some(Pending {
            based_on: base,
            state,
            event,
        }) = self.pending.clone()
        else {
            self.note(
                EventKind::FleetRejoined,
                "back in touch with etcd; nothing was decided alone".into(),
            );
            return;
        };
        self.read_head(base).await;
        match self.save(base, state, event).await {
            Ok(version) => {
                self.set_pending(None);
                if let Some(live) = self.live.as_ref().and_then(Weak::upgrade) {
                    tokio::task::spawn_blocking(move || live.advance(version));
                }
                self.note(
                    EventKind::FleetRejoined,
                    format!(
                        "back in touch with etcd: the state decided while cut off is the fleet's \
                         now (version {version}; the fleet had not changed since {base})"
                    ),
                );
            }
            Err(StoreError::Conflict { current }) => {
                self.set_pending(None);
                let (node, version) = (current.node.clone().unwrap_or_default(), current.version);
                // `save` has followed it (seen, head, mirrors): `Live` must too.
                self.push(*current);
                self.note(
                    EventKind::FleetRejoined,
                    format!(
                        "back in touch with etcd: the fleet changed meanwhile (version {version}, \
                         on {node}), so what was decided while cut off is dropped and the \
                         fleet's state is in force"
                    ),
                );
            }
            Err(e) => {
                // Not reached after all (`pending` kept): try again at the
                // next heartbeat.
                self.partitioned.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "fleet: write-back failed; retried");
            }
        }
    }

    /// The audit chain's head as etcd's state records it, when that state
    /// is still version `base` (a replica that started cut off never read
    /// it: its write-back would chain after the wrong entry and fail as a
    /// conflict the fleet never made).
    async fn read_head(&mut self, base: u64) {
        let Some(mut client) = self.connected().await else {
            return;
        };
        let Ok(resp) = client.get(self.key("state"), None).await else {
            return;
        };
        if let Some(Ok((stored, head))) = resp
            .kvs()
            .first()
            .map(|kv| parse_with_head(kv.value(), kv.mod_revision()))
        {
            if stored.version == base {
                self.seen = self.seen.max(base);
                self.head = head;
            }
        }
    }

    /// `pending` from now on, on disk as well (a failed write is logged:
    /// the decision is still written back unless serin restarts first).
    fn set_pending(&mut self, pending: Option<Pending>) {
        let kept = match &pending {
            Some(p) => serde_json::to_vec_pretty(p)
                .map_err(std::io::Error::from)
                .and_then(|bytes| crate::revisions::atomic_write(&self.pending_file, &bytes)),
            None => match std::fs::remove_file(&self.pending_file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        };
        if let Err(e) = kept {
            tracing::warn!(path = %self.pending_file.display(), error = %e, "fleet: the decision to write back is not kept on disk");
        }
        self.pending = pending;
    }

    /// Records `kind` in this replica's log.
    fn note(&self, kind: EventKind, reason: String) {
        if let Some(live) = self.live.as_ref().and_then(Weak::upgrade) {
            // Off this thread: the journal's lock may be held by a caller
            // waiting on this worker.
            tokio::task::spawn_blocking(move || {
                live.shared().events.record(crate::event::Draft::new(
                    crate::event::Actor::Engine,
                    kind,
                    reason,
                ));
            });
        }
    }

    /// Tracks how long etcd has been out of reach: past
    /// `partition_after`, this replica decides alone; back, it rejoins.
    async fn reachable(&mut self, ok: bool) {
        let now = tokio::time::Instant::now();
        if ok {
            self.reached = Some(now);
            // Not before `Live` follows (a restart with a decision still
            // to write back): it must hear how the write-back went.
            let following = self.live.is_some();
            if following && (self.partitioned.load(Ordering::Relaxed) || self.pending.is_some()) {
                self.rejoin().await;
            }
            return;
        }
        let since = *self.reached.get_or_insert(now);
        let cut = now.duration_since(since);
        if cut >= self.partition_after && !self.partitioned.swap(true, Ordering::Relaxed) {
            self.leader.store(false, Ordering::Relaxed);
            self.note(
                EventKind::FleetPartitioned,
                format!(
                    "cut off from etcd for {}s (partition_after {}s): this replica judges its \
                     own traffic and decides alone until it is back",
                    cut.as_secs(),
                    self.partition_after.as_secs()
                ),
            );
        }
    }

    /// A state another replica wrote: in force here (off this thread, so
    /// a `save` in flight, which holds `Live`'s lock, is still answered).
    fn adopt(&mut self, stored: Stored) {
        if stored.version <= self.seen {
            return;
        }
        self.seen = stored.version;
        self.keep_revision(&stored);
        // The newer state's event is the chain's head, whatever this
        // replica believed before.
        if let Some(e) = &stored.saved.last_event {
            self.head = Head {
                seq: e.seq,
                hash: e.hash.clone(),
            };
            self.mirror_entry(e);
        }
        self.mirror_state(&stored);
        self.push(stored);
    }

    /// Puts `stored` in force in `Live` (off this thread: `Live`'s lock may
    /// be held by a caller waiting on this worker). `Live` ignores a state
    /// not newer than its own.
    fn push(&self, stored: Stored) {
        let Some(live) = self.live.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        let view = self.view.clone();
        tokio::task::spawn_blocking(move || {
            let version = stored.version;
            let behind = match live.adopt(stored) {
                Ok(true) => None,
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(version, error = %e, "fleet: the fleet's state does not compile here; kept the table in force");
                    Some(format!(
                        "the fleet's state (version {version}) is not in force here: {e}; \
                         serving the table in force before it"
                    ))
                }
            };
            view.lock().unwrap_or_else(|p| p.into_inner()).behind = behind;
        });
    }

    /// Appends a fleet chain entry to the mirror when it is the next one;
    /// a gap is filled from etcd by [`sync_chain`](Self::sync_chain).
    fn mirror_entry(&mut self, entry: &Event) {
        let Some((log, last)) = &mut self.chain else {
            return;
        };
        if entry.seq != last.seq + 1 || entry.prev_hash != last.hash {
            return;
        }
        match log.append(entry) {
            Ok(_) => {
                *last = Head {
                    seq: entry.seq,
                    hash: entry.hash.clone(),
                }
            }
            Err(e) => tracing::warn!(error = %e, "fleet: audit mirror not written"),
        }
    }

    /// Fills the mirror up to the head from `PREFIX/audit/`.
    async fn sync_chain(&mut self) {
        let (Some((_, last)), Some(mut client)) = (&self.chain, self.client.clone()) else {
            return;
        };
        if last.seq >= self.head.seq {
            return;
        }
        let from = self.key(&format!("audit/{:020}", last.seq + 1));
        let end = self.key("audit0");
        let Ok(resp) = client
            .get(from, Some(GetOptions::new().with_range(end)))
            .await
        else {
            return;
        };
        for kv in resp.kvs() {
            if let Ok(entry) = serde_json::from_slice::<Event>(kv.value()) {
                self.mirror_entry(&entry);
            }
        }
    }

    /// A fleet routing file put in force here joins this replica's
    /// revisions archive (a restore of it then works here too).
    fn keep_revision(&self, stored: &Stored) {
        let Some(r) = &stored.saved.state.routing else {
            return;
        };
        let known = self.revisions.bytes(&r.revision).ok().flatten();
        if known.is_none() {
            let actor = stored
                .saved
                .last_event
                .as_ref()
                .map_or(crate::event::Actor::File, |e| e.actor);
            if let Err(e) = self.revisions.add(&r.revision, r.text.as_bytes(), actor) {
                tracing::warn!(revision = %r.revision, error = %e, "fleet: revision not kept");
            }
        }
    }

    fn mirror_state(&self, stored: &Stored) {
        if let Some(event) = &stored.saved.last_event {
            if let Err(e) = self.mirror.save(0, &stored.saved.state, event) {
                tracing::warn!(error = %e, "fleet: could not mirror the state to the state directory");
            }
        }
    }

    /// This replica's presence, and the fleet's list.
    async fn heartbeat(&mut self) {
        let Some(mut client) = self.connected().await else {
            self.log_reach(false);
            self.view_mut(|v| v.connected = false);
            self.leader.store(false, Ordering::Relaxed);
            self.reachable(false).await;
            return;
        };
        let me = NodeView {
            name: self.node.clone(),
            revision: self.revision(),
            version: self.seen,
            last_seen: crate::persist::now(),
        };
        let value = serde_json::to_vec(&me).unwrap_or_default();
        let mut ok = self.keep_lease(&mut client).await;
        if let Some((id, ..)) = &self.lease {
            let id = *id;
            match self.name_taken(&mut client, id).await {
                Ok(false) => {}
                Ok(true) => return self.stand_aside(client).await,
                Err(()) => ok = false,
            }
            let put = client
                .put(
                    self.key(&format!("nodes/{}", self.node)),
                    value,
                    Some(PutOptions::new().with_lease(id)),
                )
                .await;
            if put.is_err() {
                // The lease expired while etcd was away: a new one next beat.
                self.lease = None;
                ok = false;
            }
        }
        self.elect(&mut client).await;
        self.compact(&mut client).await;
        let nodes = client
            .get(self.key("nodes/"), Some(GetOptions::new().with_prefix()))
            .await;
        let nodes: Vec<NodeView> = match nodes {
            Ok(resp) => resp
                .kvs()
                .iter()
                .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
                .collect(),
            Err(_) => {
                ok = false;
                self.client = None;
                Vec::new()
            }
        };
        self.log_reach(ok);
        self.view_mut(|v| {
            v.connected = ok;
            v.partitioned = !ok && v.partitioned;
            if ok {
                v.nodes = nodes;
            }
        });
        self.reachable(ok).await;
        let partitioned = self.partitioned.load(Ordering::Relaxed);
        self.view_mut(|v| v.partitioned = partitioned);
    }

    /// Whether this replica's presence key is held under another lease
    /// than `lease`. Held by a live replica (refreshed since the last
    /// beat) makes this replica a duplicate, said once in the log and in
    /// status; held by a dead predecessor (a restart within the lease's
    /// TTL), it waits for that lease to expire.
    async fn name_taken(&mut self, client: &mut Client, lease: i64) -> Result<bool, ()> {
        let key = self.key(&format!("nodes/{}", self.node));
        let resp = client.get(key, None).await.map_err(|_| {
            self.client = None;
        })?;
        let holder = resp
            .kvs()
            .first()
            .map(|kv| (kv.lease(), kv.mod_revision()))
            .filter(|(l, _)| *l != lease);
        let Some((other, revision)) = holder else {
            if self.duplicate {
                tracing::info!(node = %self.node, "fleet: the node name is this replica's now");
            }
            self.foreign = None;
            self.duplicate = false;
            self.view_mut(|v| v.conflict = None);
            return Ok(false);
        };
        let refreshed = self
            .foreign
            .is_some_and(|(l, r)| l == other && r != revision);
        if refreshed && !self.duplicate {
            self.duplicate = true;
            let why = format!(
                "another live replica runs as node {:?}: this one neither publishes telemetry \
                 nor campaigns to lead until the name is its own (give each replica its own \
                 [cluster] node)",
                self.node
            );
            tracing::error!(node = %self.node, "fleet: {why}");
            self.view_mut(|v| v.conflict = Some(why));
        }
        self.foreign = Some((other, revision));
        Ok(true)
    }

    /// A beat while the node name is not this replica's: no presence, no
    /// campaign, no leadership; the fleet's list and leader still read.
    async fn stand_aside(&mut self, mut client: Client) {
        self.leader.store(false, Ordering::Relaxed);
        if let Some((_, task)) = self.campaign.take() {
            task.abort();
        }
        let nodes = client
            .get(self.key("nodes/"), Some(GetOptions::new().with_prefix()))
            .await
            .ok()
            .map(|resp| {
                resp.kvs()
                    .iter()
                    .filter_map(|kv| serde_json::from_slice::<NodeView>(kv.value()).ok())
                    .collect::<Vec<_>>()
            });
        let leader = client.leader(self.key("leader")).await.ok().and_then(|r| {
            r.kv()
                .and_then(|kv| std::str::from_utf8(kv.value()).ok().map(str::to_owned))
        });
        self.log_reach(true);
        self.view_mut(|v| {
            v.connected = true;
            v.leader = leader;
            if let Some(nodes) = nodes {
                v.nodes = nodes;
            }
        });
        // Reached, whatever the name: a partition ends here too.
        self.reachable(true).await;
    }

    /// Campaigns under the current lease (once per lease), and reads who
    /// leads: this replica decides while the leader's value is its name.
    async fn elect(&mut self, client: &mut Client) {
        let name = self.key("leader");
        if let Some((id, ..)) = &self.lease {
            let id = *id;
            let running = self
                .campaign
                .as_ref()
                .is_some_and(|(lease, task)| *lease == id && !task.is_finished());
            if !running {
                if let Some((_, old)) = self.campaign.take() {
                    old.abort();
                }
                let mut c = client.clone();
                let (name, node) = (name.clone(), self.node.clone());
                // Returns once elected (or the lease is gone).
                let task = tokio::spawn(async move {
                    if let Err(e) = c.campaign(name, node, id).await {
                        tracing::debug!(error = %e, "fleet: campaign ended");
                    }
                });
                self.campaign = Some((id, task));
            }
        }
        let leader = match client.leader(name).await {
            Ok(resp) => resp
                .kv()
                .and_then(|kv| std::str::from_utf8(kv.value()).ok())
                .map(str::to_owned),
            Err(_) => None,
        };
        let me = leader.as_deref() == Some(self.node.as_str()) && self.lease.is_some();
        if me != self.leader.swap(me, Ordering::Relaxed) {
            tracing::info!(node = %self.node, leader = me, "fleet: leadership changed");
        }
        self.view_mut(|v| v.leader = leader);
    }

    /// The leader compacts etcd's history every minute, keeping the last
    /// `KEEP_REVISIONS` (presence and slots are put several times a second
    /// and would fill etcd's quota). Current keys — the state, the audit
    /// chain — are never compacted away, only their older versions.
    async fn compact(&mut self, client: &mut Client) {
        const EVERY: Duration = Duration::from_secs(60);
        const KEEP_REVISIONS: i64 = 10_000;
        if !self.leader.load(Ordering::Relaxed)
            || self.compacted.is_some_and(|t| t.elapsed() < EVERY)
        {
            return;
        }
        self.compacted = Some(tokio::time::Instant::now());
        let Ok(resp) = client.get(self.key("state"), None).await else {
            return;
        };
        let revision = resp.header().map_or(0, |h| h.revision()) - KEEP_REVISIONS;
        if revision > 0 {
            if let Err(e) = client.compact(revision, None).await {
                tracing::debug!(error = %e, "fleet: compaction");
            }
        }
    }

    /// Refreshes the presence lease (a new one if it is gone).
    async fn keep_lease(&mut self, client: &mut Client) -> bool {
        if let Some((_, keeper, stream)) = &mut self.lease {
            let refresh = async {
                keeper.keep_alive().await.is_ok()
                    && matches!(stream.message().await, Ok(Some(r)) if r.ttl() > 0)
            };
            let alive = tokio::time::timeout(Duration::from_secs(2), refresh)
                .await
                .unwrap_or(false);
            if alive {
                return true;
            }
            self.lease = None;
        }
        let Ok(grant) = client.lease_grant(PRESENCE_TTL, None).await else {
            return false;
        };
        match client.lease_keep_alive(grant.id()).await {
            Ok((keeper, stream)) => {
                self.lease = Some((grant.id(), keeper, stream));
                true
            }
            Err(_) => false,
        }
    }

    fn revision(&self) -> String {
        self.live
            .as_ref()
            .and_then(Weak::upgrade)
            .map(|l| l.load().revision.to_string())
            .unwrap_or_default()
    }

    /// Says in the log when etcd goes out of reach and comes back (once
    /// each way, not every heartbeat).
    fn log_reach(&self, ok: bool) {
        let was = self
            .view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connected;
        if was && !ok {
            tracing::warn!(node = %self.node, "fleet: etcd unreachable; serving the last state, changes refused");
        } else if !was && ok {
            tracing::info!(node = %self.node, "fleet: etcd reachable");
        }
    }

    fn view_mut(&self, f: impl FnOnce(&mut FleetView)) {
        f(&mut self.view.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Watches `key` from version `from`, sending each state put; ends when
/// the watch breaks (the worker starts another from the last version seen).
async fn watch(mut client: Client, key: String, from: u64, out: mpsc::UnboundedSender<Stored>) {
    let options = WatchOptions::new().with_start_revision(i64::try_from(from).unwrap_or(0));
    let mut stream = match client.watch(key, Some(options)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "fleet: watch not started");
            return;
        }
    };
    while let Ok(Some(resp)) = stream.message().await {
        for ev in resp.events() {
            let (EventType::Put, Some(kv)) = (ev.event_type(), ev.kv()) else {
                continue;
            };
            match parse(kv.value(), kv.mod_revision()) {
                Ok(stored) => {
                    if out.send(stored).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::error!(error = %e, "fleet: unreadable state in etcd"),
            }
        }
    }
}

// === impl Pending ===

impl Pending {
    /// The decision kept at `path`, if any (an unreadable one is logged
    /// and dropped: the fleet's state then stands).
    fn load(path: &std::path::Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "fleet: unreadable decision to write back; dropped");
                None
            }
        }
    }
}

/// `state.dir/fleet-audit.log`, opened, with its last entry.
fn open_chain(state_dir: &std::path::Path) -> Option<(crate::audit::AuditWriter, Head)> {
    if let Err(e) = std::fs::create_dir_all(state_dir) {
        tracing::warn!(error = %e, "fleet: no audit mirror");
        return None;
    }
    match crate::audit::AuditWriter::open::<Event>(&state_dir.join("fleet-audit.log")) {
        Ok((log, past)) => {
            let last = past.last().map_or_else(Head::default, |e| Head {
                seq: e.seq,
                hash: e.hash.clone(),
            });
            Some((log, last))
        }
        Err(e) => {
            tracing::warn!(error = %e, "fleet: no audit mirror");
            None
        }
    }
}

/// Checks the fleet's own audit chain in etcd: every entry under
/// `PREFIX/audit/` chained, and the last one the head `PREFIX/state`
/// records (so a deleted last entry shows). Returns the entry count.
///
/// # Errors
/// Etcd unreachable, a broken chain, or a chain that stops short of the
/// head: said in words.
pub async fn verify_cluster(cluster: &serin_config::Cluster) -> Result<usize, String> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(CALL_TIMEOUT);
    let mut client = Client::connect(&cluster.etcd, Some(options))
        .await
        .map_err(|e| format!("etcd {:?}: {e}", cluster.etcd))?;
    let state = client
        .get(format!("{}/state", cluster.prefix), None)
        .await
        .map_err(|e| e.to_string())?;
    let head = match state.kvs().first() {
        Some(kv) => {
            parse_with_head(kv.value(), kv.mod_revision())
                .map_err(|e| e.to_string())?
                .1
        }
        None => Head::default(),
    };
    let entries = client
        .get(
            format!("{}/audit/", cluster.prefix),
            Some(GetOptions::new().with_prefix()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let values = entries
        .kvs()
        .iter()
        .map(|kv| serde_json::from_slice(kv.value()).map_err(|e| format!("not JSON: {e}")));
    let end = crate::audit::verify_values(values).map_err(|e| format!("entry {e}"))?;
    let (seq, hash) = end
        .last
        .clone()
        .unwrap_or((0, crate::audit::GENESIS.to_owned()));
    if (seq, &hash) != (head.seq, &head.hash) {
        return Err(format!(
            "the chain ends at seq {seq} but the fleet's state records its head at seq {} \
             (entries after {seq} were deleted, or the head was edited)",
            head.seq
        ));
    }
    Ok(end.count)
}

fn parse_with_head(value: &[u8], revision: i64) -> Result<(Stored, Head), StoreError> {
    let r: Reading = serde_json::from_slice(value).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the fleet's state in etcd: {e}"),
        ))
    })?;
    Ok((
        Stored {
            saved: r.saved,
            version: u64::try_from(revision).unwrap_or(0),
            node: r.node,
        },
        r.audit,
    ))
}

fn parse(value: &[u8], revision: i64) -> Result<Stored, StoreError> {
    let r: Reading = serde_json::from_slice(value).map_err(|e| {
        StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the fleet's state in etcd: {e}"),
        ))
    })?;
    Ok(Stored {
        saved: r.saved,
        version: u64::try_from(revision).unwrap_or(0),
        node: r.node,
    })
}

/// Watches every replica's `PREFIX/slots/NODE` from now on.
async fn watch_slots(mut client: Client, prefix: String, out: mpsc::UnboundedSender<Slots>) {
    let mut stream = match client
        .watch(prefix, Some(WatchOptions::new().with_prefix()))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "fleet: slots watch not started");
            return;
        }
    };
    while let Ok(Some(resp)) = stream.message().await {
        for ev in resp.events() {
            let (EventType::Put, Some(kv)) = (ev.event_type(), ev.kv()) else {
                continue;
            };
            if let Ok(slots) = serde_json::from_slice::<Slots>(kv.value()) {
                if out.send(slots).is_err() {
                    return;
                }
            }
        }
    }
}
