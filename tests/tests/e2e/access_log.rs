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

/// A small OTLP/HTTP collector: every span posted to `/v1/traces`, decoded,
/// with its resource's `service.name`.
struct Collector {
    url: String,
    spans: std::sync::Arc<std::sync::Mutex<Vec<(String, Span)>>>,
}

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;

fn attr(kv: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<Any> {
    kv.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

impl Collector {
    async fn start() -> Self {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = spans.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let keep = keep.clone();
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let keep = keep.clone();
                        async move {
                            let path_ok = req.uri().path() == "/v1/traces";
                            let proto = req.headers()["content-type"] == "application/x-protobuf";
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let export: ExportTraceServiceRequest =
                                prost::Message::decode(body).unwrap();
                            assert!(path_ok && proto, "OTLP/HTTP protobuf to /v1/traces");
                            for rs in export.resource_spans {
                                let service = rs
                                    .resource
                                    .as_ref()
                                    .and_then(|r| attr(&r.attributes, "service.name"));
                                let Some(Any::StringValue(service)) = service else {
                                    panic!("no service.name");
                                };
                                for ss in rs.scope_spans {
                                    for span in ss.spans {
                                        keep.lock().unwrap().push((service.clone(), span));
                                    }
                                }
                            }
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(http_body_util::Full::new(bytes::Bytes::new()))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Self { url, spans }
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().unwrap().clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_to_an_otlp_collector_and_are_the_versions_parents() {
    let v1 = FakeVersion::start("v1").unwrap();
    let collector = Collector::start().await;
    let file = format!(
        "[tracing]\notlp = \"{}\"\nservice_name = \"edge-test\"\nsample = \"100%\"\n{}",
        collector.url,
        one_route(&[("v1", &v1.url(), 1.0)], "")
    );
    let env = TestEnv::start(&file).await;
    let client = TestClient::http1();

    // A client trace not sampled: passed on as it came, no span.
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    let r = client
        .get(&env.url("/echo"), &[("traceparent", unsampled)])
        .await;
    assert_eq!(r.json()["headers"]["traceparent"], unsampled);

    // A sampled client trace: serin's span is the version's parent, in the
    // client's trace, with the client's tracestate.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let parent = format!("00-{client_trace}-{client_span}-01");
    let r = client
        .get(
            &env.url("/echo?sampled"),
            &[("traceparent", &parent), ("tracestate", "vendor=1")],
        )
        .await;
    let seen = r.json();
    let sent: Vec<String> = seen["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .split('-')
        .map(str::to_owned)
        .collect();
    assert_eq!(
        (sent[1].as_str(), sent[3].as_str()),
        (client_trace, "01"),
        "{seen}"
    );
    assert_ne!(sent[2], client_span, "serin's span is the parent now");
    assert_eq!(seen["headers"]["tracestate"], "vendor=1");
    let serin_span = sent[2].clone();

    // No trace: serin starts one, sampled, recorded.
    let r = client.get(&env.url("/echo?new"), &[]).await;
    let seen = r.json();
    let started: Vec<String> = seen["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .split('-')
        .map(str::to_owned)
        .collect();
    assert_eq!(started[3], "01", "{seen}");
    assert_eq!(seen["headers"]["x-request-id"], started[1].as_str());

    assert_eventually!(
        collector.spans().len() >= 2,
        15,
        "spans: {}",
        collector.spans().len()
    );
    let spans = collector.spans();
    assert_eq!(
        spans.len(),
        2,
        "one span per sampled request, none for the unsampled"
    );
    let (service, first) = &spans[0];
    assert_eq!(service, "edge-test");
    assert_eq!(first.name, "GET svc");
    assert_eq!(first.kind, 2, "SERVER");
    assert_eq!(hex(&first.trace_id), client_trace);
    assert_eq!(hex(&first.parent_span_id), client_span);
    assert_eq!(hex(&first.span_id), serin_span);
    assert!(first.end_time_unix_nano > first.start_time_unix_nano);
    assert_eq!(
        attr(&first.attributes, "serin.route"),
        Some(Any::StringValue("svc".into()))
    );
    assert_eq!(
        attr(&first.attributes, "serin.version"),
        Some(Any::StringValue("v1".into()))
    );
    assert_eq!(
        attr(&first.attributes, "http.response.status_code"),
        Some(Any::IntValue(200))
    );
    assert_eq!(
        attr(&first.attributes, "url.path"),
        Some(Any::StringValue("/echo".into()))
    );
    let (_, second) = &spans[1];
    assert_eq!(hex(&second.trace_id), started[1]);
    assert_eq!(hex(&second.span_id), started[2]);
    assert!(
        second.parent_span_id.is_empty(),
        "a trace serin started has no parent"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_no_request() {
    let v1 = FakeVersion::start("v1").unwrap();
    // A port nothing listens on.
    let closed = serin_tests::process::free_addr();
    let file = format!(
        "[tracing]\notlp = \"http://{closed}/v1/traces\"\n{}",
        one_route(&[("v1", &v1.url(), 1.0)], "")
    );
    let env = TestEnv::start(&file).await;
    let client = TestClient::http1();
    for _ in 0..50 {
        assert_eq!(client.get(&env.url("/"), &[]).await.status, 200);
    }
    // Stopping exports what is queued, and gives up on a dead collector.
    let stopping = std::time::Instant::now();
    env.stop().await;
    assert!(stopping.elapsed() < std::time::Duration::from_secs(10));
}
