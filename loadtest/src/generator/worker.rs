//! One worker: a connection, a loop over due requests, a recorder.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Plan;
use crate::report::Recorder;

/// In closed loop, the pause after a transport error, so that a dead target
/// is not hammered with connects in a hot loop.
const ERROR_PAUSE: Duration = Duration::from_millis(5);

type H1Sender = http1::SendRequest<Full<Bytes>>;
type H2Sender = http2::SendRequest<Full<Bytes>>;

/// A worker's way to the target.
#[derive(Debug)]
pub(crate) enum Conn {
    /// Its own keep-alive connection; `None` until (re)connected.
    H1(Option<H1Sender>),
    /// A clone of a shared h2 connection, renewed through the slot.
    H2 {
        slot: Arc<H2Slot>,
        current: Option<H2Sender>,
    },
}

/// One h2 connection shared by several workers.
///
/// The lock is taken only to replace a closed connection, never per request.
#[derive(Debug)]
pub(crate) struct H2Slot {
    addr: SocketAddr,
    sender: Mutex<Option<H2Sender>>,
}

/// A request that failed below HTTP: connect, reset, protocol error.
#[derive(Debug)]
struct Transport;

/// Sends due requests until the plan's end.
#[derive(Debug)]
pub(crate) struct Worker {
    plan: Arc<Plan>,
    conn: Conn,
    rec: Recorder,
}

// === impl H2Slot ===

impl H2Slot {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            sender: Mutex::new(None),
        }
    }

    /// The shared sender, reconnected first if it is missing or closed.
    async fn get(&self, timeout: Duration) -> Option<H2Sender> {
        let mut sender = self.sender.lock().await;
        if sender.as_ref().is_none_or(H2Sender::is_closed) {
            *sender = tokio::time::timeout(timeout, connect_h2(self.addr))
                .await
                .ok()
                .and_then(Result::ok);
        }
        sender.clone()
    }
}

// === impl Worker ===

impl Worker {
    /// Opens the worker's connection ahead of the run; a failure is left for
    /// the first request to retry and count.
    pub(crate) async fn connect(
        addr: SocketAddr,
        slot: Option<Arc<H2Slot>>,
        timeout: Duration,
    ) -> Conn {
        match slot {
            Some(slot) => {
                let current = slot.get(timeout).await;
                Conn::H2 { slot, current }
            }
            None => {
                let sender = tokio::time::timeout(timeout, connect_h1(addr)).await;
                Conn::H1(sender.ok().and_then(Result::ok))
            }
        }
    }

    pub(crate) fn new(plan: Arc<Plan>, conn: Conn, rec: Recorder) -> Self {
        Self { plan, conn, rec }
    }

    /// Takes indices until one is due after the end; returns what it measured.
    pub(crate) async fn run(mut self) -> Recorder {
        let plan = self.plan.clone();
        loop {
            let i = plan.next.fetch_add(1, Relaxed);
            let from = match plan.rate {
                Some(rate) => {
                    let due = plan.start + Duration::from_secs_f64(i as f64 / rate);
                    if due >= plan.end {
                        break;
                    }
                    if Instant::now() < due {
                        // Idle until due: latency counts from the wake-up, so
                        // the timer's own lag (up to a tick, 1 ms) is not
                        // charged to the server. A worker that takes a request
                        // already overdue was busy: that wait is the server's
                        // and counts from the due time.
                        tokio::time::sleep_until(due).await;
                        Instant::now()
                    } else {
                        due
                    }
                }
                None => {
                    let now = Instant::now();
                    if now >= plan.end {
                        break;
                    }
                    now
                }
            };
            let req = request(&plan, i);
            match tokio::time::timeout(plan.timeout, self.exchange(req)).await {
                Ok(Ok(parts)) => self
                    .rec
                    .response(parts.status, &parts.headers, from.elapsed()),
                Ok(Err(Transport)) => {
                    self.rec.transport();
                    if plan.rate.is_none() {
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                }
                Err(_elapsed) => self.rec.timeout(),
            }
        }
        self.rec
    }

    /// Sends one request and reads its body to the end.
    async fn exchange(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<http::response::Parts, Transport> {
        match &mut self.conn {
            Conn::H1(slot) => {
                // The sender is taken out and put back only after a clean
                // exchange: a failed or timed-out one drops its connection.
                let reused = match slot.take() {
                    Some(mut s) if !s.is_closed() => s.ready().await.ok().map(|()| s),
                    _ => None,
                };
                let mut sender = match reused {
                    Some(s) => s,
                    None => {
                        let mut s = connect_h1(self.plan.addr).await?;
                        s.ready().await?;
                        s
                    }
                };
                let resp = sender.send_request(req).await?;
                let parts = drain(resp).await?;
                *slot = Some(sender);
                Ok(parts)
            }
            Conn::H2 { slot, current } => {
                let mut sender = match current.take() {
                    Some(s) if !s.is_closed() => s,
                    _ => slot.get(self.plan.timeout).await.ok_or(Transport)?,
                };
                // A failed stream leaves the connection usable: keep it.
                *current = Some(sender.clone());
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                drain(resp).await
            }
        }
    }
}

impl From<hyper::Error> for Transport {
    fn from(_: hyper::Error) -> Self {
        Transport
    }
}

impl From<std::io::Error> for Transport {
    fn from(_: std::io::Error) -> Self {
        Transport
    }
}

/// Request `i` of the plan.
fn request(plan: &Plan, i: u64) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(plan.body.clone()));
    *req.method_mut() = plan.method.clone();
    *req.uri_mut() = plan.uri.clone();
    if plan.h2 {
        *req.version_mut() = Version::HTTP_2;
    }
    let headers = req.headers_mut();
    for (name, value) in &plan.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some((name, keys)) = &plan.sticky {
        // `keys` is never empty (checked in `run`) and the index is below
        // its length, so the cast and the indexing cannot fail.
        let key = &keys[(i % keys.len() as u64) as usize];
        headers.insert(name.clone(), key.clone());
    }
    req
}

/// Reads the body to its end and drops it; returns the head.
async fn drain(
    resp: http::Response<hyper::body::Incoming>,
) -> Result<http::response::Parts, Transport> {
    let (parts, mut body) = resp.into_parts();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(parts)
}

async fn connect_h1(addr: SocketAddr) -> Result<H1Sender, Transport> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    // The driver ends when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn connect_h2(addr: SocketAddr) -> Result<H2Sender, Transport> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    // The driver ends when every clone of the sender is dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
