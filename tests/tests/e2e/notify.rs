//! Webhooks: a rollback's events reach a `[[notify]]` receiver as JSON,
//! through retries when the receiver fails at first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serin_loadtest::{FakeVersion, LoadConfig};
use serin_tests::{assert_eventually, TestEnv};

/// A webhook receiver that answers 503 to its first `fail_first` posts.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/serin", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicUsize::new(0));
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let (store, seen) = (store.clone(), seen.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (store, seen) = (store.clone(), seen.clone());
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        let status = if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
                            503
                        } else {
                            store
                                .lock()
                                .unwrap()
                                .push(serde_json::from_slice(&body).unwrap());
                            200
                        };
                        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_events_reach_the_webhook_through_retries() {
    let (hook, got) = receiver(2).await;
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(1.0);
    let toml = format!(
        r#"[listen]
http = "127.0.0.1:1"
[[notify]]
webhook = "{hook}"
events = ["rollback_started", "rollback_completed"]
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 50
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 50
  [routes.rollback]
  stable = "v1"
  window = "5s"
  confirm = "1s"
  min_requests = 10
  critical = ["error_rate > 10%"]
"#,
        v1.url(),
        v2.url()
    );
    let env = TestEnv::start(&toml).await;
    let load = serin_loadtest::run(LoadConfig {
        rate: 100.0,
        duration: Duration::from_secs(4),
        connections: 8,
        ..LoadConfig::new(env.url("/").parse().unwrap())
    });
    load.await.unwrap();
    assert_eventually!(
        got.lock().unwrap().len() >= 2,
        8,
        "webhook did not receive the rollback"
    );
    let got = got.lock().unwrap().clone();
    let kinds: Vec<&str> = got.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["rollback_started", "rollback_completed"], "{got:?}");
    assert_eq!(got[1]["route"], "svc");
    assert_eq!(got[1]["after"]["v2"], 0);
    assert!(
        got[1]["hash"].as_str().unwrap().len() == 64,
        "events carry their audit hash"
    );
    env.stop().await;
}
