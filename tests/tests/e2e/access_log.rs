//! `[access_log]` and W3C trace context: one line per client request with
//! the fields operators grep for, and the trace a version sees.

use serde_json::Value;
use serin_loadtest::FakeVersion;
use serin_tests::client::TestClient;
use serin_tests::{assert_eventually, one_route, TestEnv};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_json_line_and_its_trace_reaches_the_version() {
    let v1 = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let file = format!(
        "[access_log]\npath = \"{}\"\nformat = \"json\"\n{}",
        log.display(),
        one_route(&[("v1", &v1.url(), 1.0)], "hosts = [\"127.0.0.1\"]")
    );
    let env = TestEnv::start(&file).await;
    let client = TestClient::http1();

    // A client that sends a trace: passed on unchanged, logged.
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = client
        .get(
            &env.url("/echo?q=1"),
            &[("traceparent", parent), ("user-agent", "probe/1")],
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = r.json();
    assert_eq!(seen["headers"]["traceparent"], parent, "{seen}");

    // A client without one: serin starts a trace, and a request id that
    // is the trace id.
    let r = client.get(&env.url("/echo"), &[]).await;
    let seen = r.json();
    let started = seen["headers"]["traceparent"].as_str().unwrap().to_owned();
    let trace = started.split('-').nth(1).unwrap().to_owned();
    assert_eq!(started.len(), 55, "{started}");
    assert_eq!(seen["headers"]["x-request-id"], trace.as_str(), "{seen}");

    // No route for this host: still one line, without a version.
    let r = client
        .get(&env.url("/"), &[("host", "nowhere.example")])
        .await;
    let status = r.status.as_u16();

    assert_eventually!(lines(&log).len() == 3, 5, "lines: {:?}", lines(&log));
    let all = lines(&log);
    let first = &all[0];
    for field in [
        "time",
        "request_id",
        "trace_id",
        "route",
        "version",
        "fallback",
        "status",
        "bytes",
        "duration_ms",
        "upstream_ms",
        "peer",
    ] {
        assert!(first.get(field).is_some(), "no {field}: {first}");
    }
    assert_eq!(
        first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{first}"
    );
    assert_eq!(first["route"], "svc");
    assert_eq!(first["version"], "v1");
    assert_eq!(first["fallback"], false);
    assert_eq!(first["status"], 200);
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/echo?q=1");
    assert_eq!(first["user_agent"], "probe/1");
    assert_eq!(first["peer"], "127.0.0.1");
    assert!(first["bytes"].as_u64().unwrap() > 0, "{first}");
    assert!(first["duration_ms"].as_f64().unwrap() >= first["upstream_ms"].as_f64().unwrap());
    assert_eq!(all[1]["trace_id"], trace.as_str(), "{}", all[1]);
    assert_eq!(all[1]["request_id"], trace.as_str(), "{}", all[1]);
    assert_eq!(all[2]["status"], status, "{}", all[2]);
    assert_eq!(all[2]["version"], Value::Null, "{}", all[2]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_combined_format_is_what_log_tools_read() {
    let v1 = FakeVersion::start("v1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let file = format!(
        "[access_log]\npath = \"{}\"\nformat = \"combined\"\n{}",
        log.display(),
        one_route(&[("v1", &v1.url(), 1.0)], "")
    );
    let env = TestEnv::start(&file).await;
    let r = TestClient::http1()
        .get(
            &env.url("/a?b=c"),
            &[("referer", "http://r/"), ("user-agent", "ua \"x\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eventually!(read().lines().count() == 1, 5, "log: {:?}", read());
    let line = read();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("] \"GET /a?b=c HTTP/1.1\" 200 3 \"http://r/\" \"ua \\\"x\\\"\" route=svc version=v1 request_id="), "{line}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_before_its_answer_is_logged_499() {
    let v1 = FakeVersion::start("v1").unwrap();
    v1.faults().set_hang(true);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let file = format!(
        "[access_log]\npath = \"{}\"\n{}",
        log.display(),
        one_route(&[("v1", &v1.url(), 1.0)], "")
    );
    let env = TestEnv::start(&file).await;
    let gone = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        TestClient::http1().get(&env.url("/slow"), &[]),
    )
    .await;
    assert!(gone.is_err(), "the hung version answered");
    assert_eventually!(lines(&log).len() == 1, 5, "lines: {:?}", lines(&log));
    let line = &lines(&log)[0];
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(line["path"], "/slow", "{line}");
    assert_eq!(line["bytes"], 0, "{line}");
    v1.faults().set_hang(false);
    env.stop().await;
}
