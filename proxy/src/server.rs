//! Accept loops and connection serving: HTTP/1.1 with keep-alive and HTTP/2
//! (prior knowledge on `listen.http`, ALPN on `listen.https`), bounded by
//! `[limits]`, with graceful drain.
//!
//! On TLS the negotiated ALPN alone decides: `h2` is served as HTTP/2 only
//! (a bad preface is a connection error, never an HTTP/1.1 400), anything
//! else, or no ALPN, as HTTP/1.1 only. On plain TCP the first bytes decide
//! (the HTTP/2 preface, or HTTP/1.1).
//!
//! One [`Server`] serves every data-plane listener of the process, so
//! `max_connections` counts the connections of both. A connection task
//! owns its slot (a semaphore permit): at the limit the accept loop stops
//! taking connections until one closes, and the kernel's backlog holds the
//! new ones. The per-connection clocks (header read, idle) are `limits`'.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serin_config::Limits;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::headers::Peer;
use crate::limits::{Activity, Guarded, Verdict, Watched};
use crate::proxy::Proxy;
use crate::tls::Tls;
use crate::workers::Workers;

/// hyper refuses an HTTP/1.1 read buffer smaller than this.
const MIN_BUF: usize = 8 * 1024;

/// The data plane's connection server, shared by its listeners.
#[derive(Debug)]
pub(crate) struct Server {
    /// Plain TCP: HTTP/1.1 or HTTP/2 by the first bytes.
    builder: auto::Builder<TokioExecutor>,
    /// TLS by ALPN: HTTP/1.1 only, or HTTP/2 only (the same settings).
    h1: http1::Builder,
    h2: auto::Builder<TokioExecutor>,
    /// Failed TLS handshakes, logged at a bounded rate.
    handshakes: crate::tls::FailureLog,
    limits: Limits,
    slots: Arc<Semaphore>,
    proxy: Arc<Proxy>,
}

/// How a connection's protocol is chosen.
#[derive(Debug, Clone, Copy)]
enum Proto {
    /// Plain TCP: the HTTP/2 preface, or HTTP/1.1.
    Sniff,
    /// TLS whose ALPN chose `http/1.1`, or none.
    H1,
    /// TLS whose ALPN chose `h2`.
    H2,
}

/// An accepted connection on its way to the task that serves it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: Stream,
    addr: std::net::SocketAddr,
    tls: Option<Arc<Tls>>,
    /// Its place under `max_connections`, held until it closes.
    slot: OwnedSemaphorePermit,
}

/// A TCP stream registered with the accepting runtime, or detached from it
/// to be registered with a worker's.
#[derive(Debug)]
pub(crate) enum Stream {
    Tokio(TcpStream),
    Std(std::net::TcpStream),
}

// === impl Server ===

