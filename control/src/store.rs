//! Where live state is kept: the seam between [`Live`](crate::Live) and
//! what is behind it.
//!
//! `Live` compiles every change, hands the new state and the change's event
//! to its [`Store`], and swaps the table only once the store has it. It
//! knows nothing of what is behind:
//! - [`LocalStore`]: `state.dir/state.json` (`persist.rs`), serin alone;
//! - [`MemoryStore`]: nothing kept (unit tests);
//! - `fleet::EtcdStore` (feature `fleet`): one key in etcd shared by every
//!   replica, written by a transaction conditioned on the version the
//!   change was computed from.
//!
//! Every state the store holds has a version. A change says which version
//! it was computed from; a store shared with others refuses it when that is
//! no longer the version in force ([`StoreError::Conflict`]), so two
//! replicas (or an operator and the engine) can never both apply
//! conflicting changes. A local store is never shared: it never refuses.
//!
//! Calls block (a file's fsyncs, a round trip to etcd): `Live` is only
//! changed from blocking threads (`spawn_blocking`), never from the data
//! plane.

use std::fmt::Debug;

use crate::event::Event;
use crate::persist::{LiveState, Saved, StateFile};

/// A state as a store holds it, with its version.
#[derive(Debug, Clone)]
pub struct Stored {
    pub saved: Saved,
    /// Grows with every change; 0 before the first.
    pub version: u64,
    /// The replica that wrote it; `None`: this replica's own state file,
    /// whose event a crash may have kept out of the audit log.
    pub node: Option<String>,
}

/// Why a store did not take a change. Nothing was saved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The state in force is no longer the one the change was computed
    /// from: another replica or caller changed it first.
    #[error("the state changed meanwhile (now version {})", current.version)]
    Conflict { current: Box<Stored> },
    /// The shared store cannot be reached.
    #[error("the fleet's store is unreachable: {0}")]
    Unavailable(String),
}

/// The fleet as `GET /api/v1/status` shows it.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct FleetView {
    /// This replica.
    pub node: String,
    /// The replica whose engine decides; `null` until one is elected.
    pub leader: Option<String>,
    /// Etcd reachable at the last heartbeat.
    pub connected: bool,
    /// Cut off from etcd past `partition_after`: deciding alone.
    pub partitioned: bool,
    /// Why this replica stands aside, if it does: another live replica
    /// runs under the same node name. It serves and follows the fleet's
    /// state, but neither publishes telemetry nor campaigns to lead until
    /// the name is its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// Why the fleet's latest state is not in force here, if it is not (a
    /// routing file this replica cannot parse, a state that does not
    /// compile over its file): it keeps serving the table it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<String>,
    /// Every replica present, by name.
    pub nodes: Vec<NodeView>,
}

/// One replica of the fleet.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct NodeView {
    pub name: String,
    /// Its routing-file revision in force.
    pub revision: String,
    /// The live-state version it runs (etcd's revision of the state).
    pub version: u64,
    /// Its last heartbeat (RFC 3339).
    pub last_seen: String,
}

/// Keeps live state for [`Live`](crate::Live).
pub trait Store: Send + Sync + Debug {
    /// The state in force, if one was ever saved.
    ///
    /// # Errors
    /// The store cannot be read, or holds a state that cannot be trusted.
    fn load(&self) -> Result<Option<Stored>, StoreError>;

    /// Makes `state`, changed by `event`, the state in force — if the
    /// version in force is still `based_on`. Returns the new version.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when it is not; I/O or reachability
    /// failures otherwise. Nothing is saved then.
    fn save(&self, based_on: u64, state: &LiveState, event: &Event) -> Result<u64, StoreError>;

    /// The fleet this store is shared with, as last seen; `None` for a
    /// store of one replica.
    fn fleet(&self) -> Option<FleetView> {
        None
    }

    /// Whether this replica's engine decides (a fleet's elected leader);
    /// `true` for a store of one replica.
    fn decides(&self) -> bool {
        true
    }
}

/// `state.json` in the state directory: serin alone.
#[derive(Debug)]
pub(crate) struct LocalStore {
    file: StateFile,
}

/// Nothing kept: a table in memory only (unit tests).
#[derive(Debug, Default)]
pub(crate) struct MemoryStore;

// === impl LocalStore ===

impl LocalStore {
    pub(crate) fn new(dir: &std::path::Path) -> Self {
        Self {
            file: StateFile::new(dir),
        }
    }
}

impl Store for LocalStore {
    fn load(&self) -> Result<Option<Stored>, StoreError> {
        Ok(self.file.load()?.map(|saved| Stored {
            saved,
            version: 0,
            node: None,
        }))
    }

    fn save(&self, based_on: u64, state: &LiveState, event: &Event) -> Result<u64, StoreError> {
        self.file.save(state, Some(event))?;
        Ok(based_on + 1)
    }
}

// === impl MemoryStore ===

impl Store for MemoryStore {
    fn load(&self) -> Result<Option<Stored>, StoreError> {
        Ok(None)
    }

    fn save(&self, based_on: u64, _: &LiveState, _: &Event) -> Result<u64, StoreError> {
        Ok(based_on + 1)
    }
}
