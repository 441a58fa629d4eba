//! One `Outcome` per upstream attempt, shared by the fallback chain, the
//! breaker and telemetry, so the three never disagree on what failed.

use hyper::body::Incoming;
use serin_control::telemetry::Outcome;

use crate::body::BodyError;
use crate::upstream::UpstreamError as ClientError;

/// What one attempt at a version produced.
#[derive(Debug)]
pub(crate) enum Attempted {
    /// Response headers arrived (any status; `outcome` says if it was a 5xx).
    Answered(http::Response<Incoming>, Outcome),
    /// No response: refused, reset, closed early (`Connect`) or too slow (`Timeout`).
    Failed(Outcome, Option<ClientError>),
    /// The client's own body failed while it was sent (stalled, reset,
    /// malformed): the client's fault, so it counts against no version and
    /// goes down no chain.
    ClientBody(BodyFault),
}

/// How the client's body failed on its way upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    /// No progress for `body_read_timeout`.
    Stalled,
    /// Reset, closed early or malformed.
    Broken,
}

/// No response headers within the version's `timeout` once the request
/// was sent (`fallback::timed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

/// Classifies the client's result or its timeout. `upgrade`: the request
/// asked to switch protocols, so a `101` is an answer; to any other request
/// a `101` is a broken version (it would take the client's connection past
/// serin), a `connect` failure.
pub(crate) fn classify(
    result: Result<Result<http::Response<Incoming>, ClientError>, TimedOut>,
    upgrade: bool,
) -> Attempted {
    match result {
        Ok(Ok(resp)) if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS && !upgrade => {
            Attempted::Failed(Outcome::Connect, Some(ClientError::UnaskedSwitch))
        }
        Ok(Ok(resp)) if resp.status().is_server_error() => {
            Attempted::Answered(resp, Outcome::Status5xx)
        }
        Ok(Ok(resp)) => Attempted::Answered(resp, Outcome::Success),
        // Refused, reset, or closed before a response: all "connect" in
        // SPEC.md's terms (nothing usable came back).
        Ok(Err(e)) => match body_fault(&e) {
            Some(fault) => Attempted::ClientBody(fault),
            None => Attempted::Failed(Outcome::Connect, Some(e)),
        },
        Err(_) => Attempted::Failed(Outcome::Timeout, None),
    }
}

/// Whether `e` came from the request body serin was sending: the client's
/// body, wrapped by hyper (user body error) and then by the pool client.
fn body_fault(e: &ClientError) -> Option<BodyFault> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(b) = err.downcast_ref::<BodyError>() {
            return Some(b.fault());
        }
        source = err.source();
    }
    None
}

// === impl Attempted ===

impl Attempted {
    /// The attempt's outcome, or how the client's body failed (then no
    /// version is to blame).
    pub(crate) fn outcome(&self) -> Result<Outcome, BodyFault> {
        match self {
            Self::Answered(_, o) | Self::Failed(o, _) => Ok(*o),
            Self::ClientBody(f) => Err(*f),
        }
    }
}
