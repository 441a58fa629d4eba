//! Certificate reload: poll both files' modification time and size every
//! 2 s; once a change has held still for one poll (so a certificate and a
//! key written one after the other are read together), load them. A good
//! pair is swapped in and recorded as `tls_reloaded`; a bad one keeps the
//! old certificate serving and is recorded as `tls_rejected`.
//!
//! Polling rather than the `notify` watcher the routing file uses: two
//! small files, a 2 s delay is fine for certificates, and it also sees
//! files replaced behind a symlink (cert-manager, Kubernetes secrets).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serin_control::Live;
use serin_control::{Actor, Draft, EventKind};
use tokio::task::JoinHandle;

use super::Tls;

/// How often the files are looked at.
const POLL: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
type Stamp = Option<(SystemTime, u64)>;

/// Polls `tls`'s files until aborted; events go to `live`'s audit log.
pub(crate) fn spawn_reload(tls: Tls, live: Arc<Live>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut loaded = (stamp(&tls.cert), stamp(&tls.key));
        let mut seen = loaded;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = (stamp(&tls.cert), stamp(&tls.key));
            // Act on a change only once it held still for a whole poll.
            let settled = now == seen;
            seen = now;
            if !settled || now == loaded {
                continue;
            }
            loaded = now;
            let t = tls.clone();
            let result = tokio::task::spawn_blocking(move || t.reload()).await;
            let draft = match result {
                Ok(Ok(())) => {
                    tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
                    Draft::new(
                        Actor::File,
                        EventKind::TlsReloaded,
                        format!("{} reloaded", tls.cert.display()),
                    )
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "TLS certificate rejected; the previous one keeps serving");
                    Draft::new(Actor::File, EventKind::TlsRejected, e.to_string())
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload task failed");
                    continue;
                }
            };
            live.shared().events.record(draft);
        }
    })
}

fn stamp(path: &Path) -> Stamp {
    // metadata follows symlinks: a swapped link target counts as a change.
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}
