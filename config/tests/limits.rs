//! `[limits]`: defaults when absent, every setting read, and each bad value
//! reported at its own `line:col`.

use std::time::Duration;

use serin_config::{parse, Cidr, Limits};

const ROUTE: &str = "[[routes]]\nname = \"api\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"http://127.0.0.1:9001\"\nweight = 1\n";

fn with_limits(limits: &str) -> String {
    format!("[limits]\n{limits}\n{ROUTE}")
}

fn errors(text: &str) -> Vec<String> {
    parse(text, "t.toml")
        .expect_err("should be rejected")
        .0
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
        .collect()
}

#[test]
fn absent_table_means_defaults() {
    let c = parse(ROUTE, "t.toml").unwrap();
    assert_eq!(c.limits, Limits::default());
    let l = &c.limits;
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.max_header_bytes, 64 * 1024);
    assert_eq!(l.idle_timeout, Duration::from_secs(60));
    assert_eq!(l.max_connections, 10_000);
    assert_eq!(l.max_concurrent_streams, 100);
    assert_eq!(l.body_read_timeout, Duration::from_secs(60));
    assert_eq!(l.upstream_connect_timeout, Duration::from_secs(2));
    assert_eq!(l.drain_timeout, Duration::from_secs(30));
    assert!(l.trusted_proxies.is_empty());
    assert_eq!(l.upgrades, ["websocket"]);
    assert!(l.allows_upgrade("WebSocket") && l.allows_upgrade("websocket/13"));
    assert!(!l.allows_upgrade("h2c") && !l.allows_upgrade("tls/1.2"));
    // An empty table is the defaults too.
    assert_eq!(
        parse(&with_limits(""), "t.toml").unwrap().limits,
        Limits::default()
    );
}

#[test]
fn every_setting_is_read() {
    let c = parse(
        &with_limits(
            "header_read_timeout = \"2s\"\nmax_header_bytes = \"16KiB\"\nidle_timeout = \"5m\"\n\
             max_connections = 50\nmax_concurrent_streams = 8\nbody_read_timeout = \"500ms\"\n\
             upstream_connect_timeout = \"300ms\"\ndrain_timeout = \"1m\"\n\
             trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1/32\", \"::1\"]",
        ),
        "t.toml",
    )
    .unwrap();
    let l = c.limits;
    assert_eq!(l.header_read_timeout, Duration::from_secs(2));
    assert_eq!(l.max_header_bytes, 16 * 1024);
    assert_eq!(l.idle_timeout, Duration::from_secs(300));
    assert_eq!(l.max_connections, 50);
    assert_eq!(l.max_concurrent_streams, 8);
    assert_eq!(l.body_read_timeout, Duration::from_millis(500));
    assert_eq!(l.upstream_connect_timeout, Duration::from_millis(300));
    assert_eq!(l.drain_timeout, Duration::from_secs(60));
    let nets: Vec<String> = l.trusted_proxies.iter().map(Cidr::to_string).collect();
    assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    assert!(l.is_trusted("10.9.8.7".parse().unwrap()));
    assert!(!l.is_trusted("192.0.2.1".parse().unwrap()));
}

#[test]
fn bad_values_point_at_themselves() {
    let text = with_limits(
        "header_read_timeout = \"10\"\nmax_header_bytes = \"10MiB\"\nidle_timeout = \"0s\"\n\
         max_connections = 0\nmax_concurrent_streams = -1\nbody_read_timeout = \"soon\"\n\
         upstream_connect_timeout = \"0ms\"\ndrain_timeout = \"1x\"\n\
         trusted_proxies = [\"10.0.0.0/8\", \"10.0.0.1/8\", \"nope\"]",
    );
    let got = errors(&text);
    let want = [
        ("2:23", "header_read_timeout: `10` has no unit"),
        ("3:20", "max_header_bytes must be between 8KiB and 1MiB"),
        ("4:16", "idle_timeout must be above zero"),
        ("5:19", "max_connections must be at least 1, got 0"),
        ("6:26", "max_concurrent_streams must be at least 1, got -1"),
        ("7:21", "body_read_timeout:"),
        ("8:28", "upstream_connect_timeout must be above zero"),
        ("9:17", "drain_timeout:"),
        (
            "10:34",
            "trusted_proxies: `10.0.0.1/8` has host bits set past /8: write 10.0.0.0/8",
        ),
        ("10:48", "trusted_proxies: `nope` is not a network"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, (at, needle)) in got.iter().zip(want) {
        assert!(
            g.starts_with(&format!("{at}: ")) && g.contains(needle),
            "got {g}, want {at}: …{needle}…"
        );
    }
}

#[test]
fn unknown_limit_is_a_typo() {
    let got = errors(&with_limits("max_conections = 5"));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("2:1: ") && got[0].contains("unknown field `max_conections`"),
        "{got:?}"
    );
}

#[test]
fn upgrades_widen_but_never_to_h2c() {
    let c = parse(
        &with_limits("upgrades = [\"websocket\", \"Custom-Proto\"]"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.limits.upgrades, ["websocket", "custom-proto"]);
    assert!(c.limits.allows_upgrade("custom-proto/2"));
    let none = parse(&with_limits("upgrades = []"), "t.toml").unwrap();
    assert!(!none.limits.allows_upgrade("websocket"));

    let got = errors(&with_limits("upgrades = [\"websocket\", \"H2C\", \"a b\"]"));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("2:26: ") && got[0].contains("`h2c` cannot be allowed"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("2:33: ") && got[1].contains("not a protocol name"),
        "{got:?}"
    );
}
