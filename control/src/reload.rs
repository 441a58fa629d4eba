//! Hot reload of the routing file, and return to an older revision.
//!
//! A reload reads the whole file, parses and validates it, and only then
//! swaps one new table in (through [`Live::replace_config`]), so a request
//! is routed by the old table or the new one. What can go wrong:
//! - the file does not parse or validate: `config_rejected` (reason
//!   `file:line:col: message`), `serin_config_reloads_total{result="rejected"}`,
//!   the last good table keeps serving;
//! - `[listen]`, `[admin]`, `[state]` or `[limits]` changed: those are bound at start
//!   and cannot change live, so the whole file is refused the same way;
//! - the file means what the running table already means: skipped, no
//!   revision, `result="unchanged"`.
//!
//! Otherwise the live state is carried over by the rule in [`merge`] (the
//! file is intent; live state survives where the file did not change that
//! thing), the file becomes a new revision ([`Revisions`]) and the event is
//! `config_applied`.
//!
//! Callers: the file watcher (`reload/watch.rs`, actor `file`), SIGHUP
//! (actor `signal`) and `POST /api/v1/reload` / `.../restore` (actor `api`).
//!
//! In a fleet (`[cluster]`), the routing file in force is the fleet's: an
//! applied reload (or restore) on any replica publishes the file's text
//! with the state (`LiveState::routing`), every replica puts it in force
//! with its own node-local sections ([`Routing::config`](crate::persist::Routing::config)), and a replica
//! whose own file says otherwise reports `config_drift` ([`Reloader::drift`]).

mod merge;
pub(crate) mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use serin_config::Config;

use crate::event::{Actor, Draft, Event, EventKind};
use crate::persist::{LiveState, Routing};
use crate::revisions::{atomic_write, sha256_hex, Revisions};
use crate::{metrics, Live, LiveError};

pub(crate) use merge::{merge, MergeMode};

/// Reloads one routing file into one `Live`.
#[derive(Debug)]
pub struct Reloader {
    live: Arc<Live>,
    path: PathBuf,
    revisions: Revisions,
    /// SHA-256 of the file bytes last looked at. The mutex also serializes
    /// reloads, so revision ids and the merge see one reload at a time.
    last: Mutex<String>,
}

/// What a reload did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A new table is live as revision `revision`.
    Applied {
        revision: String,
        /// Boxed: an event is large and outcomes are passed by value.
        event: Box<Event>,
    },
    /// The file means what the running table means; nothing changed.
    Unchanged { revision: String },
}

/// `applied r5` or `unchanged (r4)`: what a log line says.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Applied { revision, .. } => write!(f, "applied {revision}"),
            Outcome::Unchanged { revision } => write!(f, "unchanged ({revision} in force)"),
        }
    }
}

/// A reload that did not apply; the running table is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid, or changes what cannot change live. Recorded
    /// as a `config_rejected` event with this message.
    #[error("{0}")]
    Rejected(String),
    /// No kept revision has this id.
    #[error("no revision {0:?}")]
    NoRevision(String),
    /// The file or the revisions could not be read or written.
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Live(#[from] LiveError),
}

// === impl Reloader ===

impl Reloader {
    /// A reloader of the file at `path`, which `live` was started from.
    /// Registers the file as a revision when it differs from the newest
    /// kept one; when it changed while serin was stopped, the merge rule
    /// is applied against that newest revision (the saved live state was
    /// made for it) and a `config_applied` event is recorded.
    ///
    /// # Errors
    /// When the file or the revision index cannot be read or written.
    pub fn open(live: Arc<Live>, path: &Path) -> Result<Self, ReloadError> {
        let config = live.config();
        let revisions = Revisions::new(&config.state.dir, config.state.keep_revisions);
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        let sha = sha256_hex(&bytes);
        let me = Self {
            live,
            path: path.to_owned(),
            revisions,
            last: Mutex::new(sha.clone()),
        };
        if me.live.fleet().is_some() {
            me.open_in_fleet(&bytes)?;
            return Ok(me);
        }
        let newest = me.revisions.newest().map_err(|e| io(path, e))?;
        let id = match newest {
            Some(r) if r.sha256 == sha => r.id,
            Some(r) => me.startup_change(&r.id, &bytes)?,
            None => {
                let id = me.revisions.next_id().map_err(|e| io(path, e))?;
                me.revisions
                    .add(&id, &bytes, Actor::File)
                    .map_err(|e| io(path, e))?;
                id
            }
        };
        if me.live.state().revision != id {
            let draft = Draft::new(
                Actor::File,
                EventKind::ConfigApplied,
                format!("routing file is {id}"),
            );
            me.live.update(draft, |_, st| {
                st.revision.clone_from(&id);
                Ok(())
            })?;
        }
        Ok(me)
    }

