//! HTTPS on `listen.https`: a self-signed certificate made by the test,
//! HTTP/2 and HTTP/1.1 chosen by ALPN; the certificate reloaded when its
//! files change without dropping open connections, and a bad one refused
//! with the old one kept.

use std::time::Duration;

use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::tls::{HttpsConn, TestCert};
use serin_tests::{assert_eventually, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_over_http2_and_http1_with_a_self_signed_certificate() {
    let v = FakeVersion::start("v1").unwrap();
    let certs = tempfile::tempdir().unwrap();
    let cert = TestCert::new();
    let env = serin_tests::tls::https_env(&v, certs.path(), &cert).await;
    let addr = env.https.expect("https listener");
    for (alpn, via) in [("h2", "2 serin"), ("http/1.1", "1.1 serin")] {
        let mut conn = HttpsConn::connect(addr, &cert.der, alpn).await.unwrap();
        assert_eq!(
            conn.alpn.as_deref(),
            Some(alpn.as_bytes()),
            "ALPN chose another protocol"
        );
        assert_eq!(conn.peer_cert, cert.der);
        for _ in 0..3 {
            let r = conn.get("/echo").await.unwrap();
            assert_eq!(r.status, 200, "{alpn}");
            assert_eq!(r.header("x-serin-version"), Some("v1"));
            let h = &r.json()["headers"];
            assert_eq!(h["x-forwarded-proto"], "https", "{alpn}: {h}");
            assert_eq!(h["via"], via, "{alpn}: {h}");
        }
    }
    // The plain listener keeps working beside it.
    assert_eq!(
        TestClient::http1().get(&env.url("/"), &[]).await.status,
        200
    );
    // A client that trusts another certificate is refused.
    let other = TestCert::new();
    assert!(HttpsConn::connect(addr, &other.der, "h2").await.is_err());
    env.stop().await;
}

async fn events(env: &TestEnv, kind: &str) -> Vec<serde_json::Value> {
    let all = TestClient::http1()
        .get(&env.admin_url("/api/v1/events"), &[])
        .await
        .json();
    all["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_picked_up_without_dropping_connections_and_a_bad_one_is_refused() {
    let v = FakeVersion::start("v1").unwrap();
    let certs = tempfile::tempdir().unwrap();
    let first = TestCert::new();
    let env = serin_tests::tls::https_env(&v, certs.path(), &first).await;
    let addr = env.https.unwrap();
    let mut open = HttpsConn::connect(addr, &first.der, "h2").await.unwrap();
    assert_eq!(open.get("/").await.unwrap().status, 200);

    let second = TestCert::new();
    second.write(certs.path());
    assert_eventually!(
        HttpsConn::connect(addr, &second.der, "h2")
            .await
            .is_ok_and(|c| c.peer_cert == second.der),
        8,
        "the new certificate was not picked up"
    );
    assert_eq!(events(&env, "tls_reloaded").await.len(), 1);
    // The connection made under the old certificate was not dropped.
    for _ in 0..3 {
        assert_eq!(open.get("/").await.unwrap().status, 200);
    }

    // A broken certificate and a key that belongs to another certificate
    // are refused; the second certificate keeps serving.
    let third = TestCert::new();
    for (what, cert, key) in [
        (
            "garbage",
            "not a certificate".to_owned(),
            second.key_pem.clone(),
        ),
        (
            "mismatched key",
            third.cert_pem.clone(),
            second.key_pem.clone(),
        ),
    ] {
        let before = events(&env, "tls_rejected").await.len();
        std::fs::write(certs.path().join("cert.pem"), cert).unwrap();
        std::fs::write(certs.path().join("key.pem"), key).unwrap();
        assert_eventually!(
            events(&env, "tls_rejected").await.len() > before,
            8,
            "{what}: no tls_rejected event"
        );
        let mut c = HttpsConn::connect(addr, &second.der, "http/1.1")
            .await
            .unwrap();
        assert_eq!(
            c.peer_cert, second.der,
            "{what}: the good certificate was replaced"
        );
        assert_eq!(c.get("/").await.unwrap().status, 200);
        // Distinct file sizes or times for the next round's change.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rejected = events(&env, "tls_rejected").await;
    assert!(
        rejected[0]["reason"].as_str().unwrap().contains("cert.pem"),
        "{rejected:?}"
    );
    assert_eq!(open.get("/").await.unwrap().status, 200);
    env.stop().await;
}
