//! The events a webhook can subscribe to (PROTOCOL §8) and the subscription filter (pure).

/// One kind of event delivered to webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    SmsInbound,
    SmsDelivered,
    SmsFailed,
    CallInbound,
    CallCompleted,
    CallFailed,
    MidSuspended,
    MidResumed,
    LimitBlocked,
    KycSubmitted,
    KycVerified,
    KycRejected,
}

/// Subscribes to every event.
pub const WILDCARD: &str = "*";

/// The event of a test ping: sent whatever the filter says, never emitted by traffic.
pub const TEST_EVENT: &str = "webhook.test";

/// Longest event name accepted in a filter (the longest real one is 14 characters).
const MAX_NAME_LEN: usize = 64;

impl WebhookEvent {
    /// Every event, in the order the protocol lists them.
    pub const ALL: [WebhookEvent; 12] = [
        WebhookEvent::SmsInbound,
        WebhookEvent::SmsDelivered,
        WebhookEvent::SmsFailed,
        WebhookEvent::CallInbound,
        WebhookEvent::CallCompleted,
        WebhookEvent::CallFailed,
        WebhookEvent::MidSuspended,
        WebhookEvent::MidResumed,
        WebhookEvent::LimitBlocked,
        WebhookEvent::KycSubmitted,
        WebhookEvent::KycVerified,
        WebhookEvent::KycRejected,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::SmsInbound => "sms.inbound",
            WebhookEvent::SmsDelivered => "sms.delivered",
            WebhookEvent::SmsFailed => "sms.failed",
            WebhookEvent::CallInbound => "call.inbound",
            WebhookEvent::CallCompleted => "call.completed",
            WebhookEvent::CallFailed => "call.failed",
            WebhookEvent::MidSuspended => "mid.suspended",
            WebhookEvent::MidResumed => "mid.resumed",
            WebhookEvent::LimitBlocked => "limit.blocked",
            WebhookEvent::KycSubmitted => "kyc.submitted",
            WebhookEvent::KycVerified => "kyc.verified",
            WebhookEvent::KycRejected => "kyc.rejected",
        }
    }

    /// Whether the event concerns the account rather than one MID: only account-scoped
    /// webhooks hear it.
    pub const fn is_account_event(self) -> bool {
        matches!(
            self,
            WebhookEvent::KycSubmitted | WebhookEvent::KycVerified | WebhookEvent::KycRejected
        )
    }

    pub fn parse(name: &str) -> Option<WebhookEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The names a filter may contain: every event and the wildcard.
    pub fn supported() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Self::ALL.iter().map(|e| e.as_str()).collect();
        names.push(WILDCARD);
        names
    }
}

/// Why a list of event names is not a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// No name at all: a webhook that hears nothing is a mistake.
    Empty,
    /// A name with control characters or absurdly long: refused without echoing it.
    Malformed,
    /// A well-formed name that is no event.
    Unsupported(String),
}

/// Checks and normalises a filter: the wildcard alone if it is present, otherwise the
/// named events once each, in protocol order.
pub fn parse_filter<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>, FilterError> {
    if names.is_empty() {
        return Err(FilterError::Empty);
    }
    let mut wanted = Vec::new();
    let mut wildcard = false;
    for name in names {
        let name = name.as_ref();
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(FilterError::Malformed);
        }
        if name == WILDCARD {
            wildcard = true;
            continue;
        }
        let event =
            WebhookEvent::parse(name).ok_or_else(|| FilterError::Unsupported(name.to_owned()))?;
        wanted.push(event);
    }
    if wildcard {
        return Ok(vec![WILDCARD.to_owned()]);
    }
    Ok(WebhookEvent::ALL
        .into_iter()
        .filter(|e| wanted.contains(e))
        .map(|e| e.as_str().to_owned())
        .collect())
}

/// Whether a stored filter takes `event`.
pub fn matches<S: AsRef<str>>(filter: &[S], event: WebhookEvent) -> bool {
    filter
        .iter()
        .any(|name| name.as_ref() == WILDCARD || name.as_ref() == event.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(e.as_str()), Some(e));
        }
        assert_eq!(WebhookEvent::parse("sms.sent"), None);
        assert_eq!(WebhookEvent::parse(TEST_EVENT), None);
        assert_eq!(WebhookEvent::supported().len(), 13);
    }

    #[test]
    fn filters_are_normalised() {
        assert_eq!(parse_filter(&["*"]).unwrap(), vec!["*"]);
        assert_eq!(parse_filter(&["sms.inbound", "*"]).unwrap(), vec!["*"]);
        assert_eq!(
            parse_filter(&["mid.resumed", "sms.inbound", "sms.inbound"]).unwrap(),
            vec!["sms.inbound", "mid.resumed"]
        );
    }

    #[test]
    fn bad_filters_are_refused() {
        assert_eq!(parse_filter::<&str>(&[]), Err(FilterError::Empty));
        for bad in ["", "sms.inbound\r\n", "a\u{0}", &"x".repeat(65)] {
            assert_eq!(parse_filter(&[bad]), Err(FilterError::Malformed), "{bad:?}");
        }
        assert_eq!(
            parse_filter(&["sms.inbound", "sms.outbound"]),
            Err(FilterError::Unsupported("sms.outbound".into()))
        );
        assert_eq!(
            parse_filter(&["SMS.INBOUND"]),
            Err(FilterError::Unsupported("SMS.INBOUND".into()))
        );
    }

    #[test]
    fn matching() {
        let some = ["sms.inbound", "call.failed"];
        assert!(matches(&some, WebhookEvent::SmsInbound));
        assert!(matches(&some, WebhookEvent::CallFailed));
        assert!(!matches(&some, WebhookEvent::SmsDelivered));
        for e in WebhookEvent::ALL {
            assert!(matches(&["*"], e));
        }
        assert!(!matches::<&str>(&[], WebhookEvent::SmsInbound));
    }
}
