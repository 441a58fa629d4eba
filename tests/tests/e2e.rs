//! End-to-end scenarios: one test binary, one module per scenario.

mod e2e {
    mod api;
    mod breaker;
    mod check;
    mod cli;
    mod crash;
    mod drill;
    mod engine;
    mod failures;
    mod fallback;
    mod headers;
    mod health;
    mod notify;
    mod reload;
    mod routing;
    mod split;
    mod sticky;
    mod streaming;
    mod telemetry;
}
