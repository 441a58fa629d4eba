//! The router without a socket (`Router::oneshot`): the endpoint list
//! against the OpenAPI document, auth, and the JSON error rules.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use utoipa::OpenApi;

use super::{endpoints, router, ApiDoc, ApiState, Auth};
use crate::{Live, Shared};

const FILE: &str = r#"
[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:9001"
  weight = 90
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:9002"
  weight = 10
"#;

fn app() -> (Arc<Live>, axum::Router) {
    let config = serin_config::parse(FILE, "t.toml").unwrap();
    let live = Arc::new(Live::new(config, "r1", Shared::default()).unwrap());
    let state = ApiState::new(live.clone()).with_auth(Auth::token("s3cret"));
    (live, router(state))
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json)
}

const AUTH: (&str, &str) = ("authorization", "Bearer s3cret");
const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn openapi_documents_every_endpoint_and_nothing_else() {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = endpoints()
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect();
    assert_eq!(documented, routed);
}

#[tokio::test]
async fn every_endpoint_is_routed() {
    let (_, app) = app();
    for e in endpoints() {
        let path = e.path.replace("{route}", "svc").replace("{id}", "r1");
        let (status, body) = call(&app, e.method.as_str(), &path, &[AUTH], "").await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {path}",
            e.method
        );
        assert_ne!(body["error"], "no such endpoint", "{} {path}", e.method);
    }
}

