//! Health probes through serin's own upstream client: the connector
//! `serin-control`'s prober uses, so a probe reaches a version exactly as a
//! request does (TCP, TLS with the version's CA, name and client
//! certificate, HTTP/1.1 or HTTP/2), on a pool of its own.

use std::future::Future;
use std::pin::Pin;

use http::{header, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use serin_control::{
    Connector, Failure, ProbeTarget, PROBE_BODY_MAX as BODY_MAX, PROBE_USER_AGENT as USER_AGENT,
};

use super::{SendError, Target, UpstreamClient, UpstreamError};
use crate::body::UpstreamBody;

/// The probes' client.
#[derive(Debug)]
pub(crate) struct ProbeConnector {
    client: UpstreamClient,
}

// === impl ProbeConnector ===

impl ProbeConnector {
    /// Connects give up after `connect_timeout`, as requests' do; the
    /// probe's own timeout bounds the whole probe. One probe at a time
    /// per version: two idle connections each are enough.
    pub(crate) fn new(connect_timeout: std::time::Duration) -> Self {
        Self {
            client: UpstreamClient::new(connect_timeout, 2),
        }
    }
}

impl Connector for ProbeConnector {
    fn get<'a>(
        &'a self,
        to: &'a ProbeTarget,
    ) -> Pin<Box<dyn Future<Output = Result<StatusCode, Failure>> + Send + 'a>> {
        Box::pin(async move {
            let target = Target {
                scheme: &to.scheme,
                authority: &to.authority,
                tls: to.tls.as_ref(),
            };
            let host = HeaderValue::from_str(to.authority.as_str()).map_err(|_| Failure::Error)?;
            let req = Request::get(Uri::from(to.path.clone()))
                .header(header::HOST, host)
                .header(header::USER_AGENT, USER_AGENT)
                .body(UpstreamBody::Full(None))
                .map_err(|_| Failure::Error)?;
            let resp = self
                .client
                .request(target, req, None)
                .await
                .map_err(|e| failure(&e))?;
            let status = resp.status();
            // Read only so the connection can be reused; the status decides.
            let _ = Limited::new(resp.into_body(), BODY_MAX).collect().await;
            Ok(status)
        })
    }
}

/// Names a failed probe by the I/O error under it.
fn failure(e: &UpstreamError) -> Failure {
    let io = match e {
        UpstreamError::Connect { source, .. } => source,
        UpstreamError::Exchange(SendError::Io(io)) => io,
        UpstreamError::Exchange(SendError::Closed) => return Failure::Reset,
        _ => return Failure::Error,
    };
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => Failure::Refused,
        std::io::ErrorKind::TimedOut => Failure::Timeout,
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => Failure::Reset,
        _ => Failure::Error,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A version that answers every request head with `answer`, or never
    /// when it is empty.
    async fn version(answer: &'static [u8]) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(1..) = s.read(&mut buf).await {
                        if !answer.is_empty() && s.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn target(scheme: &str, addr: std::net::SocketAddr) -> ProbeTarget {
        ProbeTarget {
            scheme: scheme.parse().unwrap(),
            authority: addr.to_string().parse().unwrap(),
            tls: None,
            path: "/health".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn probe_answers_and_failures_are_named() {
        let c = ProbeConnector::new(Duration::from_millis(200));
        let ok = version(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let oops = version(b"HTTP/1.1 503 Nope\r\ncontent-length: 0\r\n\r\n").await;
        for _ in 0..2 {
            assert_eq!(c.get(&target("http", ok)).await, Ok(StatusCode::OK));
        }
        assert_eq!(
            c.get(&target("http", oops)).await,
            Ok(StatusCode::SERVICE_UNAVAILABLE)
        );
        // A port nobody listens on (bound, then released).
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        assert_eq!(
            c.get(&target("http", closed_addr)).await,
            Err(Failure::Refused)
        );
        // The version speaks HTTP/1.1, not HTTP/2: the h2c handshake fails.
        assert!(c.get(&target("h2c", ok)).await.is_err());
    }
}