    /// In a fleet, the fleet's routing file is in force (`Live::open_in`
    /// put it there); this replica's own file is published only when the
    /// fleet has none yet (the first replica of a new fleet). A file that
    /// differs is `config_drift` in the status until a reload publishes it.
    fn open_in_fleet(&self, bytes: &[u8]) -> Result<(), ReloadError> {
        if self.live.state().routing.is_some() {
            return Ok(());
        }
        let id = self.next_id()?;
        let text = String::from_utf8_lossy(bytes).into_owned();
        let routing = Routing {
            revision: id.clone(),
            sha256: sha256_hex(bytes),
            text,
        };
        let draft = Draft::new(
            Actor::File,
            EventKind::ConfigApplied,
            format!(
                "{} is the fleet's routing file as {id}",
                self.path.display()
            ),
        );
        match self.live.update(draft, |_, st| {
            st.revision.clone_from(&id);
            st.routing = Some(routing);
            Ok(())
        }) {
            // Another replica published first: its file is in force here now.
            Ok(_) | Err(LiveError::Stale { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.revisions.add(&id, bytes, Actor::File) {
            tracing::error!(revision = %id, error = %e, "cannot keep the revision");
        }
        Ok(())
    }

    /// The next revision id: this replica's archive's next, and in a fleet
    /// past the fleet's revision in force.
    fn next_id(&self) -> Result<String, ReloadError> {
        let local = self.revisions.next_id().map_err(|e| io(&self.path, e))?;
        let number = |id: &str| id.strip_prefix('r').and_then(|n| n.parse::<u64>().ok());
        let fleet = self
            .live
            .state()
            .routing
            .as_ref()
            .and_then(|r| number(&r.revision))
            .map_or(0, |n| n + 1);
        Ok(format!("r{}", number(&local).unwrap_or(1).max(fleet)))
    }

    /// In a fleet: whether this replica's own file says something other
    /// than the fleet's routing file in force (`None` alone, or when the
    /// file cannot be read or parsed).
    pub fn drift(&self) -> Option<bool> {
        self.live.fleet()?;
        let text = std::fs::read_to_string(&self.path).ok()?;
        let own = serin_config::parse(&text, &self.path.display().to_string()).ok()?;
        Some(own != *self.live.config())
    }

    /// The file changed while serin was stopped: merge against `old_id`.
    fn startup_change(&self, old_id: &str, bytes: &[u8]) -> Result<String, ReloadError> {
        let id = self.revisions.next_id().map_err(|e| io(&self.path, e))?;
        let old = self
            .revisions
            .bytes(old_id)
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| serin_config::parse(&t, old_id).ok());
        if let Some(old) = old {
            let new = (*self.live.config()).clone();
            let before = self.live.state();
            let mut preview = before.clone();
            let notes = merge(&old, &new, &mut preview, MergeMode::Reload);
            let reason = reason(
                &format!("routing file changed while serin was stopped ({old_id} → {id})"),
                &notes,
            );
            // Weights before and after, as a reload records them: the audit
            // log must say what the restart left live (crash test).
            let after = LiveState {
                revision: id.clone(),
                ..preview
            };
            let draft = Draft::new(Actor::File, EventKind::ConfigApplied, reason)
                .change(table_json(&old, &before), table_json(&new, &after));
            self.live.replace_config(new, draft, |_, new, st| {
                merge(&old, new, st, MergeMode::Reload);
                st.revision.clone_from(&id);
            })?;
        }
        self.revisions
            .add(&id, bytes, Actor::File)
            .map_err(|e| io(&self.path, e))?;
        Ok(id)
    }

    /// The routing file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kept revisions.
    pub fn revisions(&self) -> &Revisions {
        &self.revisions
    }

    /// Re-reads the routing file and applies it.
    ///
    /// # Errors
    /// See [`ReloadError`]; the running table is unchanged then.
    pub fn reload(&self, actor: Actor) -> Result<Outcome, ReloadError> {
        let mut last = self.lock();
        let bytes = self.read(actor)?;
        self.apply(&mut last, bytes, actor, MergeMode::Reload, None)
    }

    /// As [`Reloader::reload`], but only when the file's bytes differ from
    /// the last ones looked at (the watcher's filter for no-op events).
    ///
    /// # Errors
    /// As [`Reloader::reload`].
    pub fn reload_if_changed(&self, actor: Actor) -> Option<Result<Outcome, ReloadError>> {
        let mut last = self.lock();
        let bytes = match self.read(actor) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        if sha256_hex(&bytes) == *last {
            return None;
        }
        Some(self.apply(&mut last, bytes, actor, MergeMode::Reload, None))
    }

    /// Writes revision `id` back to the routing file (atomically; the
    /// replaced file is kept as `<file>.bak`) and applies it as a restore
    /// (see [`merge`]), so the file and the live table agree. The revision
    /// is checked first: one that would be refused is not written.
    ///
    /// # Errors
    /// Unknown id, a revision that is refused, or a failed write.
    pub fn restore(&self, id: &str, actor: Actor) -> Result<Outcome, ReloadError> {
        let mut last = self.lock();
        let bytes = self
            .revisions
            .bytes(id)
            .map_err(|e| io(&self.path, e))?
            .ok_or_else(|| ReloadError::NoRevision(id.to_owned()))?;
        let text = String::from_utf8_lossy(&bytes);
        if self.live.fleet().is_some() {
            // A fleet's revision may come from another replica's file: it
            // is put in force with this replica's node-local sections and
            // published, and no replica's file is rewritten (each reports
            // `config_drift` until its file says the same).
            let routing = Routing {
                revision: id.to_owned(),
                sha256: sha256_hex(&bytes),
                text: text.into_owned(),
            };
            let new = routing
                .config(&self.live.config())
                .map_err(|e| ReloadError::Rejected(format!("{id} no longer applies: {e}")))?;
            let note = format!("restored {id}");
            return self.apply_parsed(new, routing.text, actor, MergeMode::Restore, Some(&note));
        }
        let config = serin_config::parse(&text, &self.path.display().to_string())
            .map_err(|e| ReloadError::Rejected(format!("{id} no longer applies: {e}")))?;
        if let Some(why) = fixed_sections(&self.live.config(), &config) {
            return Err(ReloadError::Rejected(format!(
                "{id} cannot be restored: {why}"
            )));
        }
        // A symlinked file (by hand; a ConfigMap is read-only anyway) is
        // written where it points, so the link stays.
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let mut bak = target.clone().into_os_string();
        bak.push(".bak");
        std::fs::copy(&target, &bak).map_err(|e| io(&target, e))?;
        atomic_write(&target, &bytes).map_err(|e| io(&target, e))?;
        let note = format!("restored {id}");
        self.apply(&mut last, bytes, actor, MergeMode::Restore, Some(&note))
    }

    fn read(&self, actor: Actor) -> Result<Vec<u8>, ReloadError> {
        std::fs::read(&self.path).map_err(|e| {
            let message = format!("{}: {e}", self.path.display());
            self.reject(actor, message)
        })
    }

    fn apply(
        &self,
        last: &mut String,
        bytes: Vec<u8>,
        actor: Actor,
        mode: MergeMode,
        note: Option<&str>,
    ) -> Result<Outcome, ReloadError> {
        *last = sha256_hex(&bytes);
        let file = self.path.display().to_string();
        let Ok(text) = String::from_utf8(bytes) else {
            return Err(self.reject(actor, format!("{file}: not UTF-8 text")));
        };
        let new =
            serin_config::parse(&text, &file).map_err(|e| self.reject(actor, e.to_string()))?;
        let current = self.live.config();
        if let Some(why) = fixed_sections(&current, &new) {
            return Err(self.reject(actor, format!("{file}: {why}")));
        }
        self.apply_parsed(new, text, actor, mode, note)
    }

    /// Applies `new` (parsed from `text`) over the table in force.
    fn apply_parsed(
        &self,
        new: Config,
        text: String,
        actor: Actor,
        mode: MergeMode,
        note: Option<&str>,
    ) -> Result<Outcome, ReloadError> {
        let file = self.path.display().to_string();
        let current = self.live.config();
        let before = self.live.state();
        if *current == new && mode == MergeMode::Reload {
            metrics::config_reload("unchanged");
            return Ok(Outcome::Unchanged {
                revision: before.revision,
            });
        }
        let id = self.next_id()?;
        let mut preview = before.clone();
        let notes = merge(&current, &new, &mut preview, mode);
        // In a fleet, the file becomes the fleet's: every replica runs it.
        let routing = self.live.fleet().map(|_| Routing {
            revision: id.clone(),
            sha256: sha256_hex(text.as_bytes()),
            text: text.clone(),
        });
        let head = note.map_or_else(|| format!("{file} → {id}"), |n| format!("{n} as {id}"));
        let draft = Draft::new(actor, EventKind::ConfigApplied, reason(&head, &notes)).change(
            table_json(&current, &before),
            table_json(
                &new,
                &LiveState {
                    revision: id.clone(),
                    ..preview
                },
            ),
        );
        let event = self.live.replace_config(new, draft, |old, new, st| {
            merge(old, new, st, mode);
            st.revision.clone_from(&id);
            st.routing = routing;
        })?;
        if let Err(e) = self.revisions.add(&id, text.as_bytes(), actor) {
            // The table is live; only its archive copy is missing.
            tracing::error!(revision = %id, error = %e, "cannot keep the revision");
        }
        metrics::config_reload("applied");
        Ok(Outcome::Applied {
            revision: id,
            event: Box::new(event),
        })
    }

    /// Records and logs a refused file; returns the error to hand back.
    fn reject(&self, actor: Actor, message: String) -> ReloadError {
        tracing::warn!("routing file rejected, the last good table keeps serving: {message}");
        metrics::config_reload("rejected");
        self.live.shared().events.record(Draft::new(
            actor,
            EventKind::ConfigRejected,
            message.clone(),
        ));
        ReloadError::Rejected(message)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, String> {
        // The guarded hash is only a filter; a poisoned one is still usable.
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why `new` cannot replace `current` live, if it cannot: the listeners,
/// the admin address and token, the state directory and the connection
/// limits are bound at start.
fn fixed_sections(current: &Config, new: &Config) -> Option<String> {
    let changed: Vec<&str> = [
        ("[listen]", current.listen != new.listen),
        ("[admin]", current.admin != new.admin),
        ("[state]", current.state != new.state),
        ("[limits]", current.limits != new.limits),
        ("[engine]", current.engine != new.engine),
        ("[cluster]", current.cluster != new.cluster),
        ("[tracing]", current.tracing != new.tracing),
        ("[access_log]", current.access_log != new.access_log),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect();
    (!changed.is_empty()).then(|| {
        format!(
            "{} changed; that cannot apply while serin runs (restart serin for it), \
             so nothing in this file was applied",
            changed.join(", ")
        )
    })
}

/// `{"revision": ..., "weights": {route: {version: weight}}}`.
fn table_json(config: &Config, state: &LiveState) -> Value {
    let weights: Map<String, Value> = config
        .routes
        .iter()
        .map(|r| (r.name.clone(), state.weights_json(config, &r.name)))
        .collect();
    json!({ "revision": state.revision, "weights": weights })
}

fn reason(head: &str, notes: &[String]) -> String {
    if notes.is_empty() {
        head.to_owned()
    } else {
        format!("{head}; {}", notes.join("; "))
    }
}

fn io(path: &Path, e: std::io::Error) -> ReloadError {
    ReloadError::Io(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
