//! SMS and call state machines and their retry schedules (PROTOCOL §3.5, §3.6). Carrier
//! events arrive late and out of order, so every transition is checked here and statuses
//! never move backwards.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsStatus {
    Queued,
    /// The carrier may or may not have taken it: an attempt's answer never came, and the
    /// carrier cannot be asked. Never submitted again; a later report settles it.
    Unknown,
    Sent,
    Delivered,
    Failed,
    Cancelled,
    Received,
}

const SMS_ALL: [SmsStatus; 7] = [
    SmsStatus::Queued,
    SmsStatus::Unknown,
    SmsStatus::Sent,
    SmsStatus::Delivered,
    SmsStatus::Failed,
    SmsStatus::Cancelled,
    SmsStatus::Received,
];

impl SmsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Unknown => "unknown",
            SmsStatus::Sent => "sent",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Failed => "failed",
            SmsStatus::Cancelled => "cancelled",
            SmsStatus::Received => "received",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        SMS_ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SmsStatus::Delivered | SmsStatus::Failed | SmsStatus::Cancelled | SmsStatus::Received
        )
    }

    /// Never backwards: queued → unknown | sent | delivered | failed | cancelled (a DLR may
    /// overtake the `sent` event), unknown → sent | delivered | failed, sent → delivered |
    /// failed; nothing else.
    pub fn can_become(self, to: SmsStatus) -> bool {
        use SmsStatus::*;
        matches!(
            (self, to),
            (Queued, Unknown | Sent | Delivered | Failed | Cancelled)
                | (Unknown | Sent, Delivered | Failed)
                | (Unknown, Sent)
        )
    }
}

/// §3.6 DLR status spellings: "delivered","1","ok" → Delivered; "failed","rejected",
/// "expired","2","4","8","16" → Failed; also "sent" → Sent (case-insensitive, trimmed);
/// anything else None.
pub fn parse_dlr_status(s: &str) -> Option<SmsStatus> {
    let s = s.trim().to_ascii_lowercase();
    match s.as_str() {
        "delivered" | "1" | "ok" => Some(SmsStatus::Delivered),
        "failed" | "rejected" | "expired" | "2" | "4" | "8" | "16" => Some(SmsStatus::Failed),
        "sent" => Some(SmsStatus::Sent),
        _ => None,
    }
}

pub const SMS_MAX_RETRIES: u32 = 3;

/// Backoff before retry n (1-based) of a failed SMS: 5 s, 30 s, 120 s; None after the third
/// (and for 0, which is not a retry).
pub fn sms_retry_delay_ms(retry: u32) -> Option<i64> {
    match retry {
        1 => Some(5_000),
        2 => Some(30_000),
        3 => Some(120_000),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Failed,
    NoAnswer,
    Busy,
    Cancelled,
}

const CALL_ALL: [CallStatus; 8] = [
    CallStatus::Initiated,
    CallStatus::Ringing,
    CallStatus::InProgress,
    CallStatus::Completed,
    CallStatus::Failed,
    CallStatus::NoAnswer,
    CallStatus::Busy,
    CallStatus::Cancelled,
];

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Busy => "busy",
            CallStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        CALL_ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            CallStatus::Initiated | CallStatus::Ringing | CallStatus::InProgress
        )
    }

    /// §3.5: initiated → {ringing, failed, cancelled}; ringing → {in_progress, no_answer,
    /// busy, failed, cancelled}; in_progress → {completed, failed}.
    pub fn can_become(self, to: CallStatus) -> bool {
        use CallStatus::*;
        matches!(
            (self, to),
            (Initiated, Ringing | Failed | Cancelled)
                | (Ringing, InProgress | NoAnswer | Busy | Failed | Cancelled)
                | (InProgress, Completed | Failed)
        )
    }

    /// Whether a call that ended in this status may be retried: failed (if never answered)
    /// and no_answer yes; busy no (the callee is there and chose not to take it); nothing
    /// once answered, since the callee has already heard the agent.
    pub fn retryable(self, was_answered: bool) -> bool {
        !was_answered && matches!(self, CallStatus::Failed | CallStatus::NoAnswer)
    }
}

pub const CALL_MAX_RETRIES: u32 = 2;

/// Backoff before retry n (1-based) of a call: 3 s then 15 s; None otherwise.
pub fn call_retry_delay_ms(retry: u32) -> Option<i64> {
    match retry {
        1 => Some(3_000),
        2 => Some(15_000),
        _ => None,
    }
}

