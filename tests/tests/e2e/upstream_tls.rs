//! Versions reached over TLS and HTTP/2: an `https://` version with its own
//! CA (rcgen), over HTTP/1.1 or HTTP/2 as its ALPN answer says; mTLS; a
//! version whose certificate serin does not trust falling back down the
//! chain; an `h2c://` version; gRPC trailers passed on and a non-zero
//! `grpc-status` counted as the version's error.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serin_tests::client::TestClient;
use serin_tests::TestEnv;
use tokio::net::TcpListener;

/// A CA and its key, to sign server and client certificates.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A leaf for `names`, signed by this CA: (certificate PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the CA's certificate into `dir/name`.
    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.cert.pem()).unwrap();
        path
    }
}

/// How a test version answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// `200` with `NAME HTTP/x.y host=HOST client-cert=BOOL xff=…`.
    Echo,
    /// A gRPC answer whose trailers carry `grpc-status: 13`.
    GrpcFailsInTrailers,
    /// A trailers-only gRPC answer: `grpc-status: 14` in the head.
    GrpcFailsInHead,
}

async fn answer(
    name: &'static str,
    how: Answer,
    client_cert: bool,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let grpc = |status: &'static str, in_head: bool| {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", status.parse().unwrap());
        let mut resp = Response::builder()
            .header("content-type", "application/grpc")
            .header(
                "x-te",
                req.headers().get("te").map_or("", |v| v.to_str().unwrap()),
            );
        if in_head {
            resp = resp.header("grpc-status", status);
            return resp.body(Full::new(Bytes::new()).boxed()).unwrap();
        }
        let body = Full::new(Bytes::from_static(b"\0\0\0\0\x02hi"))
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed();
        resp.body(body).unwrap()
    };
    Ok(match how {
        Answer::Echo => {
            let host = req
                .headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_owned())
                .or_else(|| req.uri().authority().map(ToString::to_string))
                .unwrap_or_default();
            let xff = req
                .headers()
                .get("x-forwarded-for")
                .map_or("", |v| v.to_str().unwrap());
            let text = format!(
                "{name} {:?} host={host} client-cert={client_cert} xff={xff}",
                req.version()
            );
            Response::new(Full::new(Bytes::from(text)).boxed())
        }
        Answer::GrpcFailsInTrailers => grpc("13", false),
        Answer::GrpcFailsInHead => grpc("14", true),
    })
}

