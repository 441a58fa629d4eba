//! The task that turns "the routing file may have changed" signals
//! ([`serin_config::watch`]) into reloads: debounced, and skipped when the
//! file's bytes are the ones last looked at.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use super::{Outcome, Reloader};
use crate::event::Actor;

/// A burst of events (an editor's temp file, rename and chmod; a ConfigMap
/// swap) counts as one change once it has been quiet this long.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(200);

/// A file rewritten without pause is still reloaded this often.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// A routing file being watched, not yet acted on: set up before the
/// first read of the file, so no change after that read can be missed.
#[derive(Debug)]
pub struct Watch {
    watcher: serin_config::FileWatcher,
    rx: mpsc::Receiver<()>,
}

/// Starts watching the routing file at `path`.
///
/// # Errors
/// When the file's directory cannot be watched.
pub fn watch(path: &std::path::Path) -> Result<Watch, serin_config::WatchError> {
    let (watcher, rx) = serin_config::watch(path)?;
    Ok(Watch { watcher, rx })
}

// === impl Watch ===

impl Watch {
    /// Reloads `reloader`'s file on every change, as actor `file`, until
    /// the task is aborted.
    pub fn spawn(self, reloader: Arc<Reloader>) -> JoinHandle<()> {
        tokio::spawn(async move {
            // The watch lives as long as the task.
            let _watcher = self.watcher;
            run(reloader, self.rx).await;
        })
    }
}

async fn run(reloader: Arc<Reloader>, mut rx: mpsc::Receiver<()>) {
    while rx.recv().await.is_some() {
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            let quiet = DEBOUNCE.min(deadline.saturating_duration_since(Instant::now()));
            match timeout(quiet, rx.recv()).await {
                Ok(Some(())) if Instant::now() < deadline => continue,
                Ok(None) => return,
                _ => break,
            }
        }
        let r = reloader.clone();
        // File reads, parsing and fsyncs: off the async workers.
        let done = tokio::task::spawn_blocking(move || r.reload_if_changed(Actor::File)).await;
        match done {
            Ok(Some(Ok(Outcome::Applied { revision, .. }))) => {
                tracing::info!(%revision, "routing file applied");
            }
            Ok(Some(Ok(Outcome::Unchanged { .. })) | None) => {}
            // Rejections are logged and recorded by the reloader.
            Ok(Some(Err(e))) => tracing::debug!(error = %e, "reload refused"),
            Err(e) => tracing::error!(error = %e, "reload task failed"),
        }
    }
}
