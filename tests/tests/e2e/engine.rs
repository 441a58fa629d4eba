//! The rollback engine over real traffic, with short windows (5 s window,
//! 2 s confirm, 1 s ticks): failing and slow canaries are pulled, a
//! baseline rule compares with the stable version, too few requests are
//! never judged, gradual rollbacks step and abort, rollouts promote and
//! pause.

use std::time::Duration;

use serde_json::Value;
use serin_loadtest::{FakeHandle, FakeVersion, LoadConfig, Report};
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, TestEnv};
use tokio::task::JoinHandle;

/// v1 (stable) and v2 (canary), a chain v2 → v1, and `rollback` lines.
fn table(
    v1: &FakeHandle,
    v2: &FakeHandle,
    weights: (u32, u32),
    rollback: &str,
    extra: &str,
) -> String {
    format!(
        r#"[listen]
http = "127.0.0.1:1"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = {}
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = {}
  timeout = "1s"
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.rollback]
  stable = "v1"
  window = "5s"
  confirm = "2s"
  min_requests = 20
{rollback}
{extra}
"#,
        v1.url(),
        weights.0,
        v2.url(),
        weights.1
    )
}

fn load(env: &TestEnv, rate: f64, secs: u64) -> JoinHandle<Report> {
    let cfg = LoadConfig {
        rate,
        duration: Duration::from_secs(secs),
        connections: 16,
        ..LoadConfig::new(env.url("/").parse().unwrap())
    };
    tokio::spawn(async move { serin_loadtest::run(cfg).await.unwrap() })
}

async fn status(env: &TestEnv) -> Value {
    TestClient::http1()
        .get(&env.admin_url("/api/v1/routes/svc"), &[])
        .await
        .json()
}

