//! Upstream connections: HTTP/1.1 keep-alive connections to every version,
//! pooled by authority (so each version has its own idle connections) and
//! kept across table swaps.
//!
//! serin's own HTTP/1.1 client on `httparse` (`upstream/wire.rs`), driven
//! inline by the request's task (`upstream/conn.rs`): no connection task,
//! no channel, no spawned check-in. callgrind counted hyper's client
//! connection task and dispatch channel as ~30% of a proxied request's
//! instructions, and its response parse as another 9% (BENCHMARKS.md).
//! A pool is a short list of authorities, each with a stack of idle
//! connections, behind a mutex that only its own thread takes: there is one
//! client per data-plane thread (`workers.rs` gives each thread its own
//! runtime, so a thread's connections stay on that thread).
//!
//! A request goes on the most recently used idle connection that is still
//! open (a non-blocking read tells, without a system call unless the socket
//! became readable); a pooled connection the version closed just as the
//! request went out is retried once on a fresh one when nothing of the
//! request could have been taken (nothing written, or an idempotent
//! request with nothing answered), so a stale keep-alive connection never
//! costs a version an error. A connection goes back to the pool when its
//! response body ends cleanly (`upstream/response.rs`), holding no buffer
//! while idle; idle ones older than [`POOL_IDLE`] are closed.

mod conn;
mod h2;
mod io;
mod probe;
mod response;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use http::uri::{Authority, Scheme};
use http::{header, HeaderValue, Request, Response};
use http_body::Body;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::body::UpstreamBody;
use crate::headers::Forwarding;

pub(crate) use conn::Conn;
use conn::{Progress, SendError};
use io::Io;
pub(crate) use probe::ProbeConnector;
pub(crate) use response::RespBody;
use serin_config::UpstreamTls;
use serin_control::VersionSnap;

/// Idle upstream connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// TCP keepalive probes start after this much silence.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

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
pub(crate) struct Pool {
    connect_timeout: Duration,
    /// Idle connections kept per key (`[limits] upstream_max_idle`); more
    /// are closed when they come back.
    max_idle: usize,
    idle: Mutex<Vec<(Key, Vec<Idle>)>>,
    /// One HTTP/2 connection per HTTP/2 version, shared by this thread's
    /// requests to it.
    h2: Mutex<Vec<(Key, h2::Sender)>>,
    /// Whether the sweeper task runs (started by the first check-in, on
    /// the runtime of the thread that owns this pool).
    sweeping: std::sync::atomic::AtomicBool,
}

/// What a pooled connection was made for: a version's authority and how
/// it is reached. Connections are shared only between equal keys.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    authority: Authority,
    proto: Proto,
}

#[derive(Debug, Clone)]
enum Proto {
    Http,
    H2c,
    /// The same client configuration (compared by pointer: equal settings
    /// share one across reloads, see `serin-control`'s compile).
    Tls(Arc<rustls::ClientConfig>),
}

/// A version as the client reaches it, borrowed from its snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) scheme: &'a Scheme,
    pub(crate) authority: &'a Authority,
    pub(crate) tls: Option<&'a UpstreamTls>,
}

/// A new connection, as the version's protocol makes it.
enum Fresh {
    H1(Conn),
    H2(h2::Sender),
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

/// Why an attempt got no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// No connection: refused, unreachable, the connect timeout, DNS, a
    /// failed TLS handshake.
    #[error("connect {authority}: {source}")]
    Connect {
        authority: Authority,
        source: std::io::Error,
    },
    /// The connection failed before response headers (reset, closed early,
    /// a malformed or ambiguous answer).
    #[error(transparent)]
    Exchange(SendError),
    /// The client's request body failed on the way: the client's fault.
    #[error(transparent)]
    Body(crate::body::BodyError),
    /// The same, seen through the HTTP/2 client (which keeps the error).
    #[error("the request body failed ({0:?})")]
    ClientBody(crate::classify::BodyFault),
    /// `101 Switching Protocols` to a request that asked for no upgrade
    /// (or for one serin does not pass on): never handed to the client.
    #[error("the version switched protocols unasked")]
    UnaskedSwitch,
}

// === impl Upstreams ===

