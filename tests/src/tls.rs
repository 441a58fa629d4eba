//! A self-signed certificate made by the test (rcgen), and an HTTPS client
//! that trusts only it, speaking HTTP/2 or HTTP/1.1 as ALPN decides.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::client::Reply;

/// A certificate for `localhost` and `127.0.0.1`, with its key, as PEM.
#[derive(Debug, Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate as DER: what a client sees in the handshake.
    pub der: Vec<u8>,
}

/// An open HTTPS connection.
#[derive(Debug)]
pub struct HttpsConn {
    sender: Sender,
    /// The protocol ALPN chose.
    pub alpn: Option<Vec<u8>>,
    /// The server's leaf certificate (DER).
    pub peer_cert: Vec<u8>,
}

#[derive(Debug)]
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

// === impl TestCert ===

impl TestCert {
    /// A fresh self-signed certificate.
    ///
    /// # Panics
    /// When rcgen fails (it does not for these names).
    pub fn new() -> Self {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let made = rcgen::generate_simple_self_signed(names).expect("self-signed certificate");
        Self {
            cert_pem: made.cert.pem(),
            key_pem: made.key_pair.serialize_pem(),
            der: made.cert.der().to_vec(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
    ///
    /// # Panics
    /// When the files cannot be written.
    pub fn write(&self, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write cert");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

impl Default for TestCert {
    fn default() -> Self {
        Self::new()
    }
}

/// A TLS connection to `addr` trusting only `root` (DER), offering the
/// `alpn` protocols (none when empty), for raw bytes; with the protocol
/// ALPN chose.
///
/// # Errors
/// The handshake's failure, as text.
pub async fn raw(
    addr: SocketAddr,
    root: &[u8],
    alpn: &[&str],
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Option<Vec<u8>>), String> {
    let mut tls = handshake(addr, root, alpn).await?;
    // TLS 1.3 reports a refused handshake only on the first read: a flush
    // makes a refusal surface here rather than as an empty reply.
    tokio::io::AsyncWriteExt::flush(&mut tls)
        .await
        .map_err(|e| e.to_string())?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((tls, alpn))
}

/// A TLS handshake with `addr` trusting only `root`, offering `alpn`,
/// server name `localhost`.
async fn handshake(
    addr: SocketAddr,
    root: &[u8],
    alpn: &[&str],
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    serin_proxy::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.to_vec()))
        .map_err(|e| e.to_string())?;
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// A serin serving one route to `v` over plain HTTP and over TLS with
/// `cert`, whose files are written into `certs`.
///
/// # Panics
/// As [`TestEnv::start`](crate::TestEnv::start).
pub async fn https_env(
    v: &serin_loadtest::FakeHandle,
    certs: &Path,
    cert: &TestCert,
) -> crate::TestEnv {
    let (cert_path, key_path) = cert.write(certs);
    let toml = crate::one_route(&[("v1", &v.url(), 1.0)], "").replacen(
        "[listen]\n",
        &format!(
            "[listen]\nhttps = \"127.0.0.1:3\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
        1,
    );
    crate::TestEnv::start(&toml).await
}

// === impl HttpsConn ===

impl HttpsConn {
    /// Connects to `addr` trusting only `root` (DER), offering `alpn`
    /// (`"h2"` or `"http/1.1"`), server name `localhost`.
    ///
    /// # Errors
    /// The handshake's failure, as text.
    pub async fn connect(addr: SocketAddr, root: &[u8], alpn: &str) -> Result<Self, String> {
        let tls = handshake(addr, root, &[alpn]).await?;
        let (_, session) = tls.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let peer_cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (send, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            Sender::H2(send)
        } else {
            let (send, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            Sender::H1(send)
        };
        Ok(Self {
            sender,
            alpn,
            peer_cert,
        })
    }

    /// GET `path` on this connection, `Host: localhost`.
    ///
    /// # Errors
    /// The request's failure, as text (e.g. the connection was closed).
    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                let req = Request::get(path)
                    .header("host", "localhost")
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| e.to_string())?;
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                let req = Request::get(format!("https://localhost{path}"))
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| e.to_string())?;
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
        }
        .map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