impl Server {
    /// A server for `proxy` under `limits` (fixed for the process's life).
    pub(crate) fn new(proxy: Arc<Proxy>, limits: &Limits) -> Arc<Self> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's own header timer also runs while a kept-alive connection
        // idles, so it is off: `limits.rs` keeps both clocks. The read
        // buffer bounds a request head: a larger one gets 431.
        let max_head = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(max_head.max(MIN_BUF))
            .keep_alive(true);
        // The same, for TLS connections ALPN put on HTTP/1.1.
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(max_head.max(MIN_BUF))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        Arc::new(Self {
            h1,
            h2: builder.clone().http2_only(),
            builder,
            handshakes: crate::tls::FailureLog::default(),
            limits: limits.clone(),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            proxy,
        })
    }

    /// Serves `listener` (TLS when `tls` is set) until `shutdown` turns
    /// true; then stops accepting (the listener is closed, so new clients
    /// are refused), asks open connections to finish (HTTP/1.1: close after
    /// the response in flight; HTTP/2: GOAWAY) and waits up to
    /// `drain_timeout` before closing what is left. Connections run on this
    /// task's runtime.
    pub(crate) async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Tls>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut conns = JoinSet::new();
        let stop = shutdown.clone();
        let me = self.clone();
        self.accept(listener, tls, shutdown, |conn| {
            while conns.try_join_next().is_some() {}
            let me = me.clone();
            let stop = stop.clone();
            conns.spawn(async move { me.run(conn, stop).await });
        })
        .await;
        self.drain(conns).await;
    }

    /// As [`Server::serve`], with connections handed to `workers` (each on
    /// its own thread and runtime) instead of run here.
    pub(crate) async fn serve_on(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Tls>,
        workers: Workers,
        shutdown: watch::Receiver<bool>,
    ) {
        self.accept(listener, tls, shutdown, |conn| workers.hand(conn))
            .await;
    }

    /// The accept loop: a slot, then a connection, handed to `run`, until
    /// `shutdown`; the listener is closed when it returns.
    async fn accept(
        &self,
        listener: TcpListener,
        tls: Option<Tls>,
        mut shutdown: watch::Receiver<bool>,
        mut run: impl FnMut(Conn),
    ) {
        // Shared by the connections: one reference count each, no copy.
        let tls = tls.map(Arc::new);
        let stopped = async move { stopped(&mut shutdown).await };
        tokio::pin!(stopped);
        loop {
            // A slot first: at the limit, accepting pauses.
            let slot = tokio::select! {
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => break,
                },
                () = &mut stopped => break,
            };
            let (stream, addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                () = &mut stopped => break,
            };
            let _ = stream.set_nodelay(true);
            run(Conn {
                stream: Stream::Tokio(stream),
                addr,
                tls: tls.clone(),
                slot,
            });
        }
    }

    /// Waits up to `drain_timeout` for `conns`, then closes what is left.
    pub(crate) async fn drain(&self, mut conns: JoinSet<()>) {
        let drain = self.limits.drain_timeout;
        let waited =
            tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
        match waited {
            // Once per worker or listener: `App::serve` says it once for all.
            Ok(()) => tracing::debug!("connections drained"),
            Err(_) => {
                tracing::warn!(
                    ?drain,
                    open = conns.len(),
                    "drain timeout; closing open connections"
                );
                conns.shutdown().await;
            }
        }
    }

    /// Serves one accepted connection on the current runtime.
    pub(crate) async fn run(self: Arc<Self>, conn: Conn, stop: watch::Receiver<bool>) {
        let stream = match conn.stream {
            Stream::Tokio(s) => s,
            Stream::Std(s) => match TcpStream::from_std(s) {
                Ok(s) => s,
                Err(e) => return tracing::warn!(error = %e, "connection not registered"),
            },
        };
        self.accepted(stream, conn.addr, conn.tls, stop, conn.slot)
            .await;
    }

    /// One accepted TCP connection: the TLS handshake if any (bounded by the
    /// header read timeout), then HTTP.
    async fn accepted(
        self: Arc<Self>,
        stream: TcpStream,
        addr: std::net::SocketAddr,
        tls: Option<Arc<Tls>>,
        stop: watch::Receiver<bool>,
        _slot: OwnedSemaphorePermit,
    ) {
        let Some(tls) = tls else {
            let peer = Peer { addr, tls: false };
            return self
                .connection(stream, Proto::Sniff, peer, Activity::new(false), stop)
                .await;
        };
        let handshake = tls.acceptor().accept(stream);
        let stream = match tokio::time::timeout(self.limits.header_read_timeout, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.handshakes.failed(addr, &e),
            Err(_) => return self.handshakes.failed(addr, &"timed out"),
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let peer = Peer { addr, tls: true };
        let proto = if h2 { Proto::H2 } else { Proto::H1 };
        self.connection(stream, proto, peer, Activity::new(h2), stop)
            .await;
    }

    /// Serves HTTP on `io` until the client leaves, a limit cuts it, or the
    /// drain asks it to finish.
    async fn connection<S>(
        &self,
        io: S,
        proto: Proto,
        peer: Peer,
        activity: Arc<Activity>,
        stop: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let proxy = self.proxy.clone();
        let watched = activity.clone();
        let svc = service_fn(move |req| {
            let guard = watched.begin();
            let proxy = proxy.clone();
            // Boxed: hyper moves the future by value into its in-flight
            // slot; a box is one allocation where the move copied ~5 KiB
            // (callgrind: fewer instructions per request boxed).
            Box::pin(async move {
                // Logs 499 if the client leaves before the answer.
                let watch = proxy.access().map(|log| {
                    crate::access::Watch::new(crate::access::Seen::of(&req), log, peer.addr)
                });
                let mut resp = proxy.handle(req, peer).await;
                let log = watch.and_then(|w| w.answered(&mut resp)).map(Box::new);
                Ok::<_, Infallible>(resp.map(|b| Guarded::new(b, guard, log)))
            })
        });
        let io = TokioIo::new(Watched::new(io, activity.clone()));
        // Three connection types, one loop: each names its own way to
        // finish. (hyper-util's auto builder sniffs the protocol even when
        // told one, so ALPN's choice is served by hyper's builders.)
        match proto {
            Proto::Sniff => {
                let conn = self.builder.serve_connection_with_upgrades(io, svc);
                self.drive(conn, |c| c.graceful_shutdown(), peer, &activity, stop)
                    .await;
            }
            Proto::H1 => {
                let conn = self.h1.serve_connection(io, svc).with_upgrades();
                self.drive(conn, |c| c.graceful_shutdown(), peer, &activity, stop)
                    .await;
            }
            Proto::H2 => {
                let conn = self.h2.serve_connection(io, svc);
                self.drive(conn, |c| c.graceful_shutdown(), peer, &activity, stop)
                    .await;
            }
        }
    }

    /// Runs `conn` until the client leaves, a limit cuts it, or the drain
    /// asks it to `finish` (HTTP/1.1: close after the response in flight;
    /// HTTP/2: GOAWAY).
    async fn drive<C, E>(
        &self,
        conn: C,
        finish: impl Fn(std::pin::Pin<&mut C>),
        peer: Peer,
        activity: &Activity,
        mut stop: watch::Receiver<bool>,
    ) where
        C: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        tokio::pin!(conn);
        // Set once the connection was asked to finish: by the drain (the
        // serve loop bounds it) or for idleness (bounded here).
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            let wake = match (closing, activity.verdict(&self.limits)) {
                (Some(by), _) => by,
                (None, Verdict::Wait(at)) => at,
                (None, Verdict::HeadTimeout) => {
                    return tracing::debug!(peer = %peer.addr, "request head too slow; closed");
                }
                (None, Verdict::Idle) => {
                    finish(conn.as_mut());
                    let by = tokio::time::Instant::now() + self.limits.header_read_timeout;
                    closing = Some(by);
                    by
                }
            };
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = tokio::time::sleep_until(wake) => {
                    if closing.is_some_and(|by| by <= tokio::time::Instant::now()) {
                        return;
                    }
                }
                () = stopped(&mut stop), if closing.is_none() => {
                    finish(conn.as_mut());
                    // The serve loop's drain timeout bounds the rest.
                    closing = Some(tokio::time::Instant::now() + Duration::from_secs(86_400));
                }
            }
        }
    }
}

/// Resolves once `rx` holds true (at once if it already does).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: dropped at once.
    let _ = rx.wait_for(|stop| *stop).await;
}