impl Upstreams {
    /// One client per core (at most 16): a thread keeps to its own.
    /// Connects give up after `upstream_connect_timeout`; each keeps
    /// `upstream_max_idle` idle connections per version (`[limits]`).
    pub(crate) fn new(limits: &serin_config::Limits) -> Self {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 16);
        Self {
            clients: (0..n)
                .map(|_| {
                    UpstreamClient::new(limits.upstream_connect_timeout, limits.upstream_max_idle)
                })
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
    /// an unreachable version fails fast and the chain moves on; the
    /// attempt's clock (`fallback::Clock`) bounds the rest. At most
    /// `max_idle` idle connections are kept per version.
    pub(crate) fn new(connect_timeout: Duration, max_idle: usize) -> Self {
        Self {
            pool: Arc::new(Pool {
                connect_timeout,
                max_idle,
                idle: Mutex::new(Vec::new()),
                h2: Mutex::new(Vec::new()),
                sweeping: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Sends `req` (origin-form URI) to the version `to` and waits for the
    /// response head: HTTP/1.1 on a pooled or new connection, or HTTP/2
    /// (`h2c://`, or `https://` where the version chose `h2`).
    ///
    /// # Errors
    /// No connection could be made (a failed TLS handshake among them), or
    /// it failed before response headers.
    pub(crate) async fn request(
        &self,
        to: Target<'_>,
        req: Request<UpstreamBody>,
        fwd: Option<&Forwarding>,
    ) -> Result<Response<RespBody>, UpstreamError> {
        let authority = to.authority;
        if *to.scheme != Scheme::HTTP {
            if let Some(sender) = self.pool.h2_sender(to) {
                return Box::pin(self.send_h2(to, sender, req, fwd)).await;
            }
        }
        let (parts, mut body) = req.into_parts();
        // A request that named no host at all (HTTP/1.0) goes with the
        // version's.
        let fallback_host = (fwd.is_none_or(|f| f.host.is_none())
            && !parts.headers.contains_key(header::HOST))
        .then(|| HeaderValue::from_str(authority.as_str()).ok())
        .flatten();
        let hint = body.size_hint();
        let framing = wire::request_framing(
            &parts.method,
            &parts.headers,
            hint.exact(),
            body.is_end_stream(),
        );
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut head = BytesMut::new();
        let extra = wire::Extra {
            fwd,
            host: fallback_host.as_ref(),
        };
        wire::encode_head(
            &mut head,
            &parts.method,
            target,
            &parts.headers,
            &extra,
            framing,
        );
        // A kept body can go again on a second connection.
        let again = match &body {
            UpstreamBody::Full(b) => Some(b.clone()),
            _ => None,
        };
        let idempotent = parts.method.is_idempotent();
        let mut retried = false;
        loop {
            // The one retry goes on a new connection, never another pooled one.
            let pooled = if retried {
                None
            } else {
                self.pool.checkout(to)
            };
            let (mut conn, pooled) = match pooled {
                Some(c) => (c, true),
                // Boxed: a new connection is the rare path, and its name
                // lookup's future would otherwise make every request's
                // future (moved by value into hyper) larger.
                None => match Box::pin(self.connect(to)).await? {
                    Fresh::H1(conn) => (conn, false),
                    Fresh::H2(sender) => {
                        let req = Request::from_parts(parts, body);
                        return Box::pin(self.send_h2(to, sender, req, fwd)).await;
                    }
                },
            };
            let mut progress = Progress::default();
            match conn
                .send(&head, &mut body, framing, &parts.method, &mut progress)
                .await
            {
                Ok(answered) => {
                    let head = answered.head;
                    let upgraded = head.status == http::StatusCode::SWITCHING_PROTOCOLS;
                    let reuse = head.keep_alive && answered.sent_whole && !upgraded;
                    let home = reuse.then(|| (self.pool.clone(), Key::of(to)));
                    let body = if upgraded {
                        RespBody::upgraded(conn)
                    } else {
                        RespBody::new(conn, head.framing, home)
                    };
                    let mut resp = Response::new(body);
                    *resp.status_mut() = head.status;
                    *resp.version_mut() = head.version;
                    *resp.headers_mut() = head.headers;
                    return Ok(resp);
                }
                Err(SendError::Body(e)) => return Err(UpstreamError::Body(e)),
                // A pooled connection the version closed meanwhile, before
                // a byte of an answer: once more on a new connection, when
                // nothing could have been taken (nothing written, or an
                // idempotent request).
                Err(SendError::Closed | SendError::Io(_))
                    if pooled
                        && !progress.answered
                        && (progress.written == 0 || idempotent)
                        && (!progress.body_taken || again.is_some()) =>
                {
                    retried = true;
                    if let Some(b) = &again {
                        body = UpstreamBody::Full(b.clone());
                    }
                }
                Err(e) => return Err(UpstreamError::Exchange(e)),
            }
        }
    }

    /// A new connection to `to`: TCP, then the TLS handshake for an
    /// `https://` version (whose ALPN answer picks the protocol), then the
    /// HTTP/2 preface for an HTTP/2 one, all within the connect timeout.
    async fn connect(&self, to: Target<'_>) -> Result<Fresh, UpstreamError> {
        let failed = |source| UpstreamError::Connect {
            authority: to.authority.clone(),
            source,
        };
        let deadline = Instant::now() + self.pool.connect_timeout;
        let stream = tcp(to.authority, self.pool.connect_timeout)
            .await
            .map_err(failed)?;
        let io = match to.tls {
            None => Io::Tcp(stream),
            Some(tls) => {
                let handshake = tokio_rustls::TlsConnector::from(tls.client.clone())
                    .connect(tls.server_name.clone(), stream);
                let stream = tokio::time::timeout_at(deadline, handshake)
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                    })
                    .and_then(|r| r)
                    .map_err(failed)?;
                Io::Tls(Box::new(stream))
            }
        };
        let h2 = *to.scheme == *H2C || io.alpn() == Some(b"h2");
        if !h2 {
            return Ok(Fresh::H1(Conn::new(io)));
        }
        let sender = tokio::time::timeout_at(deadline, h2::handshake(io))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP/2 handshake timed out")
            })
            .and_then(|r| r)
            .map_err(failed)?;
        self.pool.keep_h2(Key::of(to), sender.clone());
        Ok(Fresh::H2(sender))
    }

    /// Sends `req` on the HTTP/2 connection `sender`.
    async fn send_h2(
        &self,
        to: Target<'_>,
        mut sender: h2::Sender,
        req: Request<UpstreamBody>,
        fwd: Option<&Forwarding>,
    ) -> Result<Response<RespBody>, UpstreamError> {
        let scheme = if to.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let req = h2::request(req, scheme, to.authority, fwd).map_err(|e| {
            UpstreamError::Exchange(SendError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                e,
            )))
        })?;
        let h2_failed =
            |e: hyper::Error| UpstreamError::Exchange(SendError::Io(std::io::Error::other(e)));
        sender.ready().await.map_err(h2_failed)?;
        let resp = sender.send_request(req).await.map_err(|e| {
            // The client's body failing is the client's fault, as on HTTP/1.1.
            match std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<crate::body::BodyError>())
            {
                Some(b) => UpstreamError::ClientBody(b.fault()),
                None => h2_failed(e),
            }
        })?;
        Ok(resp.map(RespBody::h2))
    }
}

