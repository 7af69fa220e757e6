//! What one delivery attempt produced, and what to do next (pure).

use std::time::Duration;

use crate::error::GuardError;

/// Why an attempt failed before a usable answer. The kinds are deliberately coarse:
/// telling "refused" from "filtered" or naming the port would turn the webhook tester
/// into a port scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// The guard refused the URL or what it resolved to; no connection was made.
    Refused(GuardError),
    /// The connection (TCP or TLS) could not be established.
    Connect,
    /// The connect or total timeout expired.
    Timeout,
    /// The receiver answered 3xx; redirects are never followed.
    Redirect,
    /// Any other transport failure (protocol error, reset while sending).
    Request,
}

impl AttemptError {
    /// Stable short kind: `refused`, `connect`, `timeout`, `redirect`, `request`.
    pub fn kind(&self) -> &'static str {
        match self {
            AttemptError::Refused(_) => "refused",
            AttemptError::Connect => "connect",
            AttemptError::Timeout => "timeout",
            AttemptError::Redirect => "redirect",
            AttemptError::Request => "request",
        }
    }

    /// Text for the delivery log: the kind, plus the guard's reason for a refusal.
    pub fn detail(&self) -> String {
        match self {
            AttemptError::Refused(reason) => format!("refused: {reason}"),
            other => other.kind().to_owned(),
        }
    }
}

/// The record of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// From the start of the attempt to its end (body read included), in milliseconds.
    pub latency_ms: u64,
    /// Set when the attempt failed before a usable answer, or was a redirect.
    pub error: Option<AttemptError>,
    /// The receiver's `Retry-After`, bounded.
    pub retry_after: Option<Duration>,
    /// The start of the response body, escaped, at most [`crate::EXCERPT_MAX`] bytes.
    pub response_excerpt: String,
    /// Body bytes consumed, never more than the sender's read cap.
    pub body_bytes_read: u64,
    /// True when the body ended before the read cap (false: cut off, or failed).
    pub body_complete: bool,
}

impl AttemptOutcome {
    /// An attempt that ended before any answer.
    pub fn failed(error: AttemptError, latency_ms: u64) -> Self {
        AttemptOutcome {
            status: None,
            latency_ms,
            error: Some(error),
            retry_after: None,
            response_excerpt: String::new(),
            body_bytes_read: 0,
            body_complete: false,
        }
    }
}

/// What the delivery loop does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Any 2xx: done.
    Delivered,
    /// 410 Gone: the receiver asks to be removed; disable the endpoint.
    Gone,
    /// Anything else (refusal, transport failure, redirect, other status): a failed
    /// attempt, retried on the schedule; `after` is the receiver's bounded hint.
    Retry {
        /// The receiver's `Retry-After`, if it sent one.
        after: Option<Duration>,
    },
}

/// Classifies an attempt.
pub fn classify(outcome: &AttemptOutcome) -> Disposition {
    match (outcome.status, &outcome.error) {
        (Some(status), None) if (200..300).contains(&status) => Disposition::Delivered,
        (Some(410), None) => Disposition::Gone,
        _ => Disposition::Retry {
            after: outcome.retry_after,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, error: Option<AttemptError>) -> AttemptOutcome {
        AttemptOutcome {
            status: Some(status),
            error,
            retry_after: Some(Duration::from_secs(7)),
            ..AttemptOutcome::failed(AttemptError::Request, 1)
        }
    }

    #[test]
    fn classification() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify(&answered(s, None)), Disposition::Delivered, "{s}");
        }
        assert_eq!(classify(&answered(410, None)), Disposition::Gone);
        let retry = Disposition::Retry {
            after: Some(Duration::from_secs(7)),
        };
        for s in [100, 199, 300, 400, 404, 429, 500, 503] {
            assert_eq!(classify(&answered(s, None)), retry, "{s}");
        }
        assert_eq!(
            classify(&answered(302, Some(AttemptError::Redirect))),
            retry
        );
        assert_eq!(
            classify(&AttemptOutcome::failed(AttemptError::Timeout, 5)),
            Disposition::Retry { after: None }
        );
        assert_eq!(
            classify(&AttemptOutcome::failed(
                AttemptError::Refused(GuardError::NoAddresses),
                0
            )),
            Disposition::Retry { after: None }
        );
    }
}