async fn events(env: &TestEnv) -> Vec<Value> {
    let e = TestClient::http1()
        .get(&env.admin_url("/api/v1/events?route=svc"), &[])
        .await
        .json();
    e["events"].as_array().unwrap().clone()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn time_of(events: &[Value], kind: &str) -> Option<f64> {
    let e = events.iter().find(|e| e["kind"] == kind)?;
    let t = humantime::parse_rfc3339(e["time"].as_str()?).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_canary_is_pulled_and_clients_see_no_error() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&table(
        &v1,
        &v2,
        (70, 30),
        "critical = [\"error_rate > 10%\"]",
        "",
    ))
    .await;
    let traffic = load(&env, 150.0, 9);
    tokio::time::sleep(Duration::from_secs(2)).await;
    v2.faults().set_error_rate(1.0);
    assert_eventually!(
        status(&env).await["weights"]["v2"] == 0,
        7,
        "canary not rolled back"
    );
    let report = traffic.await.unwrap();
    assert_eq!(report.errors, 0, "clients saw errors: {report:?}");

    let ev = events(&env).await;
    let k = kinds(&ev);
    let at = |kind: &str| {
        k.iter()
            .position(|x| x == kind)
            .unwrap_or_else(|| panic!("no {kind} in {k:?}"))
    };
    assert!(
        at("level_breached") < at("rollback_started")
            && at("rollback_started") < at("rollback_completed"),
        "{k:?}"
    );
    let breach = time_of(&ev, "level_breached").unwrap();
    let done = time_of(&ev, "rollback_completed").unwrap();
    // confirm (2 s) + 2 ticks.
    assert!(
        done - breach <= 4.0,
        "breach to rollback took {:.2}s",
        done - breach
    );
    let completed = &ev[at("rollback_completed")];
    let reason = completed["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("critical: error_rate ") && reason.contains(" > 10% held 2s (n="),
        "{reason}"
    );
    assert_eq!(completed["actor"], "engine");
    assert_eq!(completed["after"]["v2"], 0);
    assert_eq!(completed["after"]["v1"], 100);
    assert_eq!(status(&env).await["state"], "rolled_back");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_canary_is_pulled_by_a_latency_rule() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_latency(Duration::from_millis(250));
    let env = TestEnv::start(&table(
        &v1,
        &v2,
        (50, 50),
        "critical = [\"p99 > 200ms\"]",
        "",
    ))
    .await;
    let traffic = load(&env, 100.0, 7);
    assert_eventually!(
        status(&env).await["weights"]["v2"] == 0,
        8,
        "slow canary not rolled back"
    );
    traffic.await.unwrap();
    let ev = events(&env).await;
    let done = ev
        .iter()
        .find(|e| e["kind"] == "rollback_completed")
        .unwrap();
    assert!(
        done["reason"]
            .as_str()
            .unwrap()
            .starts_with("critical: p99 2"),
        "{done}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_rule_fires_only_when_the_canary_is_worse() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v1.faults().set_latency(Duration::from_millis(100));
    v2.faults().set_latency(Duration::from_millis(110));
    let env = TestEnv::start(&table(
        &v1,
        &v2,
        (50, 50),
        "critical = [\"p90 > baseline * 1.5\"]",
        "",
    ))
    .await;
    let traffic = load(&env, 80.0, 10);
    // As slow as the stable version: no rollback.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&env).await["weights"]["v2"], 50);
    // Twice as slow: rolled back.
    v2.faults().set_latency(Duration::from_millis(250));
    assert_eventually!(
        status(&env).await["weights"]["v2"] == 0,
        6,
        "worse canary not rolled back"
    );
    traffic.await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_with_too_few_requests_is_never_judged() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(1.0);
    let env = TestEnv::start(&table(
        &v1,
        &v2,
        (50, 50),
        "critical = [\"error_rate > 10%\"]",
        "",
    ))
    .await;
    let c = TestClient::http1();
    for _ in 0..10 {
        c.get(&env.url("/"), &[]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = status(&env).await;
    assert_eq!(s["weights"]["v2"], 50, "judged on too few requests: {s}");
    assert_eq!(s["verdict"], "inconclusive");
    let ev = events(&env).await;
    assert!(kinds(&ev).contains(&"inconclusive".to_owned()), "{ev:?}");
    assert!(!kinds(&ev).iter().any(|k| k.starts_with("rollback")));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gradual_rollback_steps_down_then_aborts_to_zero() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let rollback = "warning = [\"error_rate > 5%\"]\n  on_warning = \"gradual\"\n  \
                    gradual = { steps = [\"25%\", \"10%\", \"5%\", \"0%\"], every = \"4s\", abort_if = \"error_rate > 40%\" }";
    let env = TestEnv::start(&table(&v1, &v2, (50, 50), rollback, "")).await;
    let traffic = load(&env, 150.0, 16);
    tokio::time::sleep(Duration::from_secs(1)).await;
    v2.faults().set_error_rate(0.15);
    assert_eventually!(
        status(&env).await["weights"]["v2"] == 25,
        7,
        "no first gradual step"
    );
    assert_eq!(status(&env).await["state"], "rolling_back");
    assert_eventually!(
        status(&env).await["weights"]["v2"] == 10,
        6,
        "no second gradual step"
    );
    // Worse now: abort to 0 at once.
    v2.faults().set_error_rate(0.9);
    assert_eventually!(status(&env).await["weights"]["v2"] == 0, 4, "no abort");
    let ev = events(&env).await;
    let done = ev
        .iter()
        .find(|e| e["kind"] == "rollback_completed")
        .unwrap();
    assert!(
        done["reason"]
            .as_str()
            .unwrap()
            .starts_with("abort_if: v2: error_rate"),
        "{done}"
    );
    assert!(
        kinds(&ev).contains(&"rollback_step".to_owned()),
        "{:?}",
        kinds(&ev)
    );
    traffic.await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_rollout_is_promoted_and_a_warning_pauses_another() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let rollout = "[routes.rollout]\n  steps = [\"10%\", \"50%\", \"100%\"]\n  every = \"1s\"";
    let rb = "critical = [\"error_rate > 50%\"]\n  warning = [\"error_rate > 5%\"]\n  on_warning = \"pause\"";
    let env = TestEnv::start(
        &table(&v1, &v2, (90, 10), rb, rollout).replace("confirm = \"2s\"", "confirm = \"1s\""),
    )
    .await;
    let traffic = load(&env, 150.0, 12);
    assert_eventually!(
        status(&env).await["state"] == "promoted",
        11,
        "rollout not promoted"
    );
    let s = status(&env).await;
    assert_eq!(
        (s["weights"]["v1"].clone(), s["weights"]["v2"].clone()),
        (0.into(), 100.into())
    );
    let k = kinds(&events(&env).await);
    assert!(
        k.iter().filter(|k| *k == "rollout_step").count() >= 2,
        "{k:?}"
    );
    traffic.await.unwrap();
    env.stop().await;

    // The same rollout with a canary in warning: held at its first step, paused.
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(0.2);
    let env = TestEnv::start(&table(&v1, &v2, (90, 10), rb, rollout)).await;
    let traffic = load(&env, 200.0, 8);
    assert_eventually!(
        status(&env).await["state"] == "paused",
        8,
        "warning did not pause the rollout"
    );
    assert_eq!(status(&env).await["weights"]["v2"], 10);
    traffic.await.unwrap();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_shadow_rules_record_without_acting() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(0.5);
    let rb =
        "critical = [\"error_rate > 10%\"]\n  shadow = [\"error_rate > 1%\"]\n  dry_run = true";
    let env = TestEnv::start(&table(&v1, &v2, (50, 50), rb, "")).await;
    let traffic = load(&env, 150.0, 5);
    let has = |kind: &'static str| {
        let env = &env;
        async move { kinds(&events(env).await).iter().any(|k| k == kind) }
    };
    assert_eventually!(has("dry_run").await, 7, "no dry_run event");
    traffic.await.unwrap();
    let ev = events(&env).await;
    let dry = ev.iter().find(|e| e["kind"] == "dry_run").unwrap();
    assert!(
        dry["reason"]
            .as_str()
            .unwrap()
            .starts_with("would roll back immediately: critical: error_rate"),
        "{dry}"
    );
    assert!(has("shadow_breached").await);
    assert_eq!(status(&env).await["weights"]["v2"], 50, "a dry run acted");
    assert!(!kinds(&ev).iter().any(|k| k.starts_with("rollback")));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_canary_with_a_dead_health_endpoint_is_pulled() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_health_fail(true);
    let rb = "critical = [\"error_rate > 10%\", \"unhealthy\"]";
    let hc = "[routes.health_check]\n  path = \"/health\"\n  interval = \"100ms\"\n  timeout = \"100ms\"\n  unhealthy_after = 3\n  healthy_after = 2";
    let env = TestEnv::start(
        &table(&v1, &v2, (99, 1), rb, hc).replace("confirm = \"2s\"", "confirm = \"1s\""),
    )
    .await;
    // No traffic at all: only the probes speak.
    assert_eventually!(
        status(&env).await["weights"]["v2"] == 0,
        6,
        "idle dead canary not rolled back"
    );
    assert_eq!(
        v2.requests() - v2.health_requests(),
        0,
        "the canary got traffic"
    );
    let ev = events(&env).await;
    let breach = ev.iter().find(|e| e["kind"] == "level_breached").unwrap();
    let reason = breach["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("critical: unhealthy: ")
            && reason.contains("failed probes (")
            && reason.contains("HTTP 503"),
        "{reason}"
    );
    let done = ev
        .iter()
        .find(|e| e["kind"] == "rollback_completed")
        .unwrap();
    let reason = done["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("critical: unhealthy: ") && reason.ends_with("held 1s"),
        "{reason}"
    );
    env.stop().await;
}
