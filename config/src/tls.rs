//! TLS to `https://` versions: the rustls client configuration a version's
//! `tls_*` keys describe, built when the routing file is validated so a
//! file that names an unreadable CA, a certificate without its key or a key
//! rustls cannot use is refused at its `line:col`, never at the first
//! request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// How serin reaches one `https://` version: whom it trusts, the name the
/// certificate must carry (and the SNI sent), and the certificate serin
/// shows when the version asks for one (mTLS). ALPN offers `h2` and
/// `http/1.1`; the version's choice decides the protocol.
///
/// Two values built from the same paths, file contents and name compare
/// equal, so a reload that changes nothing keeps the same connections and
/// TLS sessions (see `serin-control`'s compile).
#[derive(Clone)]
pub struct UpstreamTls {
    /// `tls_server_name`, or the URL's host.
    pub server_name: ServerName<'static>,
    /// The client configuration, with its own session cache (resumption).
    pub client: Arc<ClientConfig>,
    source: Arc<Source>,
}

/// What an [`UpstreamTls`] was built from.
#[derive(Debug, PartialEq, Eq)]
struct Source {
    name: String,
    ca: Option<(PathBuf, Vec<u8>)>,
    identity: Option<[(PathBuf, Vec<u8>); 2]>,
}

/// Which key of the version an error is about, so it points at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Ca,
    ServerName,
    ClientCert,
    ClientKey,
}

/// The inputs, as the routing file gives them.
#[derive(Debug)]
pub(crate) struct Settings<'a> {
    /// The URL's host, used when `server_name` is not given.
    pub(crate) host: &'a str,
    pub(crate) server_name: Option<&'a str>,
    pub(crate) ca: Option<&'a Path>,
    pub(crate) client_cert: Option<&'a Path>,
    pub(crate) client_key: Option<&'a Path>,
}

// === impl UpstreamTls ===

impl UpstreamTls {
    /// Builds the client configuration; the error names the key at fault.
    pub(crate) fn build(s: &Settings<'_>) -> Result<Self, (Field, String)> {
        // `[::1]` in a URL is the address `::1`.
        let name = s
            .server_name
            .unwrap_or(s.host)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(name.clone()).map_err(|_| {
            (
                Field::ServerName,
                format!("`{name}` is not a DNS name or an IP address"),
            )
        })?;
        let (roots, ca) = match s.ca {
            Some(path) => {
                let pem = read(path).map_err(|e| (Field::Ca, e))?;
                (
                    ca_roots(path, &pem).map_err(|e| (Field::Ca, e))?,
                    Some((path.to_owned(), pem)),
                )
            }
            None => (platform_roots().map_err(|e| (Field::Ca, e))?, None),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| (Field::Ca, e.to_string()))?
            .with_root_certificates(roots);
        let (mut client, identity) = match (s.client_cert, s.client_key) {
            (None, None) => (builder.with_no_client_auth(), None),
            (Some(_), None) => {
                return Err((
                    Field::ClientCert,
                    "tls_client_cert needs tls_client_key".to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err((
                    Field::ClientKey,
                    "tls_client_key needs tls_client_cert".to_owned(),
                ))
            }
            (Some(cert_path), Some(key_path)) => {
                let cert = read(cert_path).map_err(|e| (Field::ClientCert, e))?;
                let chain: Vec<_> = CertificateDer::pem_slice_iter(&cert)
                    .collect::<Result<_, _>>()
                    .map_err(|e| (Field::ClientCert, pem_error(cert_path, &e)))?;
                if chain.is_empty() {
                    return Err((Field::ClientCert, no_pem(cert_path, "certificate")));
                }
                let key = read(key_path).map_err(|e| (Field::ClientKey, e))?;
                let der = PrivateKeyDer::from_pem_slice(&key)
                    .map_err(|_| (Field::ClientKey, no_pem(key_path, "private key")))?;
                let client = builder.with_client_auth_cert(chain, der).map_err(|e| {
                    (
                        Field::ClientKey,
                        format!(
                            "{}: rustls cannot use this key with {}: {e}",
                            key_path.display(),
                            cert_path.display()
                        ),
                    )
                })?;
                let identity = [(cert_path.to_owned(), cert), (key_path.to_owned(), key)];
                (client, Some(identity))
            }
        };
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            server_name,
            client: Arc::new(client),
            source: Arc::new(Source { name, ca, identity }),
        })
    }

    /// Whether the version asks for serin's certificate (mTLS) is its
    /// business; this says whether serin has one to show.
    pub fn has_client_cert(&self) -> bool {
        self.source.identity.is_some()
    }

    /// The `tls_ca` file, or `None` for the platform's roots.
    pub fn ca(&self) -> Option<&Path> {
        self.source.ca.as_ref().map(|(p, _)| p.as_path())
    }
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source) || self.source == other.source
    }
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.source.name)
            .field("ca", &self.ca())
            .field("client_cert", &self.has_client_cert())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn no_pem(path: &Path, what: &str) -> String {
    format!("{}: no PEM {what} in the file", path.display())
}

fn pem_error(path: &Path, e: &rustls::pki_types::pem::Error) -> String {
    format!("{}: not PEM: {e}", path.display())
}

/// Every certificate of a `tls_ca` file, each one a trust anchor.
fn ca_roots(path: &Path, pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(pem) {
        let der = der.map_err(|e| pem_error(path, &e))?;
        roots
            .add(der)
            .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(no_pem(path, "certificate"));
    }
    Ok(roots)
}

/// The platform's CA certificates (`/etc/ssl/certs` on Debian), read once
/// per process.
fn platform_roots() -> Result<RootCertStore, String> {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // Unparseable entries are skipped, as every TLS client does.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        roots
    });
    if roots.is_empty() {
        return Err(
            "no tls_ca and the platform has no CA certificates (install ca-certificates, \
             or name the CA with tls_ca)"
                .to_owned(),
        );
    }
    Ok(roots.clone())
}
