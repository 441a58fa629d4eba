//! Thread per core for the data plane: `serin run` serves connections on N
//! worker threads, each with its own current-thread tokio runtime.
//!
//! A connection, its requests and the upstream connections they open then
//! live on one thread and one scheduler: no work stealing, no cross-thread
//! wake-up between a client connection and its upstream's connection task,
//! no shared run queue; each thread also keeps its own upstream pool
//! (`upstream.rs`). This is nginx's model. Measured side by side against
//! the one multi-thread runtime it replaced (BENCHMARKS.md): +37% requests/s
//! at 2 workers, +11% at 1.
//!
//! The accept loops stay on the control runtime (beside the admin API and
//! the engine) and hand each connection, detached from their reactor, to
//! the next worker in turn: every worker gets its share however the kernel
//! would have woken them, and `max_connections` is counted in one place.
//! When the accept loops end (drain), the workers' queues close and each
//! worker drains its own connections.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::server::{Conn, Server, Stream};

/// Where accept loops hand connections: cheap to clone, one per loop. The
/// workers end once every clone is dropped and their connections drained.
#[derive(Debug, Clone)]
pub(crate) struct Workers {
    queues: Arc<[mpsc::UnboundedSender<Conn>]>,
    next: Arc<AtomicUsize>,
}

/// Resolves once every worker thread has drained and stopped.
#[derive(Debug)]
pub(crate) struct Drained(Vec<oneshot::Receiver<()>>);

// === impl Workers ===

impl Workers {
    /// Starts `n` worker threads serving connections for `server`; `stop`
    /// asks their connections to finish (the drain).
    ///
    /// # Errors
    /// When a thread or its runtime cannot be started; the threads already
    /// started end at once (their queues close).
    pub(crate) fn start(
        server: &Arc<Server>,
        n: usize,
        stop: &watch::Receiver<bool>,
    ) -> std::io::Result<(Self, Drained)> {
        let mut queues = Vec::with_capacity(n);
        let mut done = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let (done_tx, done_rx) = oneshot::channel();
            let (server, stop) = (server.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("serin-data-{i}"))
                .spawn(move || {
                    rt.block_on(work(server, rx, stop));
                    let _ = done_tx.send(());
                })?;
            queues.push(tx);
            done.push(done_rx);
        }
        let workers = Self {
            queues: queues.into(),
            next: Arc::new(AtomicUsize::new(0)),
        };
        Ok((workers, Drained(done)))
    }

    /// Hands `conn` to the next worker.
    pub(crate) fn hand(&self, mut conn: Conn) {
        // Detached from the accepting runtime's reactor; the worker
        // registers it with its own.
        if let Stream::Tokio(s) = conn.stream {
            conn.stream = match s.into_std() {
                Ok(s) => Stream::Std(s),
                Err(e) => return tracing::warn!(error = %e, "connection not handed over"),
            };
        }
        let i = self.next.fetch_add(1, Relaxed) % self.queues.len();
        if self.queues[i].send(conn).is_err() {
            tracing::error!(worker = i, "data-plane worker is gone; connection dropped");
        }
    }
}

/// One worker: serves what it is handed until its queue closes, then drains.
async fn work(
    server: Arc<Server>,
    mut queue: mpsc::UnboundedReceiver<Conn>,
    stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    while let Some(conn) = queue.recv().await {
        while conns.try_join_next().is_some() {}
        conns.spawn(server.clone().run(conn, stop.clone()));
    }
    server.drain(conns).await;
}

// === impl Drained ===

impl Drained {
    /// Waits for every worker (a worker that panicked counts as stopped).
    pub(crate) async fn wait(self) {
        for done in self.0 {
            let _ = done.await;
        }
    }
}
