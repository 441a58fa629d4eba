//! End-to-end scenarios: one test binary, one module per scenario.

mod e2e {
    mod check;
    mod failures;
    mod headers;
    mod routing;
    mod split;
    mod sticky;
    mod streaming;
}
