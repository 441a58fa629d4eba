//! Defaults and the small helpers. Rejected files, with their exact
//! positions, are tested through the public API in `config/tests/errors.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::*;

const MINIMAL: &str = r#"
[[routes]]
name = "api"

  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:9001"
  weight = 1
"#;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn minimal_file_gets_every_default() {
    let config = crate::parse(MINIMAL, "min.toml").unwrap();
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(config.listen.http, Some(addr("127.0.0.1:8080")));
    assert_eq!(config.listen.https, None);
    assert_eq!(config.admin.addr, addr("127.0.0.1:9901"));
    assert_eq!(config.admin.token_env, "SERIN_ADMIN_TOKEN");
    assert_eq!(config.state.dir, std::path::PathBuf::from("var/serin"));
    assert_eq!(config.state.keep_revisions, 50);
    assert!(!config.admin.protect_reads);
    assert!(config.notify.is_empty());
    let route = &config.routes[0];
    assert_eq!(route.hosts, vec![HostMatch::Any]);
    assert_eq!(route.path_prefix, "/");
    assert_eq!(route.sticky, None);
    assert!(route.response_headers);
    assert_eq!(route.versions[0].timeout, secs(30));
    assert_eq!(route.versions[0].weight, 1.0);
    assert!(route.fallback.is_none() && route.breaker.is_none() && route.health_check.is_none());
    assert!(route.rollback.is_none() && route.rollout.is_none());
}

#[test]
fn section_defaults() {
    let text = format!(
        "{MINIMAL}\n  [routes.fallback]\n  chain = [\"v1\"]\n  [routes.breaker]\n  [routes.health_check]\n  [routes.rollback]\n  stable = \"v1\"\n"
    );
    let route = crate::parse(&text, "t.toml").unwrap().routes.remove(0);
    let fallback = route.fallback.unwrap();
    assert_eq!(
        fallback.on,
        FallbackOn {
            connect: true,
            timeout: true,
            status_5xx: true
        }
    );
    assert_eq!(fallback.final_status, http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fallback.final_body, "Service temporarily unavailable");
    assert_eq!(fallback.max_replay_body, 64 * 1024);
    assert!(fallback.retry_non_idempotent);
    assert_eq!(fallback.deadline, None);
    let breaker = route.breaker.unwrap();
    assert_eq!(
        (
            breaker.error_rate,
            breaker.min_requests,
            breaker.half_open_probes
        ),
        (0.5, 20, 3)
    );
    assert_eq!((breaker.window, breaker.open_for), (secs(10), secs(30)));
    let health = route.health_check.unwrap();
    assert_eq!(health.path, "/health");
    assert_eq!((health.interval, health.timeout), (secs(5), secs(1)));
    assert_eq!((health.unhealthy_after, health.healthy_after), (3, 2));
    let rollback = route.rollback.unwrap();
    assert_eq!(
        (rollback.window, rollback.confirm, rollback.min_requests),
        (secs(300), secs(120), 50)
    );
    assert_eq!(
        (rollback.on_critical, rollback.on_warning),
        (Action::Immediate, Action::Alert)
    );
    assert!(!rollback.dry_run && rollback.shadow.is_empty() && rollback.gradual.is_none());
}

#[test]
fn optional_fields_are_read() {
    let text = format!(
        r#"{MINIMAL}
  bogus = 0
"#
    );
    // Unknown fields are errors even next to valid ones.
    assert!(crate::parse(&text, "t.toml").is_err());

    let text = r#"
[listen]
https = "0.0.0.0:8443"
tls_cert = "c.pem"
tls_key = "k.pem"

[[routes]]
name = "api"
hosts = ["API.example.com", "*.Example.org"]
path_prefix = "/api"
sticky = "cookie:session"
response_headers = false

  [[routes.versions]]
  name = "v1"
  url = "https://[::1]:9001/"
  weight = 0.5

  [routes.fallback]
  chain = ["v1"]
  on = ["5xx"]
  retry_non_idempotent = false
  deadline = "2s"

  [routes.breaker]
  half_open_probes = 1
  min_requests = 1

  [routes.rollback]
  stable = "v1"
  confirm = "0s"
  min_requests = 0
  dry_run = true
  shadow = ["p99 > baseline + 200ms"]
  on_critical = "pause"
"#;
    let config = crate::parse(text, "t.toml").unwrap();
    assert_eq!(config.listen.http, None);
    assert_eq!(config.listen.tls_key, Some("k.pem".into()));
    let route = &config.routes[0];
    assert_eq!(
        route.hosts,
        vec![
            HostMatch::Exact("api.example.com".into()),
            HostMatch::Suffix(".example.org".into())
        ]
    );
    assert_eq!(route.sticky, Some(Sticky::Cookie("session".into())));
    assert!(!route.response_headers);
    assert_eq!(route.versions[0].weight, 0.5);
    let fallback = route.fallback.as_ref().unwrap();
    assert_eq!(
        fallback.on,
        FallbackOn {
            connect: false,
            timeout: false,
            status_5xx: true
        }
    );
    assert!(!fallback.retry_non_idempotent);
    assert_eq!(fallback.deadline, Some(secs(2)));
    let rollback = route.rollback.as_ref().unwrap();
    assert_eq!(
        (rollback.confirm, rollback.min_requests),
        (Duration::ZERO, 0)
    );
    assert!(rollback.dry_run);
    assert_eq!(rollback.shadow[0].text, "p99 > baseline + 200ms");
    assert_eq!(rollback.on_critical, Action::Pause);
}

#[test]
fn sticky_header_names_are_normalised() {
    let text = MINIMAL.replace(
        "name = \"api\"",
        "name = \"api\"\nsticky = \"header:X-User-Id\"",
    );
    let route = crate::parse(&text, "t.toml").unwrap().routes.remove(0);
    assert_eq!(
        route.sticky,
        Some(Sticky::Header(http::HeaderName::from_static("x-user-id")))
    );
}
