//! Live state on disk: `state.dir/state.json`, replaced atomically (write a
//! temp file, fsync, rename over, fsync the directory), so a `kill -9` at
//! any moment leaves either the old state or the new one.
//!
//! The file also carries the event of the change that produced it
//! (`last_event`, its time assigned, its seq not yet): the state is saved
//! before that event is appended to the audit log, so a crash between the
//! two leaves the event here, and `Live::open` appends it at the next
//! start unless the log has it.
//! Every saved change thus has exactly one audit entry.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serin_config::Config;

use crate::event::Event;

/// Everything decided at run time that the routing file does not say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// The routing-file revision in force, e.g. `r3`.
    pub revision: String,
    /// Weight overrides per route, per version (REST calls, the engine).
    #[serde(default)]
    pub weights: BTreeMap<String, BTreeMap<String, f64>>,
    /// Rollout/rollback progress per route.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteState>,
    /// `Some(message)` while maintenance mode is on.
    #[serde(default)]
    pub maintenance: Option<String>,
    /// In a fleet: the routing file in force on every replica (set by the
    /// reload that published it). `None` alone: the file is this replica's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
}

/// A fleet's routing file: its revision and text. Each replica applies it
/// with its own node-local sections ([`Routing::config`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The fleet's revision id, e.g. `r7`.
    pub revision: String,
    pub sha256: String,
    pub text: String,
}

/// Now, as `RouteState::since` and events write it (RFC 3339, ms, UTC).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Where a route's rollout or rollback stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteState {
    pub phase: Phase,
    /// Index into the rollout steps or the gradual-rollback steps.
    #[serde(default)]
    pub step: Option<usize>,
    /// When the phase or step began (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// The canary this state is about, by name and URL: a reload that keeps
    /// both keeps the state (a rolled-back canary stays rolled back).
    #[serde(default)]
    pub canary: Option<(String, String)>,
}

/// SPEC.md's route `state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Stable,
    Progressing,
    Paused,
    RollingBack,
    RolledBack,
    Promoted,
}

/// What `state.json` holds: the state, and the event that produced it.
#[derive(Debug, Clone, Deserialize)]
pub struct Saved {
    #[serde(flatten)]
    pub state: LiveState,
    #[serde(default)]
    pub last_event: Option<Event>,
}

#[derive(Serialize)]
struct Saving<'a> {
    #[serde(flatten)]
    state: &'a LiveState,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_event: Option<&'a Event>,
}

/// The state file of one state directory.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    dir: PathBuf,
}

// === impl Phase ===

impl Phase {
    /// The status API's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Progressing => "progressing",
            Self::Paused => "paused",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
            Self::Promoted => "promoted",
        }
    }
}

// === impl StateFile ===

impl StateFile {
    /// The state file in `dir` (created on first save).
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved state, if any.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed: serin must not
    /// start on a state it cannot trust.
    pub(crate) fn load(&self) -> io::Result<Option<Saved>> {
        match std::fs::read(self.path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.path().display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the saved state atomically and durably, with the event of
    /// the change that produced it.
    ///
    /// # Errors
    /// When any step fails; the old state is then still in place.
    pub(crate) fn save(&self, state: &LiveState, last_event: Option<&Event>) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec_pretty(&Saving { state, last_event })?;
        crate::revisions::atomic_write(&self.path(), &bytes)
    }
}

// === impl LiveState ===

impl LiveState {
    /// A route's effective weights (file weights under live overrides) as
    /// JSON; `null` when `config` has no such route.
    pub fn weights_json(&self, config: &Config, route: &str) -> serde_json::Value {
        let Some(r) = config.routes.iter().find(|r| r.name == route) else {
            return serde_json::Value::Null;
        };
        let overrides = self.weights.get(route);
        r.versions
            .iter()
            .map(|v| {
                let w = overrides
                    .and_then(|o| o.get(&v.name))
                    .copied()
                    .unwrap_or(v.weight);
                (v.name.clone(), weight_json(w))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

// === impl Routing ===

impl Routing {
    /// The fleet's routing file as this replica runs it: parsed, with
    /// `local`'s node-local sections (where it listens, its admin API,
    /// state directory, limits, engine tick, cluster identity, access log
    /// and tracing; the fleet's file brings the rest).
    ///
    /// # Errors
    /// The text does not parse here (a replica running an older serin).
    pub fn config(&self, local: &Config) -> Result<Config, serin_config::ConfigErrors> {
        let mut fleet = serin_config::parse(&self.text, &self.revision)?;
        fleet.listen = local.listen.clone();
        fleet.admin = local.admin.clone();
        fleet.state = local.state.clone();
        fleet.limits = local.limits.clone();
        fleet.engine = local.engine.clone();
        fleet.cluster = local.cluster.clone();
        fleet.access_log = local.access_log.clone();
        fleet.tracing = local.tracing.clone();
        Ok(fleet)
    }
}

/// Whole weights print as integers (`90`, not `90.0`), fractions as they are.
pub(crate) fn weight_json(w: f64) -> serde_json::Value {
    if w.fract() == 0.0 && w.abs() < 1e15 {
        serde_json::Value::from(w as i64)
    } else {
        serde_json::Value::from(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(&dir.path().join("state"));
        assert!(f.load().unwrap().is_none());
        let mut s = LiveState {
            revision: "r2".into(),
            ..LiveState::default()
        };
        s.weights
            .entry("svc".into())
            .or_default()
            .insert("v2".into(), 0.0);
        s.routes.insert(
            "svc".into(),
            RouteState {
                phase: Phase::RolledBack,
                canary: Some(("v2".into(), "http://127.0.0.1:9/".into())),
                ..RouteState::default()
            },
        );
        f.save(&s, None).unwrap();
        let saved = f.load().unwrap().unwrap();
        assert_eq!(saved.state, s);
        assert!(saved.last_event.is_none());
        std::fs::write(dir.path().join("state/state.json"), "{torn").unwrap();
        assert!(f.load().is_err());
    }
}
