//! Judging a canary by more than errors and latency: quality signals an
//! upstream reports per answer (`[[routes.signals]]`), and mirrored copies
//! compared with the live answers (`[routes.mirror]`).

use std::time::Duration;

use serde_json::Value;
use serin_loadtest::{FakeVersion, SIGNAL_HEADER};
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, TestEnv};

async fn get_json(env: &TestEnv, path: &str) -> Value {
    TestClient::http1()
        .get(&env.admin_url(path), &[])
        .await
        .json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_reporting_a_signal_on_30_percent_of_answers_is_rolled_back_by_a_15_percent_rule()
{
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v1.faults().set_signal_rate(0.05);
    v2.faults().set_signal_rate(0.30);
    let env = TestEnv::start(&format!(
        r#"[listen]
http = "127.0.0.1:1"
[engine]
tick = "50ms"
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
  [[routes.signals]]
  name = "flag"
  header = "{SIGNAL_HEADER}"
  [routes.rollback]
  stable = "v1"
  window = "30s"
  confirm = "500ms"
  min_requests = 40
  critical = ["flag_rate > 15%"]
"#,
        v1.url(),
        v2.url()
    ))
    .await;
    let client = TestClient::http1();
    let url = env.url("/");
    let mut seen_by_v2 = 0;
    for _ in 0..400 {
        let r = client.get(&url, &[]).await;
        assert_eq!(r.status, 200);
        // The signal is the version's word to serin, not to the client.
        assert_eq!(r.header(SIGNAL_HEADER), None);
        seen_by_v2 += u32::from(r.header("x-serin-version") == Some("v2"));
        if seen_by_v2 >= 60 {
            break;
        }
    }
    let stats = get_json(&env, "/api/v1/routes/svc/stats?window=60s").await;
    let rate = stats["versions"]["v2"]["signals"]["flag"]["rate"]
        .as_f64()
        .unwrap_or_else(|| panic!("{stats}"));
    assert!((0.25..=0.35).contains(&rate), "{stats}");
    assert!(
        stats["versions"]["v1"]["signals"]["flag"]["rate"]
            .as_f64()
            .unwrap()
            < 0.15
    );

    assert_eventually!(
        get_json(&env, "/api/v1/routes/svc").await["weights"]["v2"] == 0,
        10,
        "v2 was not rolled back: {}",
        get_json(&env, "/api/v1/routes/svc").await
    );
    let events = env.live.shared().events.since(0, Some("svc"));
    let started = events
        .iter()
        .find(|e| e.kind == "rollback_started")
        .expect("a rollback_started event");
    assert!(started.reason.contains("flag_rate 3"), "{}", started.reason);
    assert!(started.reason.contains("> 15%"), "{}", started.reason);

    let metrics = client.get(&env.admin_url("/metrics"), &[]).await.text();
    assert!(
        metrics.lines().any(|l| l.starts_with("serin_signal_total{")
            && l.contains("version=\"v2\"")
            && l.contains("signal=\"flag\"")),
        "{metrics}"
    );
    env.stop().await;
}

fn mirrored(v1: &str, v2: &str, extra: &str) -> String {
    format!(
        r#"[listen]
http = "127.0.0.1:1"
[engine]
tick = "50ms"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{v1}"
  weight = 100
  [[routes.versions]]
  name = "v2"
  url = "{v2}"
  weight = 0
  timeout = "5s"
  [routes.mirror]
  to = "v2"
  percent = 100
  compare = ["status", "body"]
{extra}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_version_answering_another_body_is_judged_while_clients_see_only_live_answers() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&mirrored(
        &v1.url(),
        &v2.url(),
        r#"  [routes.rollback]
  stable = "v1"
  window = "30s"
  confirm = "500ms"
  min_requests = 20
  critical = ["mirror_mismatch_rate > 5%"]
"#,
    ))
    .await;
    let client = TestClient::http1();
    let url = env.url("/");
    for _ in 0..30 {
        let r = client.get(&url, &[]).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "v1\n"));
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    // Every request was copied to v2, whose body ("v2\n") differs.
    assert_eventually!(v2.requests() == 30, 5, "copies: {}", v2.requests());
    assert_eventually!(
        get_json(&env, "/api/v1/routes/svc/mirror").await["compared"] == 30,
        5,
        "{}",
        get_json(&env, "/api/v1/routes/svc/mirror").await
    );
    let m = get_json(&env, "/api/v1/routes/svc/mirror").await;
    assert_eq!(m["to"], "v2", "{m}");
    assert_eq!(m["sent"], 30, "{m}");
    assert_eq!(m["mismatched"], 30, "{m}");
    assert_eq!(m["mismatch_rate"], 1.0, "{m}");
    let sample = &m["samples"][0];
    assert_eq!(sample["differs"], serde_json::json!(["body"]), "{m}");
    assert_eq!(sample["live"]["status"], 200, "{m}");
    assert_eq!(sample["mirror"]["status"], 200, "{m}");
    assert_eq!(sample["live"]["body_bytes"], 3, "{m}");
    assert_ne!(
        sample["live"]["body_hash"], sample["mirror"]["body_hash"],
        "{m}"
    );
    let stats = get_json(&env, "/api/v1/routes/svc/stats?window=60s").await;
    assert_eq!(stats["mirrored"]["v2"]["requests"], 30, "{stats}");
    assert_eq!(stats["versions"]["v2"]["requests"], 0, "{stats}");

    // No user was ever sent to v2, and the engine judged it all the same:
    // rolled back (its weight stays 0) with the mismatch as the reason.
    assert_eventually!(
        env.live
            .shared()
            .events
            .since(0, Some("svc"))
            .iter()
            .any(|e| e.kind == "rollback_completed"),
        10,
        "no rollback: {:?}",
        env.live.shared().events.since(0, Some("svc"))
    );
    let events = env.live.shared().events.since(0, Some("svc"));
    let started = events
        .iter()
        .find(|e| e.kind == "rollback_started")
        .unwrap();
    assert!(
        started.reason.contains("mirror_mismatch_rate 100% > 5%"),
        "{}",
        started.reason
    );
    let metrics = client.get(&env.admin_url("/metrics"), &[]).await.text();
    // At least this test's 30 (tests in this process share the recorder).
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("serin_mirror_mismatches_total{") && l.contains("version=\"v2\""))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(counted.is_some_and(|n| n >= 30.0), "{metrics}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_mirror_never_delays_the_live_answer_and_sheds_past_its_queue() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_hang(true);
    let env = TestEnv::start(&mirrored(&v1.url(), &v2.url(), "  queue = 4\n")).await;
    let client = TestClient::http1();
    let url = env.url("/");
    for _ in 0..10 {
        // v2's timeout is 5 s: an answer within 2 s did not wait for it.
        let r = tokio::time::timeout(Duration::from_secs(2), client.get(&url, &[]))
            .await
            .expect("the live answer waited for its copy");
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "v1\n"));
    }
    let m = get_json(&env, "/api/v1/routes/svc/mirror").await;
    assert_eq!(m["sent"], 4, "{m}");
    assert_eq!(m["shed"], 6, "{m}");
    assert_eq!(m["in_flight"], 4, "{m}");
    v2.faults().set_hang(false);
    // The hung copies end (timed out or answered) and free their places.
    assert_eventually!(
        get_json(&env, "/api/v1/routes/svc/mirror").await["in_flight"] == 0,
        10,
        "copies still in flight"
    );
    env.stop().await;
}

