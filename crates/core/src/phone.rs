//! E.164 phone numbers: normalisation and the country they belong to, from a real numbering plan.

use std::fmt;
use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an E.164 phone number")]
pub struct InvalidPhone;

/// A normalised E.164 number (`+` then 6 to 15 digits, no leading zero).
#[derive(Debug, Clone)]
pub struct E164 {
    number: String,
    /// Its country per the numbering plan, looked up on first use: a lookup runs the plan's
    /// patterns, which costs more than the rest of a send's validation together.
    country: OnceLock<Option<Country>>,
}

impl PartialEq for E164 {
    fn eq(&self, other: &Self) -> bool {
        self.number == other.number
    }
}

impl Eq for E164 {}

impl std::hash::Hash for E164 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.number.hash(state);
    }
}

impl PartialOrd for E164 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for E164 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.number.cmp(&other.number)
    }
}

impl E164 {
    /// Removes spaces, hyphens, dots and parentheses, then requires `^\+[1-9]\d{5,14}$`.
    pub fn parse(input: &str) -> Result<Self, InvalidPhone> {
        let s: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = s.strip_prefix('+').ok_or(InvalidPhone)?;
        let ok = (6..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self {
                number: s,
                country: OnceLock::new(),
            })
        } else {
            Err(InvalidPhone)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// ISO country and calling code per the numbering plan.
    pub fn country(&self) -> Option<Country> {
        self.country
            .get_or_init(|| {
                phonenumber::parse(None, &self.number)
                    .ok()
                    .map(|p| country_of(&p))
            })
            .clone()
    }

    /// Whether the numbering plan accepts the whole number (length and ranges), not only
    /// its country code: what every destination and every number taken into stock must be.
    /// It runs every pattern of the plan's number types, which costs more than the rest of
    /// a send's validation together, so hot paths keep its answer per number. The country
    /// found on the way is kept: `country()` costs nothing after it, clones included.
    pub fn is_valid(&self) -> bool {
        let Ok(parsed) = phonenumber::parse(None, &self.number) else {
            return false;
        };
        // Already set only to this same answer.
        let _ = self.country.set(Some(country_of(&parsed)));
        phonenumber::is_valid(&parsed)
    }

    /// The ISO country of a number the numbering plan accepts in full.
    pub fn valid_country(&self) -> Option<String> {
        if self.is_valid() {
            self.country().and_then(|c| c.iso)
        } else {
            None
        }
    }

    /// The country calling code with `+`, e.g. `+34`; what allowlists match on.
    pub fn calling_prefix(&self) -> Option<String> {
        self.country().map(|c| format!("+{}", c.calling_code))
    }

    /// For audit payloads: country code and the last two digits, the rest masked.
    pub fn masked(&self) -> String {
        let code_len = self
            .country()
            .map_or(1, |c| c.calling_code.to_string().len());
        let digits = &self.number[1..];
        let keep_tail = 2.min(digits.len().saturating_sub(code_len));
        let hidden = digits.len() - code_len - keep_tail;
        format!(
            "+{}{}{}",
            &digits[..code_len],
            "*".repeat(hidden),
            &digits[digits.len() - keep_tail..]
        )
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.number)
    }
}

fn country_of(parsed: &phonenumber::PhoneNumber) -> Country {
    Country {
        iso: parsed.country().id().map(|id| id.as_ref().to_owned()),
        calling_code: parsed.code().value(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2, when the calling code maps to a region.
    pub iso: Option<String>,
    pub calling_code: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            E164::parse("+34 (600) 12-34.56").map(|p| p.number),
            Ok("+34600123456".into())
        );
        for bad in [
            "34600123456",
            "+0123456",
            "+12345",
            "+1234567890123456",
            "+34abc",
            "",
            "+",
        ] {
            assert_eq!(E164::parse(bad), Err(InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn a_looked_up_country_changes_neither_identity_nor_answer() {
        let fresh = E164::parse("+34600123456").unwrap();
        let looked_up = fresh.clone();
        let first = looked_up.country();
        assert_eq!(looked_up, fresh);
        assert_eq!(looked_up.cmp(&fresh), std::cmp::Ordering::Equal);
        assert_eq!(looked_up.country(), first);
        assert_eq!(fresh.country(), first);
    }

    #[test]
    fn country_comes_from_the_numbering_plan() {
        let es = E164::parse("+34600123456").unwrap().country().unwrap();
        assert_eq!((es.iso.as_deref(), es.calling_code), (Some("ES"), 34));
        assert_eq!(
            E164::parse("+34600123456")
                .unwrap()
                .valid_country()
                .as_deref(),
            Some("ES")
        );
        // Too short for the Spanish plan: its country is known, but it is no valid number.
        let short = E164::parse("+34600123").unwrap();
        assert_eq!(short.country().and_then(|c| c.iso).as_deref(), Some("ES"));
        assert_eq!(short.valid_country(), None);
        let co = E164::parse("+573001234567").unwrap().country().unwrap();
        assert_eq!(co.iso.as_deref(), Some("CO"));
        // +1 is shared by many regions: the plan tells them apart.
        let ca = E164::parse("+14165550123").unwrap().country().unwrap();
        assert_eq!((ca.iso.as_deref(), ca.calling_code), (Some("CA"), 1));
    }

    #[test]
    fn validity_is_the_whole_plan_and_keeps_the_country() {
        for (number, valid) in [
            ("+34600000001", true),
            ("+34600000004", true),
            ("+34611000001", true),
            ("+34710000001", true),
            ("+34910000001", true),
            ("+573001234567", true),
            ("+4915112345678", true),
            // Right country code, wrong length or range.
            ("+346000000001234", false),
            ("+3461100000", false),
            ("+34600123", false),
            ("+34500000001", false),
            ("+5730012345", false),
            // No country at all behind the code.
            ("+999123456789", false),
        ] {
            let n = E164::parse(number).unwrap();
            assert_eq!(n.is_valid(), valid, "{number}");
        }
        let n = E164::parse("+346000000001234").unwrap();
        assert!(!n.is_valid());
        // An invalid number still has the country its code names.
        assert_eq!(n.country().and_then(|c| c.iso).as_deref(), Some("ES"));
        assert_eq!(n.valid_country(), None);
        let checked = E164::parse("+573001234567").unwrap();
        assert!(checked.is_valid());
        let copy = checked.clone();
        assert_eq!(copy.country().and_then(|c| c.iso).as_deref(), Some("CO"));
        assert_eq!(copy.valid_country().as_deref(), Some("CO"));
    }

    #[test]
    fn masks_all_but_country_and_tail() {
        assert_eq!(
            E164::parse("+34600123456").unwrap().masked(),
            "+34*******56"
        );
    }
}
