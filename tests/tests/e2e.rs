//! End-to-end scenarios: one test binary, one module per scenario.

mod e2e {
    mod access_log;
    mod api;
    mod breaker;
    mod cli;
    mod client_faults;
    mod crash;
    mod crash_rounds;
    mod demo;
    mod drain;
    mod drill;
    mod edge;
    mod engine;
    mod failures;
    mod fallback;
    mod fleet;
    mod forced;
    mod forwarded;
    mod headers;
    mod health;
    mod metrics;
    mod notify;
    mod pool;
    mod quality;
    mod reload;
    mod rollout;
    mod routing;
    mod slow_clients;
    mod smuggling;
    mod split;
    mod sticky;
    mod streaming;
    mod telemetry;
    mod timeouts;
    mod tls;
    mod ui;
    mod upstream_tls;
    mod upstream_wire;
}
