//! Per-MID limits (PROTOCOL §6): the values, their defaults and the validation of a patch.
//! Enforcement lives with the store's atomic reservation; this module only says what is valid.

use serde_json::{Map, Value, json};

use crate::money::{self, Micros};

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub rate_per_second: f64,
    /// Operations the token bucket holds: a burst of this many (never fewer than one
    /// second's worth of `rate_per_second`) passes at once, then `rate_per_second` applies.
    pub rate_burst: i64,
    pub sms_per_hour: i64,
    pub sms_per_day: i64,
    pub calls_per_hour: i64,
    pub calls_per_day: i64,
    pub sms_per_destination_per_hour: i64,
    pub sms_per_destination_per_day: i64,
    pub calls_per_destination_per_hour: i64,
    pub calls_per_destination_per_day: i64,
    pub monthly_budget: Micros,
    pub allowed_country_prefixes: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_per_second: 1.0,
            rate_burst: DEFAULT_RATE_BURST,
            sms_per_hour: 60,
            sms_per_day: 500,
            calls_per_hour: 20,
            calls_per_day: 200,
            sms_per_destination_per_hour: 5,
            sms_per_destination_per_day: 20,
            calls_per_destination_per_hour: 3,
            calls_per_destination_per_day: 10,
            monthly_budget: 100 * money::MICROS_PER_UNIT,
            allowed_country_prefixes: vec!["+34".to_owned()],
        }
    }
}

/// A burst an agent doing real work needs: a conversation's replies or a batch of
/// notifications at once, while a runaway loop is still held to `rate_per_second`.
pub const DEFAULT_RATE_BURST: i64 = 30;

/// Upper bounds beyond which a value is a mistake, not a limit.
pub const MAX_RATE_PER_SECOND: f64 = 1_000.0;
pub const MAX_RATE_BURST: i64 = 10_000;
pub const MAX_COUNT: i64 = 10_000_000;
pub const MAX_BUDGET_EUR: f64 = 10_000_000.0;
pub const MAX_PREFIXES: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// `invalid_<field>`
    #[error("invalid value for {0}")]
    Invalid(&'static str),
    #[error("unknown field {0}")]
    UnknownField(String),
    #[error("limits must be a JSON object")]
    NotAnObject,
}

/// The limits that count operations in a window (the OpenAPI document lists them too).
pub const COUNT_FIELDS: [&str; 8] = [
    "sms_per_hour",
    "sms_per_day",
    "calls_per_hour",
    "calls_per_day",
    "sms_per_destination_per_hour",
    "sms_per_destination_per_day",
    "calls_per_destination_per_hour",
    "calls_per_destination_per_day",
];

impl Limits {
    fn count_mut(&mut self, field: &str) -> Option<&mut i64> {
        Some(match field {
            "sms_per_hour" => &mut self.sms_per_hour,
            "sms_per_day" => &mut self.sms_per_day,
            "calls_per_hour" => &mut self.calls_per_hour,
            "calls_per_day" => &mut self.calls_per_day,
            "sms_per_destination_per_hour" => &mut self.sms_per_destination_per_hour,
            "sms_per_destination_per_day" => &mut self.sms_per_destination_per_day,
            "calls_per_destination_per_hour" => &mut self.calls_per_destination_per_hour,
            "calls_per_destination_per_day" => &mut self.calls_per_destination_per_day,
            _ => return None,
        })
    }

    /// Applies a partial patch. All fields are checked before anything changes: a patch with
    /// one bad field leaves the limits exactly as they were.
    pub fn patched(&self, patch: &Value) -> Result<Limits, LimitsError> {
        let obj = patch.as_object().ok_or(LimitsError::NotAnObject)?;
        let mut next = self.clone();
        // Sorted so that the first error reported does not depend on map order.
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.sort();
        for key in keys {
            let value = &obj[key.as_str()];
            match key.as_str() {
                "rate_per_second" => {
                    next.rate_per_second = value
                        .as_f64()
                        .filter(|r| r.is_finite() && *r > 0.0 && *r <= MAX_RATE_PER_SECOND)
                        .ok_or(LimitsError::Invalid("rate_per_second"))?;
                }
                "rate_burst" => {
                    next.rate_burst = value
                        .as_i64()
                        .filter(|n| (1..=MAX_RATE_BURST).contains(n))
                        .ok_or(LimitsError::Invalid("rate_burst"))?;
                }
                "monthly_budget_eur" => {
                    next.monthly_budget = value
                        .as_f64()
                        .and_then(|v| money::from_units(v, MAX_BUDGET_EUR))
                        .ok_or(LimitsError::Invalid("monthly_budget_eur"))?;
                }
                "allowed_country_prefixes" => {
                    next.allowed_country_prefixes = parse_prefixes(value)
                        .ok_or(LimitsError::Invalid("allowed_country_prefixes"))?;
                }
                field => {
                    let name = COUNT_FIELDS
                        .iter()
                        .find(|f| **f == field)
                        .ok_or_else(|| LimitsError::UnknownField(field.to_owned()))?;
                    let n = value
                        .as_i64()
                        .filter(|n| (0..=MAX_COUNT).contains(n))
                        .ok_or(LimitsError::Invalid(name))?;
                    if let Some(slot) = next.count_mut(field) {
                        *slot = n;
                    }
                }
            }
        }
        Ok(next)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("rate_per_second".into(), json!(self.rate_per_second));
        m.insert("rate_burst".into(), json!(self.rate_burst));
        let counts = [
            self.sms_per_hour,
            self.sms_per_day,
            self.calls_per_hour,
            self.calls_per_day,
            self.sms_per_destination_per_hour,
            self.sms_per_destination_per_day,
            self.calls_per_destination_per_hour,
            self.calls_per_destination_per_day,
        ];
        for (name, n) in COUNT_FIELDS.iter().zip(counts) {
            m.insert((*name).into(), json!(n));
        }
        m.insert(
            "monthly_budget_eur".into(),
            money::to_json(self.monthly_budget),
        );
        m.insert(
            "allowed_country_prefixes".into(),
            json!(self.allowed_country_prefixes),
        );
        Value::Object(m)
    }

