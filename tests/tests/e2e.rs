//! End-to-end scenarios: one test binary, one module per scenario.

mod e2e {
    mod breaker;
    mod check;
    mod failures;
    mod fallback;
    mod headers;
    mod routing;
    mod split;
    mod sticky;
    mod streaming;
    mod telemetry;
}
