//! `serin demo` as a new user runs it: the binary with no files, finishing
//! by itself with exit 0 and the whole story in its output.

use std::time::Duration;

use serin_tests::serin_bin;

/// Runs `serin ARGS` in an empty directory as a new user would: it must
/// finish by itself with exit 0; its standard output.
async fn demo(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(serin_bin())
        .args(args)
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the demo finishes by itself within two minutes")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tells_the_story_and_exits_0() {
    let text = demo(&["demo"]).await;
    for step in [
        "rollout started",
        "x-serin-version: v1.5 (weight 0) → 200 OK from v1.5",
        "v2 starts failing",
        "BREACH detected",
        "ROLLBACK done: v2 weight 0",
        "Incident timeline",
        "recovered",
        "Incident report (serin incidents i",
        "- Client-visible errors: 0 of ",
        "## Evidence",
        "Mirror: ",
        "Quality: answers flagged by x-quality-flag (flag_rate): v1 ",
    ] {
        assert!(
            text.contains(step),
            "no {step:?} in the demo's output:\n{text}"
        );
    }
    let clients = text
        .lines()
        .find(|l| l.starts_with("Clients: "))
        .expect("a clients summary line");
    assert!(clients.contains(", 0 errors,"), "{clients}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_demo_tells_the_story_on_three_replicas() {
    let text = demo(&["demo", "--fleet"]).await;
    for step in [
        "leader: edge-",
        "v2 at 20% (progressing)",
        "has it too",
        "v2 starts failing",
        "v2 at 0% (rolled_back)",
        "Decision: rollback_started",
        "over 3 replicas, 0 errors",
        "edge-c  rolled_back",
    ] {
        assert!(text.contains(step), "no {step:?} in:\n{text}");
    }
}