#[tokio::test]
async fn mutations_need_the_token_and_change_nothing_without_it() {
    let (live, app) = app();
    let body = r#"{"weights": {"v2": 50}}"#;
    for headers in [
        vec![JSON],
        vec![JSON, ("authorization", "Bearer wrong")],
        vec![JSON, ("authorization", "s3cret")],
    ] {
        let (status, json) = call(&app, "PUT", "/api/v1/routes/svc/weights", &headers, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(json["error"].is_string());
    }
    assert!(live.state().weights.is_empty());
    assert!(live.shared().events.since(0, None).is_empty());
    // Reads stay open.
    let (status, _) = call(&app, "GET", "/api/v1/status", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, json) = call(
        &app,
        "PUT",
        "/api/v1/routes/svc/weights",
        &[JSON, AUTH],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["route"]["weights"]["v2"], 50);
    assert_eq!(json["event"]["kind"], "weights_changed");
    assert_eq!(json["event"]["actor"], "api");
}

#[tokio::test]
async fn protected_reads() {
    let config = serin_config::parse(FILE, "t.toml").unwrap();
    let live = Arc::new(Live::new(config, "r1", Shared::default()).unwrap());
    let auth = Auth::token("s3cret").protect_reads(true);
    let app = router(ApiState::new(live).with_auth(auth));
    assert_eq!(
        call(&app, "GET", "/api/v1/status", &[], "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "GET", "/api/v1/status", &[AUTH], "").await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/healthz", &[], "").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn every_failure_is_json_with_the_right_status() {
    let (live, app) = app();
    let w = "/api/v1/routes/svc/weights";
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a str,
        StatusCode,
    );
    let cases: &[Case<'_>] = &[
        (
            "PUT",
            "/api/v1/routes/nope/weights",
            &[JSON, AUTH],
            r#"{"weights":{"v1":1}}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "PUT",
            w,
            &[JSON, AUTH],
            "{not json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "PUT",
            w,
            &[JSON, AUTH],
            r#"{"weights": 5}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("PUT", w, &[JSON, AUTH], "", StatusCode::BAD_REQUEST),
        (
            "PUT",
            w,
            &[AUTH],
            r#"{"weights":{"v1":1}}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "PUT",
            w,
            &[JSON, AUTH],
            r#"{"weights":{"v9":1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            w,
            &[JSON, AUTH],
            r#"{"weights":{"v1":0,"v2":0}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            w,
            &[JSON, AUTH],
            r#"{"weights":{"v1":-1}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            w,
            &[JSON, AUTH],
            r#"{"weights":{}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("DELETE", w, &[AUTH], "", StatusCode::METHOD_NOT_ALLOWED),
        // HTTP's order: a wrong method is 405 whether or not a token came.
        ("DELETE", w, &[], "", StatusCode::METHOD_NOT_ALLOWED),
        (
            "POST",
            "/api/v1/status",
            &[],
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "PUT",
            w,
            &[JSON],
            r#"{"weights":{"v1":1}}"#,
            StatusCode::UNAUTHORIZED,
        ),
        ("GET", "/api/v1/nope", &[], "", StatusCode::NOT_FOUND),
        (
            "GET",
            "/api/v1/events?since=x",
            &[],
            "",
            StatusCode::BAD_REQUEST,
        ),
        ("POST", "/api/v1/reload", &[AUTH], "", StatusCode::CONFLICT),
    ];
    for (method, path, headers, body, want) in cases {
        let (status, json) = call(&app, method, path, headers, body).await;
        assert_eq!(status, *want, "{method} {path} {body}: {json}");
        assert!(json["error"].is_string(), "{method} {path}: {json}");
    }
    let big = format!(
        r#"{{"weights":{{"v1":1}},"reason":"{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, json) = call(&app, "PUT", w, &[JSON, AUTH], &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json["error"].is_string());
    assert!(
        live.state().weights.is_empty(),
        "no failed call changed anything"
    );
}

#[tokio::test]
async fn maintenance_on_and_off() {
    let (live, app) = app();
    let m = "/api/v1/maintenance";
    let on = r#"{"enabled": true, "message": "back at 6"}"#;
    let (status, json) = call(&app, "PUT", m, &[JSON, AUTH], on).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["event"]["kind"], "maintenance_on");
    assert_eq!(
        live.snapshot().maintenance.as_ref().unwrap().message,
        "back at 6"
    );
    let (_, status) = call(&app, "GET", "/api/v1/status", &[], "").await;
    assert_eq!(status["maintenance"], true);
    let (status, json) = call(&app, "PUT", m, &[JSON, AUTH], r#"{"enabled": false}"#).await;
    assert_eq!(
        (status, &json["event"]["kind"]),
        (StatusCode::OK, &Value::from("maintenance_off"))
    );
    assert!(live.snapshot().maintenance.is_none());
}

#[test]
fn no_token_beyond_loopback_refuses_to_start() {
    let admin = |addr: &str| serin_config::Admin {
        addr: addr.parse().unwrap(),
        token_env: "SERIN_ADMIN_TOKEN".into(),
        protect_reads: false,
    };
    let err = Auth::resolve(&admin("0.0.0.0:9901"), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("set the environment variable SERIN_ADMIN_TOKEN"),
        "{err}"
    );
    assert!(
        Auth::resolve(&admin("0.0.0.0:9901"), Some(String::new())).is_err(),
        "empty is unset"
    );
    assert!(Auth::resolve(&admin("0.0.0.0:9901"), Some("t".into()))
        .unwrap()
        .has_token());
    assert!(!Auth::resolve(&admin("127.0.0.1:9901"), None)
        .unwrap()
        .has_token());
    assert!(!Auth::resolve(&admin("[::1]:9901"), None)
        .unwrap()
        .has_token());
}

/// `cargo test -p serin-control print_openapi -- --ignored --nocapture`
#[test]
#[ignore]
fn print_openapi() {
    println!(
        "{}",
        serde_json::to_string_pretty(&ApiDoc::openapi()).unwrap()
    );
}

#[test]
fn api_numbers_are_rounded_without_lying() {
    use super::{fraction, significant};
    assert_eq!(fraction(0.800_000_000_046_566_1), 0.8);
    assert_eq!(fraction(0.123_456), 0.1235);
    // Never 0 for a value that is not, never 1 for one below.
    assert_eq!(fraction(0.000_04), 0.000_04);
    assert_eq!(fraction(0.999_96), 0.999_96);
    assert_eq!(fraction(0.0), 0.0);
    assert_eq!(fraction(1.0), 1.0);
    assert_eq!(significant(1234.567, 4), 1235.0);
    assert_eq!(significant(0.016_666, 4), 0.016_67);
}

/// Every `$ref` in the OpenAPI document names a schema it defines (a
/// schemathesis run found `#/components/schemas/Format` dangling).
#[test]
fn every_openapi_reference_resolves() {
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        ("$ref", Some(r)) => out.push(r.to_owned()),
                        _ => refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
}
