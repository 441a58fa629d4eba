//! Upstream connections: pooled keep-alive clients shared by every version
//! (a pool is keyed by authority, so each version has its own idle
//! connections), kept across table swaps.
//!
//! One client per data-plane thread, not one for the process:
//! hyper-util's pool sits behind one mutex, and with a single client every
//! request of every thread would take it twice (check out, check in). With
//! one current-thread runtime per worker (`workers.rs`), a thread's pooled
//! connections and their tasks also stay on that thread.

use std::time::Duration;

use crate::body::UpstreamBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The client every version is reached through.
pub(crate) type UpstreamClient = Client<HttpConnector, UpstreamBody>;

/// Idle upstream connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Clients by worker thread.
#[derive(Debug)]
pub(crate) struct Upstreams {
    clients: Box<[UpstreamClient]>,
}

// === impl Upstreams ===

impl Upstreams {
    /// One client per core (at most 16): a thread keeps to its own.
    /// Connects give up after `connect_timeout` (`[limits]`).
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 16);
        Self {
            clients: (0..n).map(|_| client(connect_timeout)).collect(),
        }
    }

    /// This thread's client.
    #[inline]
    pub(crate) fn get(&self) -> &UpstreamClient {
        &self.clients[thread_index() % self.clients.len()]
    }
}

/// A small number per thread, handed out round-robin on first use.
fn thread_index() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static INDEX: Cell<usize> = const { Cell::new(usize::MAX) });
    INDEX.with(|i| {
        if i.get() == usize::MAX {
            i.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        i.get()
    })
}

/// Builds one upstream client. Connect attempts give up after
/// `connect_timeout`, so an unreachable version fails fast and the chain
/// moves on; a version's own `timeout` bounds the whole attempt.
pub(crate) fn client(connect_timeout: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(http)
}