/// `h2c`, HTTP/2 with prior knowledge.
static H2C: std::sync::LazyLock<Scheme> =
    std::sync::LazyLock::new(|| "h2c".parse().expect("a valid scheme"));

// === impl Target ===

impl<'a> Target<'a> {
    /// How `v` is reached.
    pub(crate) fn of(v: &'a VersionSnap) -> Self {
        Self {
            scheme: &v.scheme,
            authority: &v.authority,
            tls: v.tls.as_ref(),
        }
    }
}

// === impl Key ===

impl Key {
    fn of(to: Target<'_>) -> Self {
        let proto = match to.tls {
            Some(tls) => Proto::Tls(tls.client.clone()),
            None if *to.scheme == *H2C => Proto::H2c,
            None => Proto::Http,
        };
        Self {
            authority: to.authority.clone(),
            proto,
        }
    }

    /// Same protocol and client configuration as `other`.
    fn same(&self, other: &Key) -> bool {
        match (&self.proto, &other.proto) {
            (Proto::Tls(a), Proto::Tls(b)) => Arc::ptr_eq(a, b),
            (Proto::Http, Proto::Http) | (Proto::H2c, Proto::H2c) => true,
            _ => false,
        }
    }

    fn is(&self, to: Target<'_>) -> bool {
        self.authority == *to.authority
            && match (&self.proto, to.tls) {
                (Proto::Tls(a), Some(b)) => Arc::ptr_eq(a, &b.client),
                (Proto::Http, None) => *to.scheme == Scheme::HTTP,
                (Proto::H2c, None) => *to.scheme == *H2C,
                _ => false,
            }
    }
}

