//! Decisions survive `kill -9`: a canary the engine rolled back stays rolled
//! back after a restart, and the audit log it wrote verifies — and fails
//! to verify once a line is edited, deleted or reordered.

use std::process::Command;
use std::time::Duration;

use serin_loadtest::{FakeVersion, LoadConfig};
use serin_tests::client::TestClient;
use serin_tests::process::SerinProcess;
use serin_tests::{assert_eventually, serin_bin};

fn verify(path: &std::path::Path) -> (i32, String) {
    let out = Command::new(serin_bin())
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_stays_rolled_back_after_kill_9_and_the_audit_log_verifies() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(1.0);
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"{}\"\nweight = 80\n\
         [[routes.versions]]\nname = \"v2\"\nurl = \"{}\"\nweight = 20\n\
         [routes.fallback]\nchain = [\"v2\", \"v1\"]\n\
         [routes.rollback]\nstable = \"v1\"\nwindow = \"5s\"\nconfirm = \"1s\"\nmin_requests = 10\ncritical = [\"error_rate > 10%\"]\n",
        v1.url(),
        v2.url()
    );
    let mut serin = SerinProcess::spawn(dir.path(), &routes);
    let status_url = format!("http://{}/api/v1/routes/svc", serin.admin);
    let c = TestClient::http1();
    let load = serin_loadtest::run(LoadConfig {
        rate: 100.0,
        duration: Duration::from_secs(6),
        connections: 8,
        ..LoadConfig::new(format!("http://{}/", serin.http).parse().unwrap())
    });
    let (report, ()) = tokio::join!(load, async {
        assert_eventually!(
            c.get(&status_url, &[]).await.json()["state"] == "rolled_back",
            8,
            "not rolled back"
        );
    });
    assert_eq!(report.unwrap().errors, 0);

    // kill -9, then start again on the same state directory.
    serin.child.kill().unwrap();
    serin.child.wait().unwrap();
    let serin = SerinProcess::spawn(dir.path(), &routes);
    let s = c
        .get(&format!("http://{}/api/v1/routes/svc", serin.admin), &[])
        .await
        .json();
    assert_eq!(s["state"], "rolled_back", "{s}");
    assert_eq!(s["weights"]["v2"], 0, "{s}");
    let before = v2.requests();
    for _ in 0..50 {
        assert_eq!(
            c.get(&format!("http://{}/", serin.http), &[])
                .await
                .header("x-serin-version"),
            Some("v1")
        );
    }
    assert_eq!(
        v2.requests(),
        before,
        "a rolled-back canary got traffic after the restart"
    );
    drop(serin);

    let log = dir.path().join("state/audit.log");
    let (code, text) = verify(&log);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK"), "{text}");
    let good = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    assert!(lines.len() >= 3, "{good}");
    let edited = good.replacen("\"v2\":0", "\"v2\":20", 1);
    assert_ne!(edited, good);
    let deleted = [&lines[..1], &lines[2..]].concat().join("\n") + "\n";
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    let reordered = swapped.join("\n") + "\n";
    for (what, text) in [
        ("edited", edited),
        ("deleted", deleted),
        ("reordered", reordered),
    ] {
        std::fs::write(&log, text).unwrap();
        let (code, out) = verify(&log);
        assert_eq!(code, 1, "{what} line not caught: {out}");
        assert!(out.contains("line "), "{what}: {out}");
    }
}
