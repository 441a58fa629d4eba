//! One `Outcome` per upstream attempt, shared by the fallback chain, the
//! breaker and telemetry, so the three never disagree on what failed.

use serin_control::Outcome;

use crate::upstream::{RespBody, UpstreamError as ClientError};

/// What one attempt at a version produced.
#[derive(Debug)]
// `Answered` is the common case: boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Attempted {
    /// Response headers arrived (any status; `outcome` says if it was a 5xx).
    Answered(http::Response<RespBody>, Outcome),
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

/// Classifies the client's result or its timeout. `upgrade`: the
/// protocols the request asked to switch to; a `101` to one of them is an
/// answer. Any other `101` is a broken version (it would take the client's
/// connection past serin, to a protocol nobody asked for), a `connect`
/// failure.
pub(crate) fn classify(
    result: Result<Result<http::Response<RespBody>, ClientError>, TimedOut>,
    upgrade: Option<&http::HeaderValue>,
) -> Attempted {
    match result {
        Ok(Ok(resp))
            if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS
                && !switched_as_asked(upgrade, resp.headers().get(http::header::UPGRADE)) =>
        {
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

/// Whether a `101`'s `Upgrade` names a protocol the request asked for
/// (names compared without case; a version, `/13`, must match when asked).
fn switched_as_asked(asked: Option<&http::HeaderValue>, got: Option<&http::HeaderValue>) -> bool {
    let tokens = |v: &http::HeaderValue| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
    };
    let (Some(asked), Some(got)) = (asked, got) else {
        return false;
    };
    let asked = tokens(asked);
    let got = tokens(got);
    !got.is_empty()
        && got.iter().all(|g| {
            asked
                .iter()
                .any(|a| a == g || a.split('/').next() == Some(g.as_str()))
        })
}

/// Whether `e` came from the request body serin was sending: the client's.
fn body_fault(e: &ClientError) -> Option<BodyFault> {
    match e {
        ClientError::Body(b) => Some(b.fault()),
        ClientError::ClientBody(f) => Some(*f),
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::switched_as_asked;
    use http::HeaderValue;

    #[test]
    fn a_101_must_switch_to_what_was_asked() {
        let v = HeaderValue::from_static;
        assert!(switched_as_asked(
            Some(&v("websocket")),
            Some(&v("WebSocket"))
        ));
        assert!(switched_as_asked(
            Some(&v("websocket/13")),
            Some(&v("websocket"))
        ));
        assert!(!switched_as_asked(Some(&v("websocket")), Some(&v("h2c"))));
        assert!(!switched_as_asked(Some(&v("websocket")), None));
        assert!(!switched_as_asked(None, Some(&v("websocket"))));
    }
}
