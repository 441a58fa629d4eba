//! Upstream connections: HTTP/1.1 keep-alive connections to every version,
//! pooled by authority (so each version has its own idle connections) and
//! kept across table swaps.
//!
//! serin's own pool over `hyper::client::conn::http1`, not hyper-util's
//! legacy client: callgrind counted that client's pool bookkeeping (a
//! SipHash map taken on every check-out and check-in, its `Pooled` guard,
//! the `send_request` machinery) among the largest costs of a proxied
//! request (BENCHMARKS.md). Here a pool is a short list of authorities,
//! each with a stack of idle senders, behind a mutex that only its own
//! thread takes: there is one client per data-plane thread (`workers.rs`
//! gives each thread its own runtime, so a thread's connections and their
//! tasks stay on that thread).
//!
//! A request goes on the most recently used idle connection; one whose
//! upstream closed it meanwhile hands the request back unsent
//! (`try_send_request`) and the next connection gets it, so a stale
//! keep-alive connection never costs a version an error. A sender goes
//! back to the pool once its connection is ready for the next request
//! (the response body read); idle ones older than [`POOL_IDLE`] are dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{header, HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::body::UpstreamBody;

/// Idle upstream connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Idle connections kept per authority; more are closed when they come back.
const MAX_IDLE: usize = 1024;

/// Clients by worker thread.
#[derive(Debug)]
pub(crate) struct Upstreams {
    clients: Box<[UpstreamClient]>,
}

/// The client every version is reached through: a pool of keep-alive
/// connections per authority.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamClient {
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    connect_timeout: Duration,
    idle: Mutex<Vec<(Authority, Vec<Idle>)>>,
}

#[derive(Debug)]
struct Idle {
    tx: SendRequest<UpstreamBody>,
    since: Instant,
}

/// Why an attempt got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection: refused, unreachable, the connect timeout, DNS.
    #[error("connect {authority}: {source}")]
    Connect {
        authority: Authority,
        source: std::io::Error,
    },
    /// The connection failed before response headers (reset, closed early,
    /// a malformed answer), or the request body failed on the way.
    #[error(transparent)]
    Http(#[from] hyper::Error),
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
            clients: (0..n)
                .map(|_| UpstreamClient::new(connect_timeout))
                .collect(),
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

// === impl UpstreamClient ===

impl UpstreamClient {
    /// A client whose connect attempts give up after `connect_timeout`, so
    /// an unreachable version fails fast and the chain moves on; a
    /// version's own `timeout` bounds the whole attempt.
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        Self {
            pool: Arc::new(Pool {
                connect_timeout,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends `req` (origin-form URI) to `scheme://authority` and waits for
    /// the response head.
    ///
    /// # Errors
    /// No connection could be made (an `https` version among them: TLS to
    /// upstreams is not built yet), or it failed before response headers.
    pub(crate) async fn request(
        &self,
        scheme: &Scheme,
        authority: &Authority,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        if *scheme != Scheme::HTTP {
            return Err(UpstreamError::Connect {
                authority: authority.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "https upstreams are not supported",
                ),
            });
        }
        if !req.headers().contains_key(header::HOST) {
            if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                req.headers_mut().insert(header::HOST, host);
            }
        }
        loop {
            let (mut tx, pooled) = match self.pool.checkout(authority) {
                Some(tx) => (tx, true),
                None => (self.connect(authority).await?, false),
            };
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    self.checkin_when_ready(authority.clone(), tx);
                    return Ok(resp);
                }
                // A pooled connection closed meanwhile, the request unsent:
                // the next one gets it.
                Err(mut e) if pooled => match e.take_message() {
                    Some(r) => req = r,
                    None => return Err(e.into_error().into()),
                },
                Err(e) => return Err(e.into_error().into()),
            }
        }
    }

    async fn connect(
        &self,
        authority: &Authority,
    ) -> Result<SendRequest<UpstreamBody>, UpstreamError> {
        let failed = |source| UpstreamError::Connect {
            authority: authority.clone(),
            source,
        };
        let stream = tokio::time::timeout(self.pool.connect_timeout, tcp(authority))
            .await
            .map_err(|_| {
                failed(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(failed)?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection's own task; upgrades (WebSocket) keep the socket.
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::trace!(error = %e, "upstream connection ended");
            }
        });
        Ok(tx)
    }

    /// Returns `tx` to the pool once its connection can take the next
    /// request; a connection that closes (or upgrades) never comes back.
    fn checkin_when_ready(&self, authority: Authority, mut tx: SendRequest<UpstreamBody>) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if tx.ready().await.is_ok() {
                pool.checkin(authority, tx);
            }
        });
    }
}

/// A TCP connection to the first address of `authority` that answers.
async fn tcp(authority: &Authority) -> std::io::Result<TcpStream> {
    let port = authority.port_u16().unwrap_or(80);
    let mut last = None;
    for addr in tokio::net::lookup_host((authority.host(), port)).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_keepalive(true)?;
        socket.set_nodelay(true)?;
        match socket.connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host")
    }))
}

// === impl Pool ===

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Authority, Vec<Idle>)>> {
        // Idle senders only: a panic elsewhere leaves nothing inconsistent.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used idle connection that is still open and fresh.
    fn checkout(&self, authority: &Authority) -> Option<SendRequest<UpstreamBody>> {
        let mut idle = self.lock();
        let (_, stack) = idle.iter_mut().find(|(a, _)| a == authority)?;
        let now = Instant::now();
        while let Some(i) = stack.pop() {
            if i.tx.is_ready() && now.duration_since(i.since) < POOL_IDLE {
                return Some(i.tx);
            }
        }
        None
    }

    fn checkin(&self, authority: Authority, tx: SendRequest<UpstreamBody>) {
        let now = Instant::now();
        let mut idle = self.lock();
        let stack = match idle.iter().position(|(a, _)| *a == authority) {
            Some(i) => &mut idle[i].1,
            None => {
                idle.push((authority, Vec::new()));
                &mut idle.last_mut().expect("just pushed").1
            }
        };
        // The oldest are at the bottom: drop the stale ones there.
        let fresh = stack
            .iter()
            .position(|i| now.duration_since(i.since) < POOL_IDLE && !i.tx.is_closed())
            .unwrap_or(stack.len());
        stack.drain(..fresh);
        if stack.len() < MAX_IDLE {
            stack.push(Idle { tx, since: now });
        }
    }
}
