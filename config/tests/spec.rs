//! The example routing file of SPEC.md, and `load` against real files.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use serin_config::*;

const SPEC: &str = include_str!("fixtures/spec.toml");

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn rule_texts(rules: &[Rule]) -> Vec<String> {
    rules.iter().map(ToString::to_string).collect()
}

#[test]
fn spec_example_parses() {
    let config = parse(SPEC, "spec.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.listen.http,
        Some("127.0.0.1:8080".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(config.listen.https, None);
    assert_eq!(
        config.admin.addr,
        "127.0.0.1:9901".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.admin.token_env, "SERIN_ADMIN_TOKEN");
    assert_eq!(config.state.dir, std::path::PathBuf::from("var/serin"));
    assert_eq!(config.notify.len(), 1);
    assert_eq!(
        config.notify[0].webhook,
        "http://127.0.0.1:9000/hooks/serin"
    );
    assert_eq!(config.notify[0].events.len(), 4);

    let [route] = config.routes.as_slice() else {
        panic!("one route expected")
    };
    assert_eq!(route.name, "prompt-service");
    assert_eq!(route.hosts, vec![HostMatch::Any]);
    assert_eq!(route.path_prefix, "/");
    assert_eq!(
        route.sticky,
        Some(Sticky::Header(http::HeaderName::from_static("x-user-id")))
    );
    let versions: Vec<_> = route
        .versions
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.url.authority().unwrap().as_str(),
                v.weight,
                v.timeout,
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("v1", "127.0.0.1:9001", 90.0, secs(10)),
            ("v1.5", "127.0.0.1:9002", 0.0, secs(5)),
            ("v2", "127.0.0.1:9003", 10.0, secs(3)),
        ]
    );

    let fallback = route.fallback.as_ref().unwrap();
    assert_eq!(fallback.chain, ["v2", "v1.5", "v1"]);
    assert_eq!(
        fallback.on,
        FallbackOn {
            connect: true,
            timeout: true,
            status_5xx: true
        }
    );
    assert_eq!(fallback.final_status, 503);
    assert_eq!(fallback.final_body, "Service temporarily unavailable");
    assert_eq!(fallback.max_replay_body, 65_536);

    let breaker = route.breaker.as_ref().unwrap();
    assert_eq!((breaker.error_rate, breaker.min_requests), (0.5, 20));
    assert_eq!((breaker.window, breaker.open_for), (secs(10), secs(30)));

    let health = route.health_check.as_ref().unwrap();
    assert_eq!(
        (health.path.as_str(), health.interval, health.timeout),
        ("/health", secs(5), secs(1))
    );
    assert_eq!((health.unhealthy_after, health.healthy_after), (3, 2));

    let rollback = route.rollback.as_ref().unwrap();
    assert_eq!(rollback.stable, "v1");
    assert_eq!(
        (rollback.window, rollback.confirm, rollback.min_requests),
        (secs(300), secs(120), 50)
    );
    assert_eq!(
        rule_texts(&rollback.critical),
        [
            "error_rate > 10%",
            "availability < 95%",
            "p99 > 10s",
            "breaker_open",
            "unhealthy"
        ]
    );
    assert_eq!(rollback.critical[3].kind, RuleKind::BreakerOpen);
    assert_eq!(
        rollback.warning[2].kind,
        RuleKind::Compare {
            metric: Metric::P99,
            op: Op::Gt,
            value: Value::Baseline {
                times: 1.5,
                plus: 0.0
            },
        }
    );
    assert_eq!(rule_texts(&rollback.watch), ["error_rate > 2%", "p50 > 1s"]);
    assert_eq!(
        (rollback.on_critical, rollback.on_warning),
        (Action::Immediate, Action::Gradual)
    );
    let gradual = rollback.gradual.as_ref().unwrap();
    assert_eq!(gradual.steps, [0.25, 0.05, 0.0]);
    assert_eq!(gradual.every, secs(600));
    assert_eq!(gradual.abort_if.as_ref().unwrap().text, "error_rate > 5%");

    let rollout = route.rollout.as_ref().unwrap();
    assert_eq!(rollout.steps, [0.01, 0.1, 0.25, 0.5, 1.0]);
    assert_eq!(rollout.every, secs(600));
}

#[test]
fn parsing_twice_gives_equal_configs() {
    // Reloads that change nothing are skipped by comparing configs.
    assert_eq!(
        parse(SPEC, "a.toml").unwrap(),
        parse(SPEC, "b.toml").unwrap()
    );
}

#[test]
fn load_reads_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(SPEC.as_bytes()).unwrap();
    let config = load(file.path()).unwrap();
    assert_eq!(config, parse(SPEC, "spec.toml").unwrap());
}

#[test]
fn load_reports_errors_under_the_path() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[listen]\nhttp = \"nowhere\"\n").unwrap();
    let errors = load(file.path()).unwrap_err();
    let path = file.path().display().to_string();
    assert_eq!(errors.0.len(), 1);
    assert_eq!(errors.0[0].file, path);
    assert_eq!(
        errors.to_string(),
        format!("{path}:2:8: `nowhere` is not an address like 127.0.0.1:8080 or [::1]:8080")
    );
}

#[test]
fn load_of_a_missing_file_has_no_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let errors = load(&path).unwrap_err();
    let [error] = errors.0.as_slice() else {
        panic!("one error expected: {errors}")
    };
    assert_eq!((error.line, error.col), (0, 0));
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", path.display())),
        "{shown}"
    );
    assert!(!shown.contains(":0:"), "{shown}");
}
