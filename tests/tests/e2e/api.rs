//! The admin REST API over a real socket: auth, each endpoint's happy path
//! and its 4xx, maintenance mode, the OpenAPI document.

use bytes::Bytes;
use serde_json::Value;
use serin_loadtest::{FakeHandle, FakeVersion};
use serin_tests::client::{Reply, TestClient};
use serin_tests::{one_route, TestEnv, BEARER};

const JSON: (&str, &str) = ("content-type", "application/json");
const AUTH: (&str, &str) = ("authorization", BEARER);

async fn call(
    env: &TestEnv,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    TestClient::http1()
        .send(
            method,
            &env.admin_url(path),
            headers,
            Bytes::from(body.to_owned()),
        )
        .await
}

async fn weights(env: &TestEnv) -> Value {
    let r = call(env, "GET", "/api/v1/routes/svc", &[], "").await;
    r.json()["weights"].clone()
}

fn kinds(env: &TestEnv, kind: &str) -> usize {
    env.live
        .shared()
        .events
        .since(0, None)
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

async fn canary() -> (FakeHandle, FakeHandle, TestEnv) {
    let v1 = FakeVersion::start("v1").unwrap();
    let v2 = FakeVersion::start("v2").unwrap();
    let env = TestEnv::start(&one_route(
        &[("v1", &v1.url(), 90.0), ("v2", &v2.url(), 10.0)],
        "",
    ))
    .await;
    (v1, v2, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_without_the_right_token_are_401_and_change_nothing() {
    let (_v1, _v2, env) = canary().await;
    let before = weights(&env).await;
    let body = r#"{"weights": {"v1": 0, "v2": 100}, "reason": "no token"}"#;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("test-token"),
        Some("Bearer test-token-x"),
    ] {
        let mut headers = vec![JSON];
        headers.extend(auth.map(|a| ("authorization", a)));
        for (method, path, body) in [
            ("PUT", "/api/v1/routes/svc/weights", body),
            ("POST", "/api/v1/routes/svc/rollback", ""),
            ("PUT", "/api/v1/maintenance", r#"{"enabled": true}"#),
            ("POST", "/api/v1/reload", ""),
            ("POST", "/api/v1/revisions/r1/restore", ""),
        ] {
            let r = call(&env, method, path, &headers, body).await;
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}");
            assert!(r.json()["error"].is_string());
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
    assert_eq!(weights(&env).await, before);
    assert!(
        env.live.shared().events.since(0, None).is_empty(),
        "no event recorded"
    );
    assert!(env.live.snapshot().maintenance.is_none());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_happy_path_and_every_4xx() {
    let (_v1, v2, env) = canary().await;
    let w = "/api/v1/routes/svc/weights";
    let r = call(
        &env,
        "PUT",
        w,
        &[JSON, AUTH],
        r#"{"weights": {"v1": 0, "v2": 100}, "reason": "all in"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["route"]["weights"]["v2"], 100);
    assert_eq!(
        (j["event"]["kind"].as_str(), j["event"]["actor"].as_str()),
        (Some("weights_changed"), Some("api"))
    );
    assert_eq!(j["event"]["reason"], "all in");
    let before = v2.requests();
    for _ in 0..20 {
        let r = TestClient::http1().get(&env.url("/"), &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v2"));
    }
    assert_eq!(v2.requests() - before, 20);

    let big = format!(
        r#"{{"weights": {{"v1": 1}}, "reason": "{}"}}"#,
        "x".repeat(100_000)
    );
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16);
    let cases: Vec<Case<'_>> = vec![
        (
            "/api/v1/routes/nope/weights",
            vec![JSON, AUTH],
            r#"{"weights": {"v1": 1}}"#.into(),
            404,
        ),
        (w, vec![JSON, AUTH], "{\"weights\": ".into(), 400),
        (w, vec![JSON, AUTH], r#"{"weights": [1, 2]}"#.into(), 400),
        (w, vec![AUTH], r#"{"weights": {"v1": 1}}"#.into(), 415),
        (w, vec![JSON, AUTH], r#"{"weights": {"v3": 1}}"#.into(), 422),
        (
            w,
            vec![JSON, AUTH],
            r#"{"weights": {"v1": 0, "v2": 0}}"#.into(),
            422,
        ),
        (
            w,
            vec![JSON, AUTH],
            r#"{"weights": {"v1": -5}}"#.into(),
            422,
        ),
        (w, vec![JSON, AUTH], big, 413),
    ];
    for (path, headers, body, want) in cases {
        let r = call(&env, "PUT", path, &headers, &body).await;
        assert_eq!(r.status, want, "{path} {}", &body[..body.len().min(60)]);
        assert!(r.json()["error"].is_string(), "{}", r.text());
    }
    assert_eq!(
        weights(&env).await["v2"],
        100,
        "no refused call changed anything"
    );
    assert_eq!(kinds(&env, "weights_changed"), 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_resume_and_route_actions() {
    let (_v1, _v2, env) = canary().await;
    let r = call(
        &env,
        "POST",
        "/api/v1/routes/svc/rollback",
        &[JSON, AUTH],
        r#"{"mode": "immediate", "reason": "pager"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["route"]["weights"]["v2"], 0);
    assert_eq!(r.json()["route"]["state"], "rolled_back");
    let r = call(&env, "POST", "/api/v1/routes/svc/resume", &[AUTH], "").await;
    assert_eq!(r.status, 200, "no body is fine: {}", r.text());
    assert_eq!(weights(&env).await["v2"], 10);
    for action in ["rollback", "promote", "pause", "resume"] {
        let path = format!("/api/v1/routes/nope/{action}");
        let r = call(&env, "POST", &path, &[AUTH], "").await;
        assert_eq!(r.status, 404, "{action}");
        let r = call(
            &env,
            "POST",
            &format!("/api/v1/routes/svc/{action}"),
            &[JSON, AUTH],
            "{oops",
        )
        .await;
        assert_eq!(r.status, 400, "{action}");
        assert!(r.json()["error"].is_string());
    }
    let r = call(
        &env,
        "POST",
        "/api/v1/routes/svc/rollback",
        &[JSON, AUTH],
        r#"{"mode": "sideways"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call(&env, "DELETE", "/api/v1/routes/svc/weights", &[AUTH], "").await;
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_promote_and_the_events_since_a_seq() {
    let (_v1, v2, env) = canary().await;
    let post = |action: &'static str| {
        let env = &env;
        async move {
            let path = format!("/api/v1/routes/svc/{action}");
            call(
                env,
                "POST",
                &path,
                &[JSON, AUTH],
                r#"{"reason": "by hand"}"#,
            )
            .await
        }
    };
    let r = post("pause").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["route"]["state"], "paused");
    assert_eq!(r.json()["event"]["kind"], "paused");
    let first = r.json()["event"]["seq"].as_u64().unwrap();
    let r = post("pause").await;
    assert_eq!(r.status, 409, "already paused: {}", r.text());
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("already paused"));

    let r = post("resume").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["route"]["state"], "stable");

    // No rollout steps: a promote goes to 100% at once.
    let r = post("promote").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["route"]["state"], "promoted");
    assert_eq!(j["event"]["kind"], "promoted");
    assert_eq!(j["event"]["reason"], "by hand; canary to 100%");
    assert_eq!(
        (
            j["route"]["weights"]["v1"].as_f64(),
            j["route"]["weights"]["v2"].as_f64()
        ),
        (Some(0.0), Some(100.0))
    );
    let before = v2.requests();
    for _ in 0..10 {
        let r = TestClient::http1().get(&env.url("/"), &[]).await;
        assert_eq!(r.header("x-serin-version"), Some("v2"));
    }
    assert_eq!(v2.requests() - before, 10);
    for action in ["promote", "pause"] {
        let r = post(action).await;
        assert_eq!(r.status, 409, "{action} on a promoted route: {}", r.text());
    }

    // The journal after the first pause: exactly what followed, in order.
    let r = call(
        &env,
        "GET",
        &format!("/api/v1/events?since={first}"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let events = r.json()["events"].as_array().unwrap().clone();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["resumed", "promoted"]);
    assert!(events.iter().all(|e| e["seq"].as_u64().unwrap() > first));
    assert!(events
        .iter()
        .all(|e| e["actor"] == "api" && e["route"] == "svc"));
    let r = call(&env, "GET", "/api/v1/events?route=other", &[], "").await;
    assert_eq!(r.json()["events"].as_array().map(Vec::len), Some(0));
    let r = call(&env, "GET", "/api/v1/events?since=-1", &[], "").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_on_and_off_survives_a_restart() {
    let (_v1, _v2, env) = canary().await;
    let m = "/api/v1/maintenance";
    let r = call(
        &env,
        "PUT",
        m,
        &[JSON, AUTH],
        r#"{"enabled": true, "message": "Back at 06:00 <UTC>"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["event"]["kind"], "maintenance_on");
    let client = TestClient::http1();
    let html = client.get(&env.url("/x"), &[("accept", "text/html")]).await;
    assert_eq!(html.status, 503);
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        html.text().contains("Back at 06:00 &lt;UTC&gt;"),
        "{}",
        html.text()
    );
    let json = client
        .get(&env.url("/x"), &[("accept", "application/json")])
        .await;
    assert_eq!(json.status, 503);
    assert_eq!(json.json()["error"], "Back at 06:00 <UTC>");
    assert_eq!(
        call(&env, "GET", "/api/v1/status", &[], "").await.json()["maintenance"],
        true
    );

    let env = env.restart().await;
    let r = TestClient::http1().get(&env.url("/x"), &[]).await;
    assert_eq!(
        r.status, 503,
        "maintenance is live state: it survives a restart"
    );

    let r = call(&env, "PUT", m, &[JSON, AUTH], r#"{"enabled": false}"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["event"]["kind"], "maintenance_off");
    assert_eq!(
        TestClient::http1().get(&env.url("/x"), &[]).await.status,
        200
    );
    let r = call(&env, "PUT", m, &[JSON, AUTH], r#"{"enabled": "yes"}"#).await;
    assert_eq!(r.status, 400);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let (_v1, _v2, env) = canary().await;
    let doc = call(&env, "GET", "/api/v1/openapi.json", &[], "")
        .await
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for e in serin_control::api_endpoints() {
        let method = e.method.as_str().to_lowercase();
        assert!(
            doc["paths"][e.path][&method].is_object(),
            "{} {} not documented",
            e.method,
            e.path
        );
        // And the route answers over the socket (not the 404 fallback).
        let path = e.path.replace("{route}", "svc").replace("{id}", "r1");
        let r = call(&env, e.method.as_str(), &path, &[AUTH], "").await;
        assert_ne!(r.status, 405, "{} {path}", e.method);
        if r.status == 404 {
            assert_ne!(r.json()["error"], "no such endpoint", "{} {path}", e.method);
        }
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        serin_control::api_endpoints().len(),
        "nothing documented that is not routed"
    );
    env.stop().await;
}
