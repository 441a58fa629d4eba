//! Rollout semantics users write files for: a new version at weight 0 is
//! brought in by the rollout, an operator's weights hold against it, and a
//! rollback can send everything to a chosen version.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use serin_loadtest::{FakeHandle, FakeVersion, LoadConfig};
use serin_tests::client::{Reply, TestClient};
use serin_tests::{assert_eventually, TestEnv, BEARER};

/// v1 (stable), v1.5 (fallback only) and v2 (the new version, weight 0),
/// with a rollout of three steps a second apart.
fn table(v1: &FakeHandle, v15: &FakeHandle, v2: &FakeHandle, rollout: bool) -> String {
    let steps = if rollout {
        "[routes.rollout]\n  steps = [\"10%\", \"50%\", \"100%\"]\n  every = \"1s\""
    } else {
        ""
    };
    format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 100
  [[routes.versions]]
  name = "v1.5"
  url = "{}"
  weight = 0
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = {}
  [routes.rollback]
  stable = "v1"
  window = "5s"
  confirm = "1s"
  min_requests = 20
  critical = ["error_rate > 50%"]
{steps}
"#,
        v1.url(),
        v15.url(),
        v2.url(),
        if rollout { 0 } else { 10 }
    )
}

async fn route(env: &TestEnv) -> Value {
    TestClient::http1()
        .get(&env.admin_url("/api/v1/routes/svc"), &[])
        .await
        .json()
}

async fn change(env: &TestEnv, method: &str, path: &str, body: &str) -> Reply {
    TestClient::http1()
        .send(
            method,
            &env.admin_url(path),
            &[
                ("authorization", BEARER),
                ("content-type", "application/json"),
            ],
            Bytes::from(body.to_owned()),
        )
        .await
}

fn load(env: &TestEnv, secs: u64) -> tokio::task::JoinHandle<serin_loadtest::Report> {
    let cfg = LoadConfig {
        rate: 150.0,
        duration: Duration::from_secs(secs),
        connections: 8,
        ..LoadConfig::new(env.url("/").parse().unwrap())
    };
    tokio::spawn(async move { serin_loadtest::run(cfg).await.unwrap() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_brings_in_a_version_written_at_weight_zero() {
    let (v1, v15, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v1.5").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&table(&v1, &v15, &v2, true)).await;
    let traffic = load(&env, 10);
    assert_eventually!(
        route(&env).await["state"] == "promoted",
        10,
        "the rollout of a weight-0 version never finished"
    );
    let r = route(&env).await;
    assert_eq!(r["weights"]["v2"], 100, "{r}");
    assert_eq!(r["weights"]["v1"], 0, "{r}");
    // The fallback-only version was never part of it.
    assert_eq!(r["weights"]["v1.5"], 0, "{r}");
    assert_eq!(v15.requests(), 0);
    assert_eq!(traffic.await.unwrap().errors, 0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_weights_hold_until_resume() {
    let (v1, v15, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v1.5").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&table(&v1, &v15, &v2, true)).await;
    let traffic = load(&env, 14);
    assert_eventually!(
        route(&env).await["state"] == "progressing",
        3,
        "the rollout did not start"
    );
    let r = change(
        &env,
        "PUT",
        "/api/v1/routes/svc/weights",
        r#"{"weights": {"v1": 80, "v2": 20}, "reason": "hold here"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let reason = r.json()["event"]["reason"].as_str().unwrap().to_owned();
    assert_eq!(
        reason,
        "hold here; rollout paused at these weights until resumed"
    );
    // Three rollout periods later the operator's weights still stand.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = route(&env).await;
    assert_eq!(r["state"], "paused", "{r}");
    assert_eq!(
        (r["weights"]["v1"].clone(), r["weights"]["v2"].clone()),
        (80.into(), 20.into())
    );

    let r = change(&env, "POST", "/api/v1/routes/svc/resume", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eventually!(
        route(&env).await["state"] == "promoted",
        6,
        "the rollout did not go on after resume"
    );
    assert_eq!(traffic.await.unwrap().errors, 0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_can_send_everything_to_a_chosen_version() {
    let (v1, v15, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v1.5").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&table(&v1, &v15, &v2, false)).await;
    let rollback = "/api/v1/routes/svc/rollback";
    for (body, status, says) in [
        (r#"{"to": "v9"}"#, 422, "v9"),
        (r#"{"to": "v2"}"#, 409, "is the canary"),
        (r#"{"to": "v1.5", "mode": "gradual"}"#, 422, "immediate"),
    ] {
        let r = change(&env, "POST", rollback, body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{}",
            r.text()
        );
    }
    let refused = env.live.shared().events.since(0, Some("svc"));
    assert!(
        refused.iter().all(|e| e.kind != "rollback_started"),
        "a refused rollback left an event"
    );

    let r = change(
        &env,
        "POST",
        rollback,
        r#"{"to": "v1.5", "reason": "v2 and v1 both bad"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["route"]["state"], "rolled_back");
    assert_eq!(j["event"]["after"]["v1.5"], 100);
    assert_eq!(j["event"]["after"]["v2"], 0);
    assert_eq!(j["event"]["after"]["v1"], 0);
    assert_eq!(
        j["event"]["reason"],
        "v2 and v1 both bad; all traffic to v1.5"
    );
    let client = TestClient::http1();
    for _ in 0..50 {
        let r = client.get(&env.url("/"), &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v1.5"));
    }
    assert_eq!(v2.requests(), 0);
    env.stop().await;
}
