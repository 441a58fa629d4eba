//! Crash safety: `kill -9` at random moments while weights change by REST,
//! rollbacks and resumes run, and the routing file is rewritten (hot
//! reload). After every restart the state file loads, the audit log's
//! hash chain verifies, and the live weights are the `after` of the last
//! weight-changing event in the log: state and log agree.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::process::SerinProcess;
use serin_tests::serin_bin;

const TOKEN: &str = "crash-token";

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn routes(v1: &str, v2: &str, w1: u64, w2: u64) -> String {
    format!(
        "[[routes]]\nname = \"svc\"\n\
         [[routes.versions]]\nname = \"v1\"\nurl = \"{v1}\"\nweight = {w1}\n\
         [[routes.versions]]\nname = \"v2\"\nurl = \"{v2}\"\nweight = {w2}\n\
         [routes.rollback]\nstable = \"v1\"\ncritical = [\"error_rate > 50%\"]\nmin_requests = 1000000\n"
    )
}

/// Changes as fast as serin takes them, until the task is aborted.
async fn drive(
    serin_admin: std::net::SocketAddr,
    config: std::path::PathBuf,
    head_routes: (String, String),
    seed: u64,
) {
    let c = TestClient::http1();
    let url = |p: &str| format!("http://{serin_admin}/api/v1/routes/svc{p}");
    let mut rng = Rng(seed | 1);
    loop {
        let body = match rng.below(4) {
            0 | 1 => {
                let (a, b) = (rng.below(100), 1 + rng.below(100));
                let body = format!(
                    "{{\"weights\": {{\"v1\": {a}, \"v2\": {b}}}, \"reason\": \"crash test\"}}"
                );
                ("PUT", "/weights", body)
            }
            2 => ("POST", "/rollback", "{\"mode\": \"immediate\"}".to_owned()),
            _ => ("POST", "/resume", "{}".to_owned()),
        };
        let (c2, method, url, body) = (c.clone(), body.0, url(body.1), Bytes::from(body.2));
        let sent = tokio::spawn(async move {
            let auth = format!("Bearer {TOKEN}");
            let headers = [
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ];
            c2.send(method, &url, &headers, body).await.status
        });
        // A refused connection panics inside the client: "serin is gone".
        if sent.await.is_err() {
            return;
        }
        if rng.below(3) == 0 {
            // A hot reload: rewrite the routing file in place, and have it
            // applied now (the watcher's debounce would often be too late).
            let text = std::fs::read_to_string(&config).unwrap_or_default();
            let head = text.split("[[routes]]").next().unwrap_or("").to_owned();
            let body = routes(
                &head_routes.0,
                &head_routes.1,
                1 + rng.below(99),
                rng.below(50),
            );
            let _ = std::fs::write(&config, format!("{head}{body}"));
            let (c2, url) = (c.clone(), format!("http://{serin_admin}/api/v1/reload"));
            let reloaded = tokio::spawn(async move {
                let auth = format!("Bearer {TOKEN}");
                c2.send(
                    "POST",
                    &url,
                    &[("authorization", auth.as_str())],
                    Bytes::new(),
                )
                .await
                .status
            });
            if reloaded.await.is_err() {
                return;
            }
        }
    }
}

fn verify(log: &Path) -> (i32, String) {
    let out = Command::new(serin_bin())
        .args(["audit", "verify"])
        .arg(log)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The route's weights an audit entry says it left, if it changed them.
fn weights_after(event: &Value) -> Option<Value> {
    let after = event.get("after")?;
    let w = after
        .get("weights")
        .and_then(|w| w.get("svc"))
        .unwrap_or(after);
    (w.get("v1").is_some_and(Value::is_number)).then(|| w.clone())
}

async fn check_consistent(serin: &SerinProcess, dir: &Path, round: usize) {
    let state = dir.join("state");
    let text = std::fs::read_to_string(state.join("state.json")).expect("state.json exists");
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("round {round}: state.json: {e}"));
    let (code, out) = verify(&state.join("audit.log"));
    assert_eq!(code, 0, "round {round}: audit log: {out}");
    let log = std::fs::read_to_string(state.join("audit.log")).unwrap();
    let last = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| weights_after(&e))
        .next_back()
        .expect("a weight-changing event");
    let live = TestClient::http1()
        .get(&format!("http://{}/api/v1/routes/svc", serin.admin), &[])
        .await
        .json();
    let num = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    for k in ["v1", "v2"] {
        assert_eq!(
            num(&live["weights"], k),
            num(&last, k),
            "round {round}: live {} but the last audited change left {last}\n{}",
            live["weights"],
            log.lines().rev().take(4).collect::<Vec<_>>().join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_changes_and_reloads_keeps_state_and_audit_log_consistent() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed | 1);
    let urls = (v1.url(), v2.url());
    let env = [("SERIN_ADMIN_TOKEN", TOKEN)];
    for round in 0..5 {
        // Restart on the routing file as the last round left it.
        let current = std::fs::read_to_string(dir.path().join("serin.toml")).ok();
        let body = current
            .as_deref()
            .and_then(|t| t.find("[[routes]]").map(|i| t[i..].to_owned()))
            .unwrap_or_else(|| routes(&urls.0, &urls.1, 90, 10));
        let mut serin = SerinProcess::spawn_with_env(dir.path(), &body, &env);
        if round > 0 {
            check_consistent(&serin, dir.path(), round).await;
        }
        let driver = tokio::spawn(drive(
            serin.admin,
            serin.config.clone(),
            urls.clone(),
            rng.next(),
        ));
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        serin.child.kill().unwrap(); // SIGKILL
        serin.child.wait().unwrap();
        driver.abort();
        let _ = driver.await;
    }
    let body = std::fs::read_to_string(dir.path().join("serin.toml")).unwrap();
    let body = body[body.find("[[routes]]").unwrap()..].to_owned();
    let serin = SerinProcess::spawn_with_env(dir.path(), &body, &env);
    check_consistent(&serin, dir.path(), 5).await;
    let log = std::fs::read_to_string(dir.path().join("state/audit.log")).unwrap();
    assert!(
        log.lines().count() >= 5,
        "too few changes were driven: {log}"
    );
}