/// A TLS version for `localhost`/`127.0.0.1` signed by `ca`, offering
/// `alpn`; with `clients` set it asks for a client certificate signed by
/// that CA and refuses a handshake without one.
async fn tls_version(
    name: &'static str,
    ca: &Ca,
    alpn: &[&str],
    clients: Option<&Ca>,
) -> SocketAddr {
    serin_proxy::install_crypto_provider();
    let (cert, key) = ca.leaf(&["localhost", "127.0.0.1"]);
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder();
    let builder = match clients {
        Some(clients) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(clients.cert.der().clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else {
                    return;
                };
                let client_cert = tls.get_ref().1.peer_certificates().is_some();
                let svc = hyper::service::service_fn(move |req| {
                    answer(name, Answer::Echo, client_cert, req)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

/// A version speaking HTTP/2 with prior knowledge (h2c) only.
async fn h2c_version(name: &'static str, how: Answer) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| answer(name, how, false, req));
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// `[[routes.versions]]` tables after the route's own keys.
fn table(extra: &str, versions: &[String]) -> String {
    format!(
        "[listen]\nhttp = \"127.0.0.1:1\"\n[admin]\naddr = \"127.0.0.1:2\"\n\n\
         [[routes]]\nname = \"svc\"\n{extra}\n{}",
        versions.join("\n")
    )
}

fn version(name: &str, url: &str, weight: f64, keys: &str) -> String {
    format!(
        "[[routes.versions]]\nname = \"{name}\"\nurl = \"{url}\"\nweight = {weight}\n\
         timeout = \"2s\"\n{keys}\n"
    )
}

async fn stats(env: &TestEnv) -> serde_json::Value {
    TestClient::http1()
        .get(&env.admin_url("/api/v1/routes/svc/stats?window=60s"), &[])
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_version_with_its_own_ca_over_http1_and_over_h2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("serin test CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let h1 = tls_version("h1", &ca, &["http/1.1"], None).await;
    let h2 = tls_version("h2", &ca, &["h2", "http/1.1"], None).await;
    let keys = format!("tls_ca = \"{}\"", ca_path.display());
    let env = TestEnv::start(&table(
        "",
        &[
            version(
                "h1",
                &format!("https://localhost:{}", h1.port()),
                1.0,
                &keys,
            ),
            version(
                "h2",
                &format!("https://127.0.0.1:{}", h2.port()),
                1.0,
                &keys,
            ),
        ],
    ))
    .await;
    let c = TestClient::http1();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let r = c.get(&env.url("/x"), &[("host", "app.example")]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        // The client's Host reaches the version (as `:authority` on HTTP/2),
        // with the forwarding headers.
        assert!(text.contains("host=app.example"), "{text}");
        assert!(text.contains("xff=127.0.0.1"), "{text}");
        seen.insert(text.split(" host").next().unwrap().to_owned());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["h1 HTTP/1.1", "h2 HTTP/2.0"],
        "each version in the protocol its ALPN answer chose"
    );
    let s = stats(&env).await;
    assert_eq!(s["route_total"]["errors"], 0, "{s}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_and_a_certificate_serin_does_not_trust_falls_back_down_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("versions CA");
    let other = Ca::new("some other CA");
    let clients = Ca::new("edge clients CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let other_path = other.write(dir.path(), "other.pem");
    let (cert, key) = clients.leaf(&["serin-edge"]);
    let (cert_path, key_path) = (dir.path().join("edge.pem"), dir.path().join("edge.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    // v3 asks for a client certificate; v2's is signed by a CA serin does
    // not trust; v1 asks for one too and serin shows it.
    let strict = tls_version("v1", &ca, &["http/1.1"], Some(&clients)).await;
    let untrusted = tls_version("v2", &ca, &["h2", "http/1.1"], None).await;
    let toml = table(
        "[routes.fallback]\nchain = [\"v3\", \"v2\", \"v1\"]\n",
        &[
            version(
                "v3",
                &format!("https://localhost:{}", strict.port()),
                1.0,
                &format!("tls_ca = \"{}\"", ca_path.display()),
            ),
            version(
                "v2",
                &format!("https://localhost:{}", untrusted.port()),
                0.0,
                &format!("tls_ca = \"{}\"", other_path.display()),
            ),
            version(
                "v1",
                &format!("https://localhost:{}", strict.port()),
                0.0,
                &format!(
                    "tls_ca = \"{}\"\ntls_client_cert = \"{}\"\ntls_client_key = \"{}\"",
                    ca_path.display(),
                    cert_path.display(),
                    key_path.display()
                ),
            ),
        ],
    );
    let env = TestEnv::start(&toml).await;
    let c = TestClient::http1();
    for _ in 0..5 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().starts_with("v1 HTTP/1.1"), "{}", r.text());
        assert!(r.text().contains("client-cert=true"), "{}", r.text());
        assert_eq!(r.header("x-serin-fallback"), Some("v3>v2>v1"));
    }
    let s = stats(&env).await;
    let v = &s["versions"];
    // A refused handshake is a connect failure of that version.
    for name in ["v3", "v2"] {
        assert_eq!(v[name]["connect_errors"], 5, "{s}");
    }
    assert_eq!(v["v1"]["errors"], 0, "{s}");
    assert_eq!(s["route_total"]["errors"], 0, "{s}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_version_and_grpc_errors_in_trailers_and_in_the_head() {
    let ok = h2c_version("ok", Answer::Echo).await;
    let trailers = h2c_version("t", Answer::GrpcFailsInTrailers).await;
    let head = h2c_version("h", Answer::GrpcFailsInHead).await;
    let env = TestEnv::start(&table(
        "",
        &[
            version("ok", &format!("h2c://{ok}"), 1.0, ""),
            version("trailers", &format!("h2c://{trailers}"), 0.0, ""),
            version("head", &format!("h2c://{head}"), 0.0, ""),
        ],
    ))
    .await;
    let c = TestClient::http1();
    for _ in 0..3 {
        let r = c.get(&env.url("/"), &[("host", "app.example")]).await;
        assert_eq!(r.status, 200);
        assert!(
            r.text().starts_with("ok HTTP/2.0 host=app.example"),
            "{}",
            r.text()
        );
    }
    // gRPC through serin over HTTP/2 end to end: trailers reach the client.
    let grpc = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let call = || {
        let grpc = grpc.clone();
        let url = env.url("/pkg.Svc/Call");
        async move {
            let req = Request::post(url)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
                .unwrap();
            grpc.request(req).await.unwrap()
        }
    };
    env.set_weights("svc", &[("ok", 0.0), ("trailers", 1.0), ("head", 0.0)])
        .unwrap();
    for _ in 0..4 {
        let resp = call().await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-te"],
            "trailers",
            "gRPC's te reaches the version"
        );
        let all = resp.into_body().collect().await.unwrap();
        assert_eq!(all.trailers().expect("trailers")["grpc-status"], "13");
        assert_eq!(all.to_bytes(), &b"\0\0\0\0\x02hi"[..]);
    }
    env.set_weights("svc", &[("ok", 0.0), ("trailers", 0.0), ("head", 1.0)])
        .unwrap();
    for _ in 0..2 {
        let resp = call().await;
        assert_eq!(resp.headers()["grpc-status"], "14");
    }
    let s = stats(&env).await;
    let v = &s["versions"];
    assert_eq!(
        (v["ok"]["requests"].as_u64(), v["ok"]["errors"].as_u64()),
        (Some(3), Some(0)),
        "{s}"
    );
    assert_eq!(
        v["trailers"]["errors"], 4,
        "a grpc-status other than 0 is the version's error: {s}"
    );
    assert_eq!(v["head"]["errors"], 2, "{s}");
    env.stop().await;
}

/// A version's health as `GET /api/v1/status` shows it.
async fn health_of(env: &TestEnv, version: &str) -> String {
    let status = TestClient::http1()
        .get(&env.admin_url("/api/v1/status"), &[])
        .await
        .json();
    status["routes"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("no version {version}: {status}"))["health"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_go_through_the_same_tls_and_h2_as_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("versions CA");
    let other = Ca::new("some other CA");
    let ca_path = ca.write(dir.path(), "ca.pem");
    let other_path = other.write(dir.path(), "other.pem");
    let good = tls_version("good", &ca, &["h2", "http/1.1"], None).await;
    let h2c = h2c_version("h2c", Answer::Echo).await;
    let toml = table(
        "[routes.health_check]\npath = \"/health\"\ninterval = \"100ms\"\ntimeout = \"500ms\"\n\
         unhealthy_after = 2\nhealthy_after = 2\n",
        &[
            version(
                "good",
                &format!("https://localhost:{}", good.port()),
                1.0,
                &format!("tls_ca = \"{}\"", ca_path.display()),
            ),
            version("h2c", &format!("h2c://{h2c}"), 1.0, ""),
            // The same server, a CA serin does not trust for it.
            version(
                "untrusted",
                &format!("https://localhost:{}", good.port()),
                1.0,
                &format!("tls_ca = \"{}\"", other_path.display()),
            ),
        ],
    );
    let env = TestEnv::start(&toml).await;
    let began = std::time::Instant::now();
    loop {
        let states = (
            health_of(&env, "good").await,
            health_of(&env, "h2c").await,
            health_of(&env, "untrusted").await,
        );
        if states == ("healthy".into(), "healthy".into(), "unhealthy".into()) {
            break;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(10),
            "health never settled: {states:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The pick skips the unhealthy version: traffic sees no error.
    let c = TestClient::http1();
    for _ in 0..20 {
        let r = c.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    env.stop().await;
}
