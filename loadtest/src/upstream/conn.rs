//! One accepted connection: reset it, cut it by hand, or give it to hyper.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::service::{self, Shared};

/// What the close-mid-headers fault writes before closing.
const CUT_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Le";

/// The largest request head read before cutting the answer short.
const HEAD_MAX: usize = 16 * 1024;

/// How long the cut path waits for a request head.
const HEAD_WAIT: Duration = Duration::from_secs(2);

/// Serves one connection until the client closes it or the task is aborted.
pub(crate) async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
) {
    let _open = Open::new(shared.clone());
    if shared.faults.refuse() {
        reset(stream);
        return;
    }
    // Small answers must not wait for Nagle; the fake is a benchmark upstream.
    let _ = stream.set_nodelay(true);
    if shared.faults.close_mid_headers() {
        cut_headers(stream, &shared).await;
        return;
    }
    let svc = service_fn(move |req| service::handle(shared.clone(), req));
    // Errors here are the client's or an injected fault's: nothing to report.
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
        .await;
}

/// Counts one open connection in `Shared::connections` while it lives,
/// however the connection ends (the task may be aborted).
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: Arc<Shared>) -> Self {
        shared.connections.fetch_add(1, Relaxed);
        Self(shared)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Relaxed);
    }
}

/// Closes with RST instead of FIN, so the client sees a reset.
fn reset(stream: TcpStream) {
    // SO_LINGER is deprecated in tokio because a non-zero linger blocks the
    // thread on drop; a zero linger never blocks, it only turns FIN into RST.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Reads the request head, then writes half a status line and closes.
///
/// Reading first matters: closing a socket with unread bytes sends RST, and
/// the client would see a reset instead of the truncated answer.
async fn cut_headers(mut stream: TcpStream, shared: &Shared) {
    shared.requests.fetch_add(1, Relaxed);
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let read_head = async {
        while head.len() < HEAD_MAX && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(HEAD_WAIT, read_head).await;
    let _ = stream.write_all(CUT_HEAD).await;
    let _ = stream.shutdown().await;
}
