//! How a SIP call's end reads in the call record: its status and a short, stable,
//! snake_case cause.

use ami_core::delivery::CallStatus;
use ami_sip::EndCause;

/// Who the far end of a call's first leg is: the callee of an outbound call, the caller of
/// an inbound one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Callee,
    Caller,
}

/// The status and cause of a call whose first leg ended with `cause`, when nothing on our
/// side asked for the end. A hang-up we were asked for is reported by the call itself.
pub fn outcome(cause: &EndCause, side: Side) -> (CallStatus, Option<String>) {
    let failed = |c: &str| (CallStatus::Failed, Some(c.to_owned()));
    match cause {
        EndCause::Busy => (CallStatus::Busy, None),
        EndCause::NoAnswer => (CallStatus::NoAnswer, None),
        // The callee turned the call down: not a fault of the network, but not busy either.
        EndCause::Declined => failed("declined"),
        EndCause::Cancelled => (CallStatus::Cancelled, None),
        EndCause::CallerCancelled => (CallStatus::Cancelled, Some("cancelled_by_caller".into())),
        EndCause::RemoteHangup => (
            CallStatus::Completed,
            Some(
                match side {
                    Side::Callee => "hangup_by_callee",
                    Side::Caller => "hangup_by_caller",
                }
                .into(),
            ),
        ),
        // Without a request of ours (those are reported by the call), only a shutdown of
        // the user agent hangs up.
        EndCause::LocalHangup => (CallStatus::Completed, Some("shutdown".into())),
        EndCause::AckTimeout => failed("ack_timeout"),
        EndCause::Unreachable { .. } => failed("unreachable"),
        EndCause::Failed { code, .. } => failed(&format!("sip_{code}")),
    }
}

/// The SIP final response for a caller whose bridged callee did not answer.
pub fn refusal_for(cause: &EndCause) -> (u16, &'static str) {
    match cause {
        EndCause::Busy => (486, "Busy Here"),
        EndCause::Declined => (603, "Decline"),
        _ => (480, "Temporarily Unavailable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_map_to_statuses() {
        let cases = [
            (EndCause::Busy, CallStatus::Busy, None),
            (EndCause::NoAnswer, CallStatus::NoAnswer, None),
            (EndCause::Declined, CallStatus::Failed, Some("declined")),
            (EndCause::Cancelled, CallStatus::Cancelled, None),
            (
                EndCause::RemoteHangup,
                CallStatus::Completed,
                Some("hangup_by_callee"),
            ),
            (
                EndCause::AckTimeout,
                CallStatus::Failed,
                Some("ack_timeout"),
            ),
            (
                EndCause::Unreachable {
                    reason: "timeout".into(),
                },
                CallStatus::Failed,
                Some("unreachable"),
            ),
            (
                EndCause::Failed {
                    code: 404,
                    reason: "Not Found".into(),
                },
                CallStatus::Failed,
                Some("sip_404"),
            ),
        ];
        for (cause, status, text) in cases {
            let (got, got_text) = outcome(&cause, Side::Callee);
            assert_eq!(got, status, "{cause:?}");
            assert_eq!(got_text.as_deref(), text, "{cause:?}");
        }
        assert_eq!(
            outcome(&EndCause::RemoteHangup, Side::Caller).1.as_deref(),
            Some("hangup_by_caller")
        );
    }

    #[test]
    fn a_busy_callee_makes_a_busy_refusal() {
        assert_eq!(refusal_for(&EndCause::Busy).0, 486);
        assert_eq!(refusal_for(&EndCause::NoAnswer).0, 480);
    }
}