fn mirrored_rollout(v1: &str, v2: &str) -> String {
    mirrored(
        v1,
        v2,
        r#"  [routes.rollback]
  stable = "v1"
  window = "30s"
  confirm = "300ms"
  min_requests = 20
  critical = ["error_rate > 10%"]
  [routes.rollout]
  steps = ["50%", "100%"]
  every = "30s"
"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_rollout_starts_only_once_the_copies_are_judged_clear() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&mirrored_rollout(&v1.url(), &v2.url())).await;
    let client = TestClient::http1();
    let url = env.url("/");
    let route = || async { get_json(&env, "/api/v1/routes/svc").await };
    // No copy judged yet: the rollout waits, v2 sees no user.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(route().await["state"], "stable", "{}", route().await);
    for _ in 0..25 {
        let r = client.get(&url, &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    // 25 copies answered well: the first step follows.
    assert_eventually!(
        route().await["weights"]["v2"] == 50,
        5,
        "the rollout did not start: {}",
        route().await
    );
    assert_eq!(route().await["state"], "progressing");
    env.stop().await;

    // The same rollout with a v2 that fails every copy never starts: v2 is
    // rolled back before any user reached it.
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(1.0);
    let env = TestEnv::start(&mirrored_rollout(&v1.url(), &v2.url())).await;
    let client = TestClient::http1();
    let url = env.url("/");
    for _ in 0..25 {
        let r = client.get(&url, &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.header("x-serin-version")),
            (200, Some("v1"))
        );
    }
    let route = || async { get_json(&env, "/api/v1/routes/svc").await };
    assert_eventually!(
        route().await["state"] == "rolled_back",
        5,
        "v2 was not rolled back: {}",
        route().await
    );
    assert_eq!(route().await["weights"]["v2"], 0);
    let events = env.live.shared().events.since(0, Some("svc"));
    assert!(
        events.iter().all(|e| e.kind != "rollout_step"),
        "the rollout began: {events:?}"
    );
    let incidents = get_json(&env, "/api/v1/incidents?route=svc").await;
    assert!(
        incidents.to_string().contains("error_rate 100% > 10%"),
        "{incidents}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gradual_rollback_of_a_version_no_user_reaches_goes_to_0_at_once() {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    v2.faults().set_error_rate(1.0);
    let env = TestEnv::start(&mirrored(
        &v1.url(),
        &v2.url(),
        r#"  [routes.rollback]
  stable = "v1"
  window = "30s"
  confirm = "300ms"
  min_requests = 20
  critical = ["error_rate > 10%"]
  on_critical = "gradual"
  gradual = { steps = ["50%", "5%"], every = "1s" }
"#,
    ))
    .await;
    let client = TestClient::http1();
    for _ in 0..25 {
        let r = client.get(&env.url("/"), &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v1"));
    }
    assert_eventually!(
        get_json(&env, "/api/v1/routes/svc").await["state"] == "rolled_back",
        5,
        "not rolled back: {}",
        get_json(&env, "/api/v1/routes/svc").await
    );
    let events = env.live.shared().events.since(0, Some("svc"));
    assert!(
        events.iter().all(|e| e.kind != "rollback_step"),
        "a step gave v2 users: {events:?}"
    );
    let started = events
        .iter()
        .find(|e| e.kind == "rollback_started")
        .unwrap();
    assert!(
        started.reason.ends_with("; immediate"),
        "{}",
        started.reason
    );
    env.stop().await;
}