/// Started minutes for billing: 0 s → 0, 1..=60 s → 1, 61 → 2. Negative durations
/// (clock skew) bill nothing.
pub fn billable_minutes(duration_secs: i64) -> i64 {
    if duration_secs <= 0 {
        0
    } else {
        duration_secs / 60 + i64::from(duration_secs % 60 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_names_round_trip() {
        for st in SMS_ALL {
            assert_eq!(SmsStatus::parse(st.as_str()), Some(st));
        }
        assert_eq!(SmsStatus::parse("Delivered"), None);
        let terminal: Vec<_> = SMS_ALL.into_iter().filter(|s| s.is_terminal()).collect();
        use SmsStatus::*;
        assert_eq!(terminal, vec![Delivered, Failed, Cancelled, Received]);
    }

    #[test]
    fn sms_transitions_exactly() {
        use SmsStatus::*;
        let allowed = [
            (Queued, Unknown),
            (Unknown, Sent),
            (Unknown, Delivered),
            (Unknown, Failed),
            (Queued, Sent),
            (Queued, Delivered),
            (Queued, Failed),
            (Queued, Cancelled),
            (Sent, Delivered),
            (Sent, Failed),
        ];
        for from in SMS_ALL {
            for to in SMS_ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        // A late `sent` after `delivered` is ignored, and terminal states stay put.
        assert!(!Delivered.can_become(Sent));
        for t in SMS_ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(SMS_ALL.into_iter().all(|to| !t.can_become(to)));
        }
    }

    #[test]
    fn dlr_spellings() {
        for s in ["delivered", "1", "ok", " OK ", "Delivered\n"] {
            assert_eq!(parse_dlr_status(s), Some(SmsStatus::Delivered), "{s:?}");
        }
        for s in [
            "failed", "rejected", "expired", "2", "4", "8", "16", "EXPIRED",
        ] {
            assert_eq!(parse_dlr_status(s), Some(SmsStatus::Failed), "{s:?}");
        }
        assert_eq!(parse_dlr_status(" Sent"), Some(SmsStatus::Sent));
        for s in ["", "0", "3", "32", "queued", "cancelled", "deliv", "1 6"] {
            assert_eq!(parse_dlr_status(s), None, "{s:?}");
        }
    }

    #[test]
    fn sms_backoff() {
        let delays: Vec<_> = (0..=4).map(sms_retry_delay_ms).collect();
        assert_eq!(
            delays,
            vec![None, Some(5_000), Some(30_000), Some(120_000), None]
        );
        assert!(sms_retry_delay_ms(SMS_MAX_RETRIES).is_some());
        assert!(sms_retry_delay_ms(SMS_MAX_RETRIES + 1).is_none());
    }

    #[test]
    fn call_names_round_trip() {
        for st in CALL_ALL {
            assert_eq!(CallStatus::parse(st.as_str()), Some(st));
        }
        assert_eq!(CallStatus::parse("in-progress"), None);
        assert_eq!(CallStatus::InProgress.as_str(), "in_progress");
        assert_eq!(CallStatus::NoAnswer.as_str(), "no_answer");
        use CallStatus::*;
        let live: Vec<_> = CALL_ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(live, vec![Initiated, Ringing, InProgress]);
    }

    #[test]
    fn call_transitions_exactly() {
        use CallStatus::*;
        let allowed = [
            (Initiated, Ringing),
            (Initiated, Failed),
            (Initiated, Cancelled),
            (Ringing, InProgress),
            (Ringing, NoAnswer),
            (Ringing, Busy),
            (Ringing, Failed),
            (Ringing, Cancelled),
            (InProgress, Completed),
            (InProgress, Failed),
        ];
        for from in CALL_ALL {
            for to in CALL_ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn call_retry_rules() {
        use CallStatus::*;
        assert!(Failed.retryable(false));
        assert!(NoAnswer.retryable(false));
        assert!(!Failed.retryable(true));
        assert!(!NoAnswer.retryable(true));
        for st in [Busy, Completed, Cancelled, Initiated, Ringing, InProgress] {
            assert!(!st.retryable(false), "{st:?}");
            assert!(!st.retryable(true), "{st:?}");
        }
        let delays: Vec<_> = (0..=3).map(call_retry_delay_ms).collect();
        assert_eq!(delays, vec![None, Some(3_000), Some(15_000), None]);
        assert!(call_retry_delay_ms(CALL_MAX_RETRIES).is_some());
        assert!(call_retry_delay_ms(CALL_MAX_RETRIES + 1).is_none());
    }

    #[test]
    fn started_minutes() {
        let cases = [
            (-5, 0),
            (0, 0),
            (1, 1),
            (59, 1),
            (60, 1),
            (61, 2),
            (120, 2),
            (121, 3),
            (3_600, 60),
        ];
        for (secs, minutes) in cases {
            assert_eq!(billable_minutes(secs), minutes, "{secs}");
        }
        assert_eq!(billable_minutes(i64::MAX), i64::MAX / 60 + 1);
    }
}
