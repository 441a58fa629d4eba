//! TLS on `listen.https`: rustls (ring provider) with ALPN `h2` and
//! `http/1.1`, TLS 1.2 and 1.3 with rustls' default suites only.
//!
//! The certificate lives behind an `ArcSwap` that a [`ResolvesServerCert`]
//! reads at each handshake, so a reload swaps it without touching open
//! connections: they keep the session they negotiated, new handshakes get
//! the new certificate. A poller (`tls/reload.rs`) watches both files.

mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

pub(crate) use reload::spawn_reload;

/// The HTTPS listener's TLS state: the acceptor and the swappable
/// certificate behind it.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    cert: PathBuf,
    key: PathBuf,
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

/// Why a certificate and key could not be used. The message names the
/// file and says what is wrong, for the operator and the `tls_rejected` event.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// Failed TLS handshakes, logged at most one line per [`FailureLog::EVERY`]
/// with the count since the last line: any client can fail a handshake, so
/// a line per failure would let one flood the log.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    /// Failures not yet logged.
    failed: std::sync::atomic::AtomicU64,
    /// Seconds since `epoch` of the last line; 0 before the first.
    logged: std::sync::atomic::AtomicU64,
    epoch: std::sync::OnceLock<std::time::Instant>,
}

/// Installs ring as the process's rustls crypto provider, unless one is
/// installed already (main does it first; tests and the demo start without
/// main).
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: one provider is in.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

// === impl FailureLog ===

impl FailureLog {
    /// One line at most this often.
    pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// Counts a failed handshake from `peer`; logs it (with the failures
    /// held back since the last line) when the last line is old enough.
    pub(crate) fn failed(&self, peer: std::net::SocketAddr, error: &dyn std::fmt::Display) {
        use std::sync::atomic::Ordering::Relaxed;
        self.failed.fetch_add(1, Relaxed);
        let epoch = *self.epoch.get_or_init(std::time::Instant::now);
        let now = epoch.elapsed().as_secs() + 1;
        let last = self.logged.load(Relaxed);
        let due = last == 0 || now >= last + Self::EVERY.as_secs();
        if due
            && self
                .logged
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            // This one and those held back since the last line.
            let failed = self.failed.swap(0, Relaxed);
            tracing::info!(%peer, %error, failed, "TLS handshake failed");
        }
    }
}

// === impl Tls ===

impl Tls {
    /// Reads `cert` (PEM chain, leaf first) and `key` (PEM PKCS#8, PKCS#1
    /// or SEC1) and builds the acceptor.
    ///
    /// # Errors
    /// Unreadable files, no certificate, no key, or a key that does not
    /// match the certificate.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        install_crypto_provider();
        let certified = certified_key(cert, key)?;
        let resolver = Arc::new(Resolver {
            current: ArcSwap::from_pointee(certified),
        });
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert: cert.to_owned(),
            key: key.to_owned(),
        })
    }

    /// The acceptor for new connections.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Re-reads both files; on success new handshakes use them.
    ///
    /// # Errors
    /// As [`Tls::load`]; the current certificate stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let certified = certified_key(&self.cert, &self.key)?;
        self.resolver.current.store(Arc::new(certified));
        Ok(())
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The chain and key from their PEM files, checked to belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| TlsError(format!("{}: cannot read: {e}", p.display())))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{}: bad PEM: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "{}: no CERTIFICATE block found",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError(format!("{}: no usable private key: {e}", key.display())))?;
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let certified = CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        TlsError(format!(
            "{} / {}: certificate and key rejected: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    // from_der lets an undecidable match through; a key with no public half
    // to compare is refused here rather than failing every handshake.
    certified.keys_match().map_err(|e| {
        TlsError(format!(
            "{} / {}: key does not match the certificate: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(certified)
}
