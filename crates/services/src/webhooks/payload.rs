//! The body of a delivery (PROTOCOL §8): rendered once, when the event is emitted, and sent
//! byte for byte by every attempt, so that each retry signs and sends the same bytes.

use serde::Serialize;
use serde_json::Value;

/// What the payload is about: one MID, or (for a ping of an account-scoped webhook) the
/// account.
#[derive(Debug, Clone, Copy)]
pub(crate) enum About<'a> {
    Mid(&'a str),
    Account(&'a str),
}

#[derive(Serialize)]
struct Payload<'a> {
    id: &'a str,
    event: &'a str,
    /// When the event was emitted for delivery; the attempt's own time travels in the
    /// timestamp headers.
    delivered_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    sequence: i64,
    data: &'a Value,
}

/// `{"id", "event", "delivered_at", "mid" | "account_id", "sequence", "data"}`, in that order.
pub(crate) fn render(
    event_id: &str,
    event: &str,
    at_ms: i64,
    about: About<'_>,
    sequence: i64,
    data: &Value,
) -> String {
    let (mid, account_id) = match about {
        About::Mid(mid) => (Some(mid), None),
        About::Account(account) => (None, Some(account)),
    };
    let payload = Payload {
        id: event_id,
        event,
        delivered_at: ami_core::time::rfc3339(at_ms),
        mid,
        account_id,
        sequence,
        data,
    };
    // A struct of strings, integers and a `Value` always serialises.
    serde_json::to_string(&payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_in_protocol_order() {
        let body = render(
            "evt_1",
            "sms.inbound",
            1_795_946_400_000,
            About::Mid("mid_1"),
            7,
            &json!({"b": 1, "a": "é"}),
        );
        assert_eq!(
            body,
            r#"{"id":"evt_1","event":"sms.inbound","delivered_at":"2026-11-29T10:00:00.000Z","mid":"mid_1","sequence":7,"data":{"a":"é","b":1}}"#
        );
        let ping = render(
            "evt_2",
            "webhook.test",
            0,
            About::Account("acct_1"),
            0,
            &json!({}),
        );
        assert!(ping.contains(r#""account_id":"acct_1""#) && !ping.contains("\"mid\""));
    }
}
