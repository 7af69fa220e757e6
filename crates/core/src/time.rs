//! Time as integer milliseconds since the Unix epoch, rendered RFC 3339 UTC with `Z`.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(rfc3339(1_764_410_400_123), "2025-11-29T10:00:00.123Z");
        assert_eq!(
            parse_rfc3339("2025-11-29T10:00:00.123Z"),
            Some(1_764_410_400_123)
        );
        assert_eq!(
            parse_rfc3339("2025-11-29T11:00:00.123+01:00"),
            Some(1_764_410_400_123)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
