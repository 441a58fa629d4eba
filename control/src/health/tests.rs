use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::prober::Prober;
use super::*;
use crate::handle::{Failure, Health, HealthState};
use crate::{Live, Shared};

const FAIL: Result<(), Failure> = Err(Failure::Status(500));

#[test]
fn unknown_to_unhealthy_after_threshold() {
    let h = Health::new();
    assert_eq!(h.state(), HealthState::Unknown);
    assert!(!h.is_unhealthy(), "unknown counts as healthy");
    assert_eq!(h.observe(FAIL, 3, 2), None);
    assert_eq!(h.observe(Err(Failure::Timeout), 3, 2), None);
    let t = h.observe(FAIL, 3, 2).expect("third failure decides");
    assert_eq!(
        (t.before, t.after),
        (HealthState::Unknown, HealthState::Unhealthy)
    );
    assert_eq!(t.reason, "3 failed probes (HTTP 500, timeout, HTTP 500)");
    assert!(h.is_unhealthy());
    assert_eq!(h.as_str(), "unhealthy");
    assert_eq!(h.observe(FAIL, 3, 2), None, "already unhealthy");
    assert_eq!(
        h.last_failures(),
        "4 failed probes (HTTP 500, timeout, HTTP 500, HTTP 500)"
    );
}

#[test]
fn recovers_after_healthy_after_successes() {
    let h = Health::new();
    for _ in 0..3 {
        h.observe(FAIL, 3, 2);
    }
    assert_eq!(h.observe(Ok(()), 3, 2), None);
    // Still unhealthy: the engine can still quote why.
    assert!(h.is_unhealthy());
    assert_eq!(
        h.last_failures(),
        "3 failed probes (HTTP 500, HTTP 500, HTTP 500)"
    );
    let t = h.observe(Ok(()), 3, 2).expect("second success decides");
    assert_eq!(
        (t.before, t.after),
        (HealthState::Unhealthy, HealthState::Healthy)
    );
    assert_eq!(t.reason, "2 successful probes");
    assert!(!h.is_unhealthy());
    // A new failure run starts the reasons over.
    h.observe(Err(Failure::Refused), 3, 2);
    assert_eq!(h.last_failures(), "1 failed probe (refused)");
}

#[test]
fn from_unknown_the_first_threshold_decides() {
    let h = Health::new();
    assert_eq!(h.last_failures(), "no failed probes");
    h.observe(FAIL, 3, 2);
    h.observe(Ok(()), 3, 2);
    let t = h.observe(Ok(()), 3, 2).unwrap();
    assert_eq!(t.before, HealthState::Unknown);
    assert_eq!(t.after, HealthState::Healthy);
    // A success between failures restarts the count.
    h.observe(FAIL, 3, 2);
    h.observe(FAIL, 3, 2);
    h.observe(Ok(()), 3, 2);
    h.observe(FAIL, 3, 2);
    h.observe(FAIL, 3, 2);
    assert!(!h.is_unhealthy());
    assert!(h.observe(FAIL, 3, 2).is_some());
}

#[test]
fn long_runs_keep_the_last_reasons_and_reset_forgets() {
    let h = Health::new();
    for code in 500..507 {
        h.observe(Err(Failure::Status(code)), 1, 1);
    }
    assert_eq!(
        h.last_failures(),
        "7 failed probes (…, HTTP 502, HTTP 503, HTTP 504, HTTP 505, HTTP 506)"
    );
    assert_eq!(h.reset(), HealthState::Unhealthy);
    assert_eq!(h.state(), HealthState::Unknown);
    assert_eq!(h.last_failures(), "no failed probes");
}

#[test]
fn statuses_are_judged() {
    assert_eq!(probe::judge(http::StatusCode::OK), Ok(()));
    assert_eq!(probe::judge(http::StatusCode::FOUND), Ok(()));
    assert_eq!(
        probe::judge(http::StatusCode::NOT_FOUND),
        Err(Failure::Status(404))
    );
}

/// What the test server does with a request.
const ANSWER_200: u8 = 0;
const ANSWER_500: u8 = 1;
const HANG: u8 = 2;

