//! Fake versioned upstreams: small HTTP servers that say which version they
//! are and misbehave on demand.
//!
//! A [`FakeVersion`] binds a port and serves HTTP/1.1 (keep-alive, upgrades)
//! and h2c with prior knowledge on it. Every response carries
//! `x-upstream-version: NAME`. Endpoints:
//!
//! | path | answer |
//! |---|---|
//! | any | 200, body `NAME\n` |
//! | `/health` | 200 `ok`, or 503 while [`Faults::set_health_fail`] is on; no answer while [`Faults::set_health_hang`] is on |
//! | `/echo` | 200, JSON: version, method, path, headers, `body_len`, `body_fnv`, `body` (≤ 64 KiB) |
//! | `/upload` | 200, JSON `{"bytes": N, "fnv": "hex"}`, the body read as a stream |
//! | `/download?bytes=N` | 200, N bytes, byte i = [`pattern_byte`]`(i)`, in 64 KiB chunks |
//! | `/delay?ms=N` | 200 after N ms |
//! | `/status?code=N` | that status |
//! | `Upgrade: *` (HTTP/1.1) | 101, then echoes raw bytes |
//!
//! Faults ([`Faults`]) apply before the endpoint, in this order: refuse and
//! close-mid-headers, hang, latency, status override, error rate (never on
//! `/health`). The serving path takes no lock: faults are atomics and the
//! default body is one `Bytes` made at start.

mod body;
mod conn;
mod faults;
mod service;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use self::body::pattern_byte;
pub use self::faults::{Faults, SIGNAL_HEADER};
use self::service::Shared;
pub use self::service::X_UPSTREAM_VERSION;

/// How long the accept loop pauses after a failed accept (out of file
/// descriptors, say) instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A fake version to start: a name and the address to bind.
#[derive(Clone, Debug)]
pub struct FakeVersion {
    name: String,
    addr: SocketAddr,
}

/// A running fake version.
///
/// Dropping the handle stops the server as [`FakeHandle::shutdown`] does,
/// without waiting for it.
#[derive(Debug)]
pub struct FakeHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

// === impl FakeVersion ===

impl FakeVersion {
    /// A version called `name` that will bind `127.0.0.1:0` (any free port).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }

    /// Binds `addr` instead.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Binds `127.0.0.1:0` and serves as `name`; see [`FakeVersion::spawn`].
    ///
    /// # Errors
    ///
    /// As [`FakeVersion::spawn`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(name: &str) -> std::io::Result<FakeHandle> {
        Self::new(name).spawn()
    }

    /// Binds `addr` and serves as `name`; see [`FakeVersion::spawn`].
    ///
    /// # Errors
    ///
    /// As [`FakeVersion::spawn`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start_on(name: &str, addr: SocketAddr) -> std::io::Result<FakeHandle> {
        Self::new(name).listen(addr).spawn()
    }

    /// Binds the address and serves on a task of the current runtime. The
    /// port accepts connections when this returns.
    ///
    /// # Errors
    ///
    /// The bind error, or `InvalidInput` when the name cannot be a header value.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(self) -> std::io::Result<FakeHandle> {
        // A std bind keeps `start` synchronous; tokio takes the socket over.
        let listener = std::net::TcpListener::bind(self.addr)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(&self.name, rx.clone())?);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), rx));
        Ok(FakeHandle {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }
}

// === impl FakeHandle ===

impl FakeHandle {
    /// The version's name, as in `x-upstream-version`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, ready for a routing file.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fault switches, live.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The fault switches, to hand to another task.
    pub fn faults_arc(&self) -> Arc<Faults> {
        self.shared.faults.clone()
    }

    /// Requests received so far, faulted ones included; a connection reset
    /// by the refuse fault is no request.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Relaxed)
    }

    /// `/health` requests received so far (counted in
    /// [`FakeHandle::requests`] too), so traffic can be told from probes.
    pub fn health_requests(&self) -> u64 {
        self.shared.health_requests.load(Relaxed)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> u64 {
        self.shared.connections.load(Relaxed)
    }

    /// Stops accepting, closes every connection (upgraded ones included),
    /// and returns once the port is released: a connect then is refused.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            // A panic in the accept loop is already reported by tokio.
            let _ = task.await;
        }
    }
}

impl Drop for FakeHandle {
    fn drop(&mut self) {
        // The accept loop and upgraded connections watch this value.
        let _ = self.shutdown.send(true);
    }
}

/// Accepts until told to stop; owns every connection task so that stopping
/// aborts them all.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(conn::serve(stream, shared.clone(), builder.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}

/// Resolves once the server is told to stop or its handle is gone.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // `Err` means the sender was dropped, which is a stop as well; the guard
    // `wait_for` returns is dropped here, as it must not live across awaits.
    let _ = stop.wait_for(|stop| *stop).await;
}
