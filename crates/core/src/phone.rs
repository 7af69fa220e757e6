//! E.164 phone numbers: normalisation and the country they belong to, from a real numbering plan.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an E.164 phone number")]
pub struct InvalidPhone;

/// A normalised E.164 number (`+` then 6 to 15 digits, no leading zero).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

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
        if ok { Ok(Self(s)) } else { Err(InvalidPhone) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// ISO country and calling code per the numbering plan, if the number is valid there.
    pub fn country(&self) -> Option<Country> {
        let parsed = phonenumber::parse(None, &self.0).ok()?;
        let calling_code = parsed.code().value();
        let iso = parsed.country().id().map(|id| id.as_ref().to_owned());
        Some(Country {
            iso,
            calling_code,
            valid: phonenumber::is_valid(&parsed),
        })
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
        let digits = &self.0[1..];
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
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Country {
    /// ISO 3166-1 alpha-2, when the calling code maps to a region.
    pub iso: Option<String>,
    pub calling_code: u16,
    /// Whether the numbering plan accepts the full number (length, ranges).
    pub valid: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            E164::parse("+34 (600) 12-34.56").map(|p| p.0),
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
    fn country_comes_from_the_numbering_plan() {
        let es = E164::parse("+34600123456").unwrap().country().unwrap();
        assert_eq!(
            (es.iso.as_deref(), es.calling_code, es.valid),
            (Some("ES"), 34, true)
        );
        let co = E164::parse("+573001234567").unwrap().country().unwrap();
        assert_eq!(co.iso.as_deref(), Some("CO"));
        // +1 is shared by many regions: the plan tells them apart.
        let ca = E164::parse("+14165550123").unwrap().country().unwrap();
        assert_eq!((ca.iso.as_deref(), ca.calling_code), (Some("CA"), 1));
    }

    #[test]
    fn masks_all_but_country_and_tail() {
        assert_eq!(
            E164::parse("+34600123456").unwrap().masked(),
            "+34*******56"
        );
    }
}