/// A raw HTTP/1.1 server on loopback that counts open connections.
struct Server {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    open: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(mode: u8) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(mode));
        let open = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (m, o, a) = (mode.clone(), open.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (m, o) = (m.clone(), o.clone());
                a.fetch_add(1, Relaxed);
                o.fetch_add(1, Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    // One read per request is enough for a probe's small head;
                    // EOF (the client dropped the connection) ends the loop.
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        let _ = n;
                        let answer: &[u8] = match m.load(Relaxed) {
                            ANSWER_200 => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                            ANSWER_500 => b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n",
                            _ => continue,
                        };
                        if stream.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                    o.fetch_sub(1, Relaxed);
                });
            }
        });
        Self {
            addr,
            mode,
            open,
            accepted,
            task,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn live(versions: &[(&str, SocketAddr, f64)]) -> Arc<Live> {
    let mut toml = String::from(
        "[[routes]]\nname = \"svc\"\n[routes.health_check]\ninterval = \"50ms\"\n\
         timeout = \"50ms\"\nunhealthy_after = 2\nhealthy_after = 2\n",
    );
    for (name, addr, weight) in versions {
        toml.push_str(&format!(
            "[[routes.versions]]\nname = \"{name}\"\nurl = \"http://{addr}\"\nweight = {weight}\n"
        ));
    }
    let config = serin_config::parse(&toml, "test.toml").unwrap();
    Arc::new(Live::new(config, "r1", Shared::default()).unwrap())
}

/// The prober's tests reach plain HTTP versions with one request per
/// connection: the data plane's connector (TLS, HTTP/2, pooling, naming
/// failures) is `serin-proxy`'s and tested there.
#[derive(Debug)]
struct OneShot;

impl probe::Connector for OneShot {
    fn get<'a>(
        &'a self,
        to: &'a ProbeTarget,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<http::StatusCode, Failure>> + Send + 'a>,
    > {
        Box::pin(async move {
            let mut s = tokio::net::TcpStream::connect(to.authority.as_str())
                .await
                .map_err(|_| Failure::Refused)?;
            let head = format!("GET {} HTTP/1.1\r\nhost: {}\r\n\r\n", to.path, to.authority);
            s.write_all(head.as_bytes())
                .await
                .map_err(|_| Failure::Reset)?;
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).await.map_err(|_| Failure::Reset)?;
            std::str::from_utf8(&buf[9..12])
                .ok()
                .and_then(|c| c.parse().ok())
                .and_then(|c| http::StatusCode::from_u16(c).ok())
                .ok_or(Failure::Error)
        })
    }
}

fn prober(live: Arc<Live>) -> Prober {
    Prober::new(live, Arc::new(OneShot))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_endpoint_holds_at_most_one_connection() {
    let hang = Server::start(HANG).await;
    let live = live(&[("v1", hang.addr, 100.0)]);
    let health = live.shared().health.get("svc", "v1");
    let mut prober = prober(live);
    prober.sync();
    let mut max_open = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(prober.in_flight("svc", "v1").unwrap() <= 1);
        max_open = max_open.max(hang.open.load(Relaxed));
    }
    // ~8 probes timed out, each on its own connection, each dropped.
    assert!(hang.accepted.load(Relaxed) >= 4, "too few probes");
    assert!(max_open <= 2, "connections piled up: {max_open}");
    assert!(health.is_unhealthy());
    assert!(
        health.last_failures().contains("timeout"),
        "{}",
        health.last_failures()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_weighted_version_down_fails_open_once() {
    let a = Server::start(ANSWER_500).await;
    let b = Server::start(ANSWER_500).await;
    let live = live(&[("v1", a.addr, 90.0), ("v2", b.addr, 10.0)]);
    let mut prober = prober(live.clone());
    prober.sync();
    let kinds = || -> Vec<String> {
        live.shared()
            .events
            .since(0, None)
            .into_iter()
            .map(|e| e.kind)
            .filter(|k| k.starts_with("health_fail_open"))
            .collect()
    };
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        prober.sync();
        prober.check_fail_open();
    }
    assert_eq!(kinds(), ["health_fail_open"]);
    b.mode.store(ANSWER_200, Relaxed);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        prober.check_fail_open();
    }
    assert_eq!(kinds(), ["health_fail_open", "health_fail_open_ended"]);
    assert_eq!(live.shared().health.get("svc", "v2").as_str(), "healthy");
}