    /// Reads what `to_json` wrote (the stored form).
    pub fn from_json(v: &Value) -> Result<Limits, LimitsError> {
        Limits::default().patched(v)
    }
}

/// Calling-code prefixes `+1` to `+999`, deduplicated, order kept.
fn parse_prefixes(v: &Value) -> Option<Vec<String>> {
    let items = v.as_array().filter(|a| a.len() <= MAX_PREFIXES)?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let s = item.as_str()?;
        let digits = s.strip_prefix('+')?;
        let ok = (1..=3).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return None;
        }
        if !out.iter().any(|p| p == s) {
            out.push(s.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let d = Limits::default();
        assert_eq!(Limits::from_json(&d.to_json()), Ok(d.clone()));
        assert_eq!(d.to_json()["monthly_budget_eur"], json!(100.0));
        assert_eq!(d.to_json()["rate_burst"], json!(30));
        // Limits stored before the burst was a limit read with the default burst.
        let mut older = d.to_json();
        older.as_object_mut().map(|o| o.remove("rate_burst"));
        assert_eq!(Limits::from_json(&older), Ok(d));
    }

    #[test]
    fn partial_patch_changes_only_what_it_names() {
        let d = Limits::default();
        let p = d
            .patched(&json!({"sms_per_hour": 10, "monthly_budget_eur": 2.5,
                             "allowed_country_prefixes": ["+34", "+57", "+34"]}))
            .unwrap();
        assert_eq!(p.sms_per_hour, 10);
        assert_eq!(p.monthly_budget, 2_500_000);
        assert_eq!(p.allowed_country_prefixes, vec!["+34", "+57"]);
        assert_eq!(p.sms_per_day, d.sms_per_day);
    }

    #[test]
    fn every_field_refuses_bad_values() {
        let d = Limits::default();
        let cases = [
            ("rate_per_second", json!(0)),
            ("rate_per_second", json!(-1)),
            ("rate_per_second", json!(1e9)),
            ("rate_per_second", json!("1")),
            ("rate_burst", json!(0)),
            ("rate_burst", json!(1.5)),
            ("rate_burst", json!(MAX_RATE_BURST + 1)),
            ("rate_burst", json!("30")),
            ("monthly_budget_eur", json!(-0.01)),
            ("monthly_budget_eur", json!(1e300)),
            ("monthly_budget_eur", json!(null)),
            ("allowed_country_prefixes", json!("+34")),
            ("allowed_country_prefixes", json!(["34"])),
            ("allowed_country_prefixes", json!(["+0"])),
            ("allowed_country_prefixes", json!(["+1234"])),
            ("allowed_country_prefixes", json!([1])),
        ];
        for (field, v) in cases {
            assert!(
                matches!(d.patched(&json!({field: v.clone()})), Err(LimitsError::Invalid(f)) if f == field),
                "{field} {v}"
            );
        }
        for field in COUNT_FIELDS {
            for v in [
                json!(-1),
                json!(1.5),
                json!(MAX_COUNT + 1),
                json!("5"),
                json!(true),
            ] {
                assert_eq!(
                    d.patched(&json!({field: v})),
                    Err(LimitsError::Invalid(field))
                );
            }
        }
        assert_eq!(
            d.patched(&json!({"sms_per_hour": 1, "bogus": 1})),
            Err(LimitsError::UnknownField("bogus".into()))
        );
        assert_eq!(d.patched(&json!([1])), Err(LimitsError::NotAnObject));
    }
}
