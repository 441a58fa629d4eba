//! The status page (`GET /ui`) in headless Chromium: rendered from live
//! data, following a rollback as it happens, acting with a token.

use std::time::Duration;

use serde_json::{json, Value};
use serin_loadtest::{FakeHandle, FakeVersion, LoadConfig, Report};
use serin_tests::browser::Browser;
use serin_tests::client::TestClient;
use serin_tests::{TestEnv, TOKEN};
use tokio::task::JoinHandle;

fn table(v1: &FakeHandle, v2: &FakeHandle, w1: &FakeHandle, w2: &FakeHandle) -> String {
    format!(
        r#"[listen]
http = "127.0.0.1:1"

[[routes]]
name = "svc"
path_prefix = "/svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = 50
  timeout = "1s"
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = 50
  timeout = "1s"
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.rollback]
  stable = "v1"
  window = "3s"
  confirm = "1s"
  min_requests = 20
  warning = ["error_rate > 5%"]
  on_warning = "gradual"
  gradual = {{ steps = ["25%", "10%", "0%"], every = "3s" }}

[[routes]]
name = "other"
path_prefix = "/other"
  [[routes.versions]]
  name = "w1"
  url = "{}"
  weight = 80
  [[routes.versions]]
  name = "w2"
  url = "{}"
  weight = 20
  [routes.rollback]
  stable = "w1"
"#,
        v1.url(),
        v2.url(),
        w1.url(),
        w2.url()
    )
}

fn load(env: &TestEnv, path: &str, rate: f64, secs: u64) -> JoinHandle<Report> {
    let cfg = LoadConfig {
        rate,
        duration: Duration::from_secs(secs),
        connections: 8,
        ..LoadConfig::new(env.url(path).parse().unwrap())
    };
    tokio::spawn(async move { serin_loadtest::run(cfg).await.unwrap() })
}

async fn status(env: &TestEnv) -> Value {
    TestClient::http1()
        .get(&env.admin_url("/api/v1/status"), &[])
        .await
        .json()
}

/// The weight the page shows for `version` of `route`, as a number.
async fn shown_weight(page: &mut Browser, route: &str, version: &str) -> Option<f64> {
    let sel = format!("[data-route='{route}'] tr[data-version='{version}'] [data-field='weight']");
    page.text(&sel).await.as_str().and_then(|t| t.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_live_data_follows_a_rollback_and_acts_with_a_token() {
    let fakes: Vec<FakeHandle> = ["v1", "v2", "w1", "w2"]
        .iter()
        .map(|n| FakeVersion::start(n).unwrap())
        .collect();
    let env = TestEnv::start(&table(&fakes[0], &fakes[1], &fakes[2], &fakes[3])).await;
    let svc = load(&env, "/svc", 150.0, 30);
    let other = load(&env, "/other", 20.0, 30);
    let mut page = Browser::launch(1400, 1000).await;
    page.open(&env.admin_url("/ui")).await;

    // Rendered from live data: every route and version the API lists, with
    // the API's weights, then traffic and charts.
    page.wait_for(
        "document.querySelectorAll('section.route tr[data-version]').length === 4",
        Duration::from_secs(10),
    )
    .await;
    let api = status(&env).await;
    for route in api["routes"].as_array().unwrap() {
        let name = route["name"].as_str().unwrap();
        for v in route["versions"].as_array().unwrap() {
            let version = v["name"].as_str().unwrap();
            assert_eq!(
                shown_weight(&mut page, name, version).await,
                v["weight"].as_f64(),
                "{name}/{version}"
            );
        }
    }
    page.wait_for(
        "parseFloat(document.querySelector(\"[data-route='svc'] tr[data-version='v1'] [data-field='rps']\").textContent) > 0",
        Duration::from_secs(10),
    )
    .await;
    page.wait_for(
        "[...document.querySelectorAll(\"[data-route='svc'] tr[data-version='v1'] [data-chart='traffic'] polyline\")]\
         .some(l => l.getAttribute('points').split(' ').length >= 2)",
        Duration::from_secs(15),
    )
    .await;
    // Read-only until a token is entered.
    assert_eq!(
        page.eval("[...document.querySelectorAll('button[data-action]')].every(b => b.disabled)")
            .await,
        json!(true)
    );

    // v2 goes bad: the page follows the gradual rollback step by step.
    fakes[1].faults().set_error_rate(0.15);
    let mut seen: Vec<f64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    while seen.last() != Some(&0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "v2's weight on the page never reached 0: {seen:?}"
        );
        if let Some(w) = shown_weight(&mut page, "svc", "v2").await {
            if seen.last() != Some(&w) {
                seen.push(w);
            }
            if w == 10.0 {
                let shot =
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
                page.screenshot(&shot).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(seen, [50.0, 25.0, 10.0, 0.0], "the weights the page showed");
    page.wait_for(
        "document.querySelector(\"[data-route='svc'] [data-field='state']\").textContent === 'rolled back'",
        Duration::from_secs(5),
    )
    .await;
    page.wait_for(
        "[...document.querySelectorAll('#events li')].some(li => li.dataset.kind === 'rollback_step')",
        Duration::from_secs(5),
    )
    .await;
    page.wait_for(
        "document.querySelectorAll('#incidents li[data-incident]').length >= 1",
        Duration::from_secs(8),
    )
    .await;

    // A wrong token: the click is refused with the API's 401, nothing changes.
    let rollback = "[data-route='other'] button[data-action='rollback']";
    page.type_into("#token", "not-the-token").await;
    page.click("#use-token").await;
    page.wait_for(
        &format!("!document.querySelector(\"{rollback}\").disabled"),
        Duration::from_secs(2),
    )
    .await;
    page.click(rollback).await;
    page.click(rollback).await;
    let refused = page
        .wait_for(
            "(t => t.includes('refused') && t)(document.querySelector(\"[data-route='other'] [data-field='result']\").textContent)",
            Duration::from_secs(5),
        )
        .await;
    assert!(refused.as_str().unwrap().contains("401"), "{refused}");
    assert_eq!(status(&env).await["routes"][1]["weights"]["w2"], 20);

    // The right token: rollback takes two clicks (arm, confirm), then acts.
    page.click("#forget-token").await;
    page.type_into("#token", TOKEN).await;
    page.click("#use-token").await;
    page.click(rollback).await;
    assert_eq!(page.text(rollback).await, json!("confirm rollback"));
    assert_eq!(
        status(&env).await["routes"][1]["weights"]["w2"],
        20,
        "one click arms only"
    );
    page.click(rollback).await;
    let done = page
        .wait_for(
            "(t => t.includes('w2 0') && t)(document.querySelector(\"[data-route='other'] [data-field='result']\").textContent)",
            Duration::from_secs(5),
        )
        .await;
    let api = status(&env).await;
    assert_eq!(
        api["routes"][1]["weights"],
        json!({"w1": 100, "w2": 0}),
        "{done}"
    );
    let events = TestClient::http1()
        .get(&env.admin_url("/api/v1/events?route=other"), &[])
        .await
        .json();
    let by_page = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "from the status page")
        .cloned()
        .unwrap_or_else(|| panic!("no event from the page: {events}"));
    assert_eq!(by_page["actor"], "api", "{by_page}");
    assert_eq!(by_page["after"], json!({"w1": 100, "w2": 0}), "{by_page}");
    // The page shows the new weight too.
    page.wait_for(
        "document.querySelector(\"[data-route='other'] tr[data-version='w2'] [data-field='weight']\").textContent === '0'",
        Duration::from_secs(3),
    )
    .await;

    svc.await.unwrap();
    other.await.unwrap();
    env.stop().await;
}