/// A TCP connection to the first address of `authority` that answers
/// within `timeout`: the name lookup takes its part, and each address gets
/// an equal share of the rest, so one that drops packets (an unreachable
/// AAAA) cannot take the whole budget from the others.
async fn tcp(authority: &Authority, timeout: Duration) -> std::io::Result<TcpStream> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
    let deadline = Instant::now() + timeout;
    let port = authority.port_u16().unwrap_or(80);
    // `[::1]` is an address, not a name to look up.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let addrs: Vec<_> = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| timed_out())??
        .collect();
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_nodelay(true)?;
        // As the old connector did: dead peers are found in minutes, not
        // after the OS default of two hours.
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        socket2::SockRef::from(&socket).set_tcp_keepalive(&keepalive)?;
        match tokio::time::timeout(share, socket.connect(*addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(timed_out()),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host")
    }))
}

// === impl Pool ===

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Vec<Idle>)>> {
        // Idle senders only: a panic elsewhere leaves nothing inconsistent.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The HTTP/2 connection to `to`, while it is open.
    fn h2_sender(&self, to: Target<'_>) -> Option<h2::Sender> {
        let mut h2 = self
            .h2
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        h2.retain(|(_, s)| !s.is_closed());
        h2.iter().find(|(k, _)| k.is(to)).map(|(_, s)| s.clone())
    }

    /// Shares `sender` with the next requests to `key`'s version.
    fn keep_h2(&self, key: Key, sender: h2::Sender) {
        let mut h2 = self
            .h2
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        h2.retain(|(k, s)| !(s.is_closed() || k.authority == key.authority && k.same(&key)));
        h2.push((key, sender));
    }

    /// The most recently used idle connection that is still open and fresh.
    fn checkout(&self, to: Target<'_>) -> Option<Conn> {
        let mut idle = self.lock();
        let (_, stack) = idle.iter_mut().find(|(k, _)| k.is(to))?;
        let now = Instant::now();
        while let Some(mut i) = stack.pop() {
            if now.duration_since(i.since) < POOL_IDLE && i.conn.is_usable() {
                return Some(i.conn);
            }
        }
        None
    }

    /// Takes back `conn`, idle now, for `authority`.
    pub(crate) fn checkin(self: &Arc<Self>, key: Key, conn: Conn) {
        if !self
            .sweeping
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
        let now = Instant::now();
        let mut idle = self.lock();
        let stack = match idle
            .iter()
            .position(|(k, _)| k.authority == key.authority && k.same(&key))
        {
            Some(i) => &mut idle[i].1,
            None => {
                idle.push((key, Vec::new()));
                &mut idle.last_mut().expect("just pushed").1
            }
        };
        // The oldest are at the bottom: drop the stale ones there.
        let fresh = stack
            .iter()
            .position(|i| now.duration_since(i.since) < POOL_IDLE)
            .unwrap_or(stack.len());
        stack.drain(..fresh);
        if stack.len() < self.max_idle {
            stack.push(Idle { conn, since: now });
        }
    }

    /// Closes idle connections past [`POOL_IDLE`] or closed by the version,
    /// and forgets authorities left with none (a version that left the
    /// table, a route gone quiet).
    fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.lock();
        for (_, stack) in idle.iter_mut() {
            stack.retain_mut(|i| now.duration_since(i.since) < POOL_IDLE && i.conn.is_usable());
        }
        idle.retain(|(_, stack)| !stack.is_empty());
    }
}

/// Sweeps `pool` every few seconds while it exists.
async fn sweep(pool: std::sync::Weak<Pool>) {
    let mut every = tokio::time::interval(POOL_IDLE / 9);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match pool.upgrade() {
            Some(p) => p.sweep(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_by_address_by_name_and_to_a_bracketed_ipv6_address() {
        let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let second = Duration::from_secs(1);
        for authority in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            let authority: Authority = authority.parse().unwrap();
            // `localhost` may resolve to ::1 first: the share left for
            // 127.0.0.1 still connects.
            tcp(&authority, second).await.unwrap();
        }
        // Only where the machine has IPv6 loopback.
        if let Ok(v6) = tokio::net::TcpListener::bind("[::1]:0").await {
            let port = v6.local_addr().unwrap().port();
            let authority: Authority = format!("[::1]:{port}").parse().unwrap();
            tcp(&authority, second).await.unwrap();
        }
        let closed: Authority = format!("127.0.0.1:{}", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        })
        .parse()
        .unwrap();
        assert!(tcp(&closed, second).await.is_err(), "nothing listens there");
    }
}
