//! How a trunk writes phone numbers in the user part of SIP URIs, and back to E.164.
//! Only the form is checked here (a `+` and 2 to 15 digits); whether a number exists in
//! a numbering plan is the server's concern.

use serde::Deserialize;

/// The trunk's way of writing numbers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NumberFormat {
    /// `+34911234567`.
    #[default]
    E164,
    /// Numbers of the trunk's country without the country code (`911234567`, after
    /// `trunk_prefix` if set), others as `international_prefix` + country code + number
    /// (`0044...`).
    National {
        country_prefix: String,
        #[serde(default = "default_international_prefix")]
        international_prefix: String,
        #[serde(default)]
        trunk_prefix: String,
    },
}

fn default_international_prefix() -> String {
    "00".to_string()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `+` and 2 to 15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| all_digits(d) && (2..=15).contains(&d.len()) && !d.starts_with('0'))
}

impl NumberFormat {
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            NumberFormat::E164 => Ok(()),
            NumberFormat::National {
                country_prefix,
                international_prefix,
                trunk_prefix,
            } => {
                if !all_digits(country_prefix) || country_prefix.len() > 3 {
                    return Err(format!(
                        "country_prefix `{country_prefix}` must be 1 to 3 digits"
                    ));
                }
                if !all_digits(international_prefix) {
                    return Err("international_prefix must be digits".to_string());
                }
                if !trunk_prefix.is_empty() && !all_digits(trunk_prefix) {
                    return Err("trunk_prefix must be digits".to_string());
                }
                Ok(())
            }
        }
    }

    /// The user part for an E.164 number; `None` when `e164` is not E.164.
    pub fn to_trunk(&self, e164: &str) -> Option<String> {
        if !is_e164(e164) {
            return None;
        }
        match self {
            NumberFormat::E164 => Some(e164.to_string()),
            NumberFormat::National {
                country_prefix,
                international_prefix,
                trunk_prefix,
            } => {
                let digits = &e164[1..];
                Some(match digits.strip_prefix(country_prefix.as_str()) {
                    Some(national) if !national.is_empty() => format!("{trunk_prefix}{national}"),
                    _ => format!("{international_prefix}{digits}"),
                })
            }
        }
    }

    /// The E.164 number a user part names; `None` for anything that is not a number
    /// (`anonymous`, letters). Visual separators (`-`, `.`, spaces, brackets) are ignored.
    pub fn from_trunk(&self, user: &str) -> Option<String> {
        let cleaned: String = user
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | ' ' | '(' | ')'))
            .collect();
        let e164 = if cleaned.starts_with('+') {
            cleaned
        } else {
            if !all_digits(&cleaned) {
                return None;
            }
            match self {
                NumberFormat::E164 => format!("+{cleaned}"),
                NumberFormat::National {
                    country_prefix,
                    international_prefix,
                    trunk_prefix,
                } => {
                    if let Some(intl) = cleaned.strip_prefix(international_prefix.as_str()) {
                        format!("+{intl}")
                    } else {
                        let national = if trunk_prefix.is_empty() {
                            cleaned.as_str()
                        } else {
                            cleaned
                                .strip_prefix(trunk_prefix.as_str())
                                .unwrap_or(&cleaned)
                        };
                        format!("+{country_prefix}{national}")
                    }
                }
            }
        };
        is_e164(&e164).then_some(e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spain() -> NumberFormat {
        NumberFormat::National {
            country_prefix: "34".into(),
            international_prefix: "00".into(),
            trunk_prefix: String::new(),
        }
    }

    #[test]
    fn e164_is_written_as_is_and_read_with_or_without_plus() {
        let f = NumberFormat::E164;
        assert_eq!(f.to_trunk("+34911234567").as_deref(), Some("+34911234567"));
        assert_eq!(f.from_trunk("34911234567").as_deref(), Some("+34911234567"));
        assert_eq!(
            f.from_trunk("+34 911-23.45(67)").as_deref(),
            Some("+34911234567")
        );
        assert_eq!(f.to_trunk("911234567"), None);
        assert_eq!(f.from_trunk("anonymous"), None);
    }

    #[test]
    fn national_numbers_drop_the_country_code_and_foreign_ones_get_the_prefix() {
        let f = spain();
        assert_eq!(f.to_trunk("+34911234567").as_deref(), Some("911234567"));
        assert_eq!(
            f.to_trunk("+447700900123").as_deref(),
            Some("00447700900123")
        );
        assert_eq!(f.from_trunk("911234567").as_deref(), Some("+34911234567"));
        assert_eq!(
            f.from_trunk("00447700900123").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            f.from_trunk("+447700900123").as_deref(),
            Some("+447700900123")
        );
    }

    #[test]
    fn a_trunk_prefix_is_added_and_removed() {
        let f = NumberFormat::National {
            country_prefix: "44".into(),
            international_prefix: "00".into(),
            trunk_prefix: "0".into(),
        };
        assert_eq!(f.to_trunk("+447700900123").as_deref(), Some("07700900123"));
        assert_eq!(
            f.from_trunk("07700900123").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            f.from_trunk("0034911234567").as_deref(),
            Some("+34911234567")
        );
    }

    #[test]
    fn e164_form() {
        assert!(is_e164("+34911234567"));
        assert!(!is_e164("+0123"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("34911234567"));
    }

    #[test]
    fn settings_form_of_national() {
        #[derive(Deserialize)]
        struct W {
            f: NumberFormat,
        }
        let w: W = toml::from_str("f = { national = { country_prefix = \"34\" } }").unwrap();
        assert_eq!(w.f, spain());
        let w: W = toml::from_str("f = \"e164\"").unwrap();
        assert_eq!(w.f, NumberFormat::E164);
        assert!(spain().check().is_ok());
    }
}
