//! Hot reload of the routing file: rewrites apply within a second, broken
//! files are refused while traffic goes on, 100 reloads under load lose no
//! request, every way of replacing a file is seen, revisions restore.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use serin_loadtest::{FakeVersion, LoadConfig};
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, one_route, with_state_dir, TestEnv, BEARER};

fn file(v1: &str, v2: &str, w1: f64, w2: f64) -> String {
    one_route(&[("v1", v1, w1), ("v2", v2, w2)], "")
}

async fn weight(env: &TestEnv, version: &str) -> Value {
    let r = TestClient::http1()
        .get(&env.admin_url("/api/v1/status"), &[])
        .await;
    r.json()["routes"][0]["weights"][version].clone()
}

async fn admin(env: &TestEnv, method: &str, path: &str) -> serin_tests::client::Reply {
    let headers = [("authorization", BEARER)];
    TestClient::http1()
        .send(method, &env.admin_url(path), &headers, Bytes::new())
        .await
}

fn events(env: &TestEnv, kind: &str) -> Vec<serin_control::Event> {
    let all = env.live.shared().events.since(0, None);
    all.into_iter().filter(|e| e.kind == kind).collect()
}

/// Replaces `path` the way editors do: a temp file renamed over it.
fn rename_over(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewrite_applies_within_a_second() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&file(&v1.url(), &v2.url(), 90.0, 10.0)).await;
    assert_eq!(weight(&env, "v2").await, 10);
    let t0 = Instant::now();
    env.write_config(&file(&v1.url(), &v2.url(), 50.0, 50.0));
    assert_eventually!(
        weight(&env, "v2").await == 50,
        1.0,
        "the rewrite did not apply within 1 s"
    );
    let took = t0.elapsed();
    let applied = events(&env, "config_applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].actor, serin_control::Actor::File);
    assert_eq!(env.live.snapshot().revision.as_ref(), "r2");
    eprintln!("rewrite applied in {took:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_refused_and_traffic_continues() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&file(&v1.url(), &v2.url(), 90.0, 10.0)).await;
    let good = std::fs::read_to_string(&env.config_path).unwrap();
    // weight = "ten": the error is at that value's line and column.
    let broken = good.replacen("weight = 10", "weight = \"ten\"", 1);
    let line = broken.lines().position(|l| l.contains("\"ten\"")).unwrap() + 1;
    std::fs::write(&env.config_path, &broken).unwrap();
    assert_eventually!(
        !events(&env, "config_rejected").is_empty(),
        5.0,
        "no config_rejected"
    );
    let reason = events(&env, "config_rejected")[0].reason.clone();
    assert!(
        reason.contains(&format!("serin.toml:{line}:10:")),
        "{reason}"
    );
    let client = TestClient::http1();
    for _ in 0..50 {
        let r = client.get(&env.url("/"), &[]).await;
        assert_eq!(r.status, 200, "traffic goes on with the last good table");
    }
    assert_eq!(weight(&env, "v2").await, 10);
    assert_eq!(env.live.snapshot().revision.as_ref(), "r1");
    // An explicit reload says why, as JSON.
    let r = admin(&env, "POST", "/api/v1/reload").await;
    assert_eq!(r.status, 422);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains(&format!("serin.toml:{line}:10:")));
    // A listener change cannot apply live: refused with a clear event.
    let moved = good.replace("127.0.0.1:1\"", "127.0.0.1:3\"");
    std::fs::write(&env.config_path, moved).unwrap();
    assert_eventually!(
        events(&env, "config_rejected")
            .iter()
            .any(|e| e.reason.contains("[listen] changed")),
        2.0,
        "listener change not refused"
    );
    assert!(events(&env, "config_applied").is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_reloads_under_steady_load_lose_no_request() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let files = [
        file(&v1.url(), &v2.url(), 90.0, 10.0),
        file(&v1.url(), &v2.url(), 50.0, 50.0),
    ];
    let env = TestEnv::start(&files[0]).await;
    let load = tokio::spawn(serin_loadtest::run(LoadConfig {
        rate: 300.0,
        duration: Duration::from_secs(6),
        connections: 8,
        ..LoadConfig::new(env.url("/").parse().unwrap())
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    for i in 1..=100 {
        rename_over(&env.config_path, &env.routing_file(&files[i % 2]));
        let r = admin(&env, "POST", "/api/v1/reload").await;
        assert_eq!(r.status, 200, "reload {i}: {}", r.text());
        let result = r.json()["result"].as_str().unwrap().to_owned();
        assert!(result == "applied" || result == "unchanged", "{result}");
    }
    let took = t0.elapsed();
    let report = load.await.unwrap().unwrap();
    assert!(
        took < Duration::from_secs(5),
        "the reloads outlasted the load: {took:?}"
    );
    assert!(report.requests > 1000, "{report:?}");
    assert_eq!(
        (report.errors, report.transport, report.timeouts),
        (0, 0, 0),
        "{report:?}"
    );
    // Each change applied exactly once (by the API or by the watcher).
    assert_eq!(events(&env, "config_applied").len(), 100);
    assert!(events(&env, "config_rejected").is_empty());
    assert_eq!(env.live.snapshot().revision.as_ref(), "r101");
    eprintln!("100 reloads in {took:?} under {} requests", report.requests);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_write_and_rename_over_are_caught() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&file(&v1.url(), &v2.url(), 90.0, 10.0)).await;
    env.write_config(&file(&v1.url(), &v2.url(), 80.0, 20.0));
    assert_eventually!(
        weight(&env, "v2").await == 20,
        5.0,
        "in-place write not seen"
    );
    rename_over(
        &env.config_path,
        &env.routing_file(&file(&v1.url(), &v2.url(), 70.0, 30.0)),
    );
    assert_eventually!(weight(&env, "v2").await == 30, 5.0, "rename-over not seen");
    // The watch survives the rename (it is on the directory).
    env.write_config(&file(&v1.url(), &v2.url(), 60.0, 40.0));
    assert_eventually!(
        weight(&env, "v2").await == 40,
        5.0,
        "write after rename not seen"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_caught() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    // Kubernetes' layout: serin.toml -> ..data/serin.toml, ..data -> ..2026_v1.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let version = |n: u32, w2: f64| {
        let d = root.join(format!("..2026_v{n}"));
        std::fs::create_dir(&d).unwrap();
        let text = with_state_dir(&root, &file(&v1.url(), &v2.url(), 100.0 - w2, w2));
        std::fs::write(d.join("serin.toml"), text).unwrap();
        d
    };
    version(1, 10.0);
    symlink("..2026_v1", root.join("..data")).unwrap();
    symlink("..data/serin.toml", root.join("serin.toml")).unwrap();
    let path = root.join("serin.toml");
    let env = TestEnv::start_at(dir, path).await;
    assert_eq!(weight(&env, "v2").await, 10);
    for (n, w2) in [(2, 25.0), (3, 35.0)] {
        version(n, w2);
        // The kubelet's atomic swap: a new symlink renamed over `..data`.
        symlink(format!("..2026_v{n}"), root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join(format!("..2026_v{}", n - 1))).unwrap();
        assert_eventually!(
            weight(&env, "v2").await == w2 as i64,
            5.0,
            "swap {n} not seen"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_of_an_old_revision_brings_its_weights_back() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&file(&v1.url(), &v2.url(), 90.0, 10.0)).await;
    let r1_bytes = std::fs::read(&env.config_path).unwrap();
    for (w2, rev) in [(50.0, "r2"), (100.0, "r3")] {
        env.write_config(&file(&v1.url(), &v2.url(), 100.0 - w2, w2));
        assert_eventually!(
            env.live.snapshot().revision.as_ref() == rev,
            5.0,
            "{rev} not applied"
        );
    }
    // The archive copy is written just after the swap a file watch makes.
    assert_eventually!(
        admin(&env, "GET", "/api/v1/revisions").await.json()["revisions"]
            .as_array()
            .is_some_and(|l| l.len() == 3),
        5.0,
        "r3 never archived"
    );
    let list = admin(&env, "GET", "/api/v1/revisions").await.json();
    let ids: Vec<&str> = list["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r1", "r2", "r3"], "oldest first");
    assert_eq!(list["current"], "r3");
    assert_eq!(list["revisions"][0]["actor"], "file");
    assert_eq!(list["revisions"][0]["sha256"].as_str().unwrap().len(), 64);

    let r = admin(&env, "POST", "/api/v1/revisions/r1/restore").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["result"].as_str(), r.json()["revision"].as_str()),
        (Some("applied"), Some("r4"))
    );
    assert_eq!(
        (weight(&env, "v1").await, weight(&env, "v2").await),
        (Value::from(90), Value::from(10))
    );
    assert_eq!(
        std::fs::read(&env.config_path).unwrap(),
        r1_bytes,
        "file and table agree"
    );
    let mut bak = env.config_path.clone().into_os_string();
    bak.push(".bak");
    assert!(std::fs::read_to_string(bak)
        .unwrap()
        .contains("weight = 100"));
    // The watcher sees the restored file but it is what is live: no r5.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(env.live.snapshot().revision.as_ref(), "r4");
    let r = admin(&env, "POST", "/api/v1/revisions/r99/restore").await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    let v1 = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let routes = format!(
        "[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"{}\"\nweight = 1\n",
        v1.url()
    );
    let serin = serin_tests::process::SerinProcess::spawn(dir.path(), &routes);
    let path = dir.path().join("serin.toml");
    let events = |actor: &'static str| {
        let url = format!("http://{}/api/v1/events", serin.admin);
        async move {
            let r = TestClient::http1().get(&url, &[]).await.json();
            r["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "config_rejected" && e["actor"] == actor)
                .count()
        }
    };
    // A broken file: the watcher refuses it (actor file) and remembers its
    // bytes; SIGHUP then reloads anyway and refuses it again (actor signal).
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, good.replace("weight = 1", "weight = -1")).unwrap();
    // Generous bounds: on a loaded 2-core CI box the watcher's debounce
    // and the child's scheduling can take seconds.
    assert_eventually!(
        events("file").await == 1,
        10.0,
        "the watcher did not refuse it"
    );
    let pid = serin.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eventually!(events("signal").await == 1, 10.0, "SIGHUP did not reload");
    let r = TestClient::http1()
        .get(&format!("http://{}/", serin.http), &[])
        .await;
    assert_eq!(r.status, 200, "serin still serves the last good table");
}
