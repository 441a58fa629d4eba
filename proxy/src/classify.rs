//! One `Outcome` per upstream attempt, shared by the fallback chain, the
//! breaker and telemetry, so the three never disagree on what failed.

use hyper::body::Incoming;
use hyper_util::client::legacy::Error as ClientError;
use serin_control::telemetry::Outcome;

/// What one attempt at a version produced.
#[derive(Debug)]
pub(crate) enum Attempted {
    /// Response headers arrived (any status; `outcome` says if it was a 5xx).
    Answered(http::Response<Incoming>, Outcome),
    /// No response: refused, reset, closed early (`Connect`) or too slow (`Timeout`).
    Failed(Outcome, Option<ClientError>),
}

/// Classifies the client's result or its timeout.
pub(crate) fn classify(
    result: Result<Result<http::Response<Incoming>, ClientError>, tokio::time::error::Elapsed>,
) -> Attempted {
    match result {
        Ok(Ok(resp)) if resp.status().is_server_error() => {
            Attempted::Answered(resp, Outcome::Status5xx)
        }
        Ok(Ok(resp)) => Attempted::Answered(resp, Outcome::Success),
        // Refused, reset, or closed before a response: all "connect" in
        // SPEC.md's terms (nothing usable came back).
        Ok(Err(e)) => Attempted::Failed(Outcome::Connect, Some(e)),
        Err(_) => Attempted::Failed(Outcome::Timeout, None),
    }
}

// === impl Attempted ===

impl Attempted {
    /// The attempt's outcome.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Answered(_, o) | Self::Failed(o, _) => *o,
        }
    }
}
