//! Routing-file revisions: every applied file is kept in
//! `state.dir/revisions/` as `rN.toml`, listed in `index.json` (id, time,
//! SHA-256 of the bytes, actor), oldest first, bounded to the last
//! `[state] keep_revisions` (default 50).
//!
//! Ids grow for ever (`next` is kept in the index), so a pruned id is never
//! reused and `r7` always means the same bytes.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::Actor;

/// One kept routing file (SPEC.md's `GET /api/v1/revisions` entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revision {
    /// `r1`, `r2`, …
    pub id: String,
    /// When it was applied, RFC 3339 UTC.
    pub time: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Who applied it: `file` (the watcher), `signal`, `api`.
    pub actor: Actor,
}

/// The revisions of one state directory.
#[derive(Debug)]
pub struct Revisions {
    dir: PathBuf,
    keep: usize,
    /// Serializes index rewrites (reloads are already serialized; this
    /// keeps the type safe on its own).
    lock: Mutex<()>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// The number of the next id.
    next: u64,
    revisions: Vec<Revision>,
}

// === impl Revisions ===

impl Revisions {
    /// The revisions under `state_dir/revisions`, keeping the last `keep`.
    pub fn new(state_dir: &Path, keep: usize) -> Self {
        Self {
            dir: state_dir.join("revisions"),
            keep: keep.max(1),
            lock: Mutex::new(()),
        }
    }

    /// Every kept revision, oldest first.
    ///
    /// # Errors
    /// When the index exists but cannot be read.
    pub fn list(&self) -> io::Result<Vec<Revision>> {
        Ok(self.index()?.revisions)
    }

    /// The newest kept revision.
    ///
    /// # Errors
    /// As [`Revisions::list`].
    pub fn newest(&self) -> io::Result<Option<Revision>> {
        Ok(self.index()?.revisions.pop())
    }

    /// The id the next [`Revisions::add`] will use.
    ///
    /// # Errors
    /// As [`Revisions::list`].
    pub fn next_id(&self) -> io::Result<String> {
        Ok(format!("r{}", self.index()?.next.max(1)))
    }

    /// The file bytes of revision `id`; `None` when it is not kept (never
    /// existed, or pruned).
    ///
    /// # Errors
    /// When the index or the file cannot be read.
    pub fn bytes(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        // Only ids from the index reach the file system: `id` comes from a
        // URL and must not name another path.
        if !self.index()?.revisions.iter().any(|r| r.id == id) {
            return Ok(None);
        }
        std::fs::read(self.dir.join(format!("{id}.toml"))).map(Some)
    }

    /// Keeps `bytes` as revision `id` (from [`Revisions::next_id`]) and
    /// drops the oldest beyond the bound.
    ///
    /// # Errors
    /// When the file or the index cannot be written; the index is then
    /// unchanged.
    pub fn add(&self, id: &str, bytes: &[u8], actor: Actor) -> io::Result<Revision> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let number: u64 = id
            .strip_prefix('r')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "revision id is rN"))?;
        std::fs::create_dir_all(&self.dir)?;
        atomic_write(&self.dir.join(format!("{id}.toml")), bytes)?;
        let mut index = self.index()?;
        let revision = Revision {
            id: id.to_owned(),
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            sha256: sha256_hex(bytes),
            actor,
        };
        index.revisions.push(revision.clone());
        index.next = index.next.max(number + 1);
        let excess = index.revisions.len().saturating_sub(self.keep);
        let pruned: Vec<Revision> = index.revisions.drain(..excess).collect();
        atomic_write(&self.index_path(), &serde_json::to_vec_pretty(&index)?)?;
        for old in pruned {
            // The index no longer names it; a leftover file is harmless.
            let _ = std::fs::remove_file(self.dir.join(format!("{}.toml", old.id)));
        }
        Ok(revision)
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn index(&self) -> io::Result<Index> {
        match std::fs::read(self.index_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.index_path().display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index {
                next: 1,
                revisions: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces `path` with `bytes` atomically and durably: a temp file in the
/// same directory, fsync, rename over, fsync the directory. A crash leaves
/// the old file or the new one, never a torn one.
///
/// # Errors
/// When any step fails; `path` is then untouched.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_and_the_oldest_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let revs = Revisions::new(dir.path(), 2);
        assert_eq!(revs.next_id().unwrap(), "r1");
        assert_eq!(revs.newest().unwrap(), None);
        for (i, body) in ["a", "b", "c"].iter().enumerate() {
            let id = revs.next_id().unwrap();
            assert_eq!(id, format!("r{}", i + 1));
            revs.add(&id, body.as_bytes(), Actor::File).unwrap();
        }
        let list = revs.list().unwrap();
        let ids: Vec<&str> = list.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r2", "r3"]);
        assert_eq!(list[1].sha256, sha256_hex(b"c"));
        assert_eq!(revs.bytes("r3").unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(revs.bytes("r1").unwrap(), None, "pruned");
        assert!(!dir.path().join("revisions/r1.toml").exists());
        assert_eq!(revs.bytes("../state").unwrap(), None, "not an id");
        assert_eq!(revs.next_id().unwrap(), "r4", "never reused");
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
