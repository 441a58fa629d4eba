//! The result of one upstream attempt: what telemetry counts, the breaker
//! and the engine judge, and `/metrics` labels. A leaf.

/// The result of one upstream attempt, as the fallback chain, the breaker
/// and telemetry all see it. A 4xx is a `Success`: the version answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Response headers arrived with a status below 500.
    Success,
    /// Response headers arrived with a 5xx status.
    Status5xx,
    /// No connection (refused, reset, DNS, TLS) or the request failed on it.
    Connect,
    /// No response headers within the version's timeout.
    Timeout,
    /// The client's request body stalled past `[limits] body_read_timeout`
    /// (it got 408). A route outcome only: never a version's, never an error.
    ClientTimeout,
    /// The client left (closed, reset, or sent a broken body) before its
    /// answer was ready. A route outcome only: never a version's, never an
    /// error.
    ClientAbort,
}

// === impl Outcome ===

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Success,
        Outcome::Status5xx,
        Outcome::Connect,
        Outcome::Timeout,
        Outcome::ClientTimeout,
        Outcome::ClientAbort,
    ];

    /// The outcomes an upstream attempt can have: a version's (the client
    /// ones are the route's alone).
    pub const UPSTREAM: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Status5xx,
        Outcome::Connect,
        Outcome::Timeout,
    ];

    /// True for connect failures, timeouts and 5xx: what a version is
    /// judged on. The client's own failures are not errors.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Outcome::Status5xx | Outcome::Connect | Outcome::Timeout
        )
    }

    /// True for the client's own failures (`client_timeout`, `client_abort`).
    pub fn is_client(self) -> bool {
        matches!(self, Outcome::ClientTimeout | Outcome::ClientAbort)
    }

    /// The `outcome` label: `success`, `5xx`, `connect`, `timeout`,
    /// `client_timeout` or `client_abort`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Status5xx => "5xx",
            Outcome::Connect => "connect",
            Outcome::Timeout => "timeout",
            Outcome::ClientTimeout => "client_timeout",
            Outcome::ClientAbort => "client_abort",
        }
    }
}
