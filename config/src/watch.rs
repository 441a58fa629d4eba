//! Watching the routing file: the one place besides [`load`](crate::load)
//! where serin-config touches the file system.
//!
//! The watch is on the file's *parent directory* (non-recursive), not on the
//! file, because the ways a routing file gets replaced do not all keep its
//! inode:
//! - an in-place write (`>`, `truncate` + write) modifies the file;
//! - an editor's write-to-temp-and-rename replaces the directory entry, and
//!   a watch on the old inode would go quiet;
//! - a Kubernetes ConfigMap volume holds `serin.toml -> ..data/serin.toml`
//!   and `..data -> ..2026_xx`; an update writes a new `..2026_yy`, then
//!   renames a new `..data` symlink over the old one. Only `..data` changes
//!   in the watched directory.
//!
//! So events about the file's name or `..data` count; everything else in
//! the directory is ignored. When the file is a symlink to another
//! directory (by hand, not a ConfigMap), that directory is watched too, for
//! the target's name, so editing the target is seen. The signal says only "look again": the reader
//! debounces, reads the file and compares its bytes with the last seen.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// The entry a ConfigMap volume swaps atomically on every update.
const CONFIGMAP_DATA: &str = "..data";

/// A running watch; it stops when dropped.
#[derive(Debug)]
pub struct FileWatcher {
    _watcher: RecommendedWatcher,
    dir: PathBuf,
}

/// The watch could not be set up (no such directory, inotify limits).
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir}: {source}")]
pub struct WatchError {
    dir: String,
    #[source]
    source: notify::Error,
}

/// Watches the routing file at `path`. The receiver gets `()` when the file
/// may have changed; bursts coalesce (the channel holds one signal), so a
/// reader that is busy sees one more signal, not a backlog.
///
/// # Errors
/// When the parent directory cannot be watched.
pub fn watch(path: &Path) -> Result<(FileWatcher, mpsc::Receiver<()>), WatchError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut names: Vec<OsString> = path.file_name().map(OsString::from).into_iter().collect();
    names.push(CONFIGMAP_DATA.into());
    let target = symlink_target(path, &dir);
    if let Some((_, name)) = &target {
        names.push(name.clone());
    }
    let (tx, rx) = mpsc::channel(1);
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else {
            // An error (e.g. queue overflow) may hide a change: look again.
            let _ = tx.try_send(());
            return;
        };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let relevant = event
            .paths
            .iter()
            .any(|p| p.file_name().is_some_and(|f| names.iter().any(|n| n == f)));
        if relevant {
            // Full: a signal is already pending, which covers this one.
            let _ = tx.try_send(());
        }
    };
    let err = |source| WatchError {
        dir: dir.display().to_string(),
        source,
    };
    let mut watcher = notify::recommended_watcher(handler).map_err(err)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(err)?;
    if let Some((target_dir, _)) = target {
        // Best effort: the link's own directory is watched either way.
        let _ = watcher.watch(&target_dir, RecursiveMode::NonRecursive);
    }
    Ok((
        FileWatcher {
            _watcher: watcher,
            dir,
        },
        rx,
    ))
}

/// The directory and name `path` points to, when it is a symlink into a
/// directory other than `dir`.
fn symlink_target(path: &Path, dir: &Path) -> Option<(PathBuf, OsString)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::canonicalize(path).ok()?;
    let target_dir = target.parent()?.to_owned();
    let same = std::fs::canonicalize(dir).is_ok_and(|d| d == target_dir);
    (!same).then(|| {
        (
            target_dir,
            target.file_name().map(OsString::from).unwrap_or_default(),
        )
    })
}

// === impl FileWatcher ===

impl FileWatcher {
    /// The directory being watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn signalled(rx: &mut mpsc::Receiver<()>) -> bool {
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .is_ok()
    }

    async fn drain(rx: &mut mpsc::Receiver<()>) {
        while tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_ok()
        {}
    }

    #[tokio::test]
    async fn sees_writes_renames_and_ignores_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("serin.toml");
        std::fs::write(&file, "a").unwrap();
        let (_w, mut rx) = watch(&file).unwrap();

        std::fs::write(&file, "b").unwrap();
        assert!(signalled(&mut rx).await, "in-place write");
        drain(&mut rx).await;

        let tmp = dir.path().join(".serin.toml.swp");
        std::fs::write(&tmp, "c").unwrap();
        drain(&mut rx).await;
        std::fs::rename(&tmp, &file).unwrap();
        assert!(signalled(&mut rx).await, "rename over");
        drain(&mut rx).await;

        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "a neighbour's change is not a signal"
        );
    }

    #[tokio::test]
    async fn sees_edits_of_a_symlink_target_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let real = dir.path().join("real/routes.toml");
        std::fs::write(&real, "a").unwrap();
        let link = dir.path().join("serin.toml");
        std::os::unix::fs::symlink("real/routes.toml", &link).unwrap();
        let (_w, mut rx) = watch(&link).unwrap();
        std::fs::write(&real, "b").unwrap();
        assert!(signalled(&mut rx).await, "edit of the target");
    }
}
