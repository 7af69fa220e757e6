//! The country catalogue (`[[countries]]`) and the number pools (`[[sandbox_pool]]`,
//! `[[demo_pool]]`). What one entry can say about itself is checked here as it is read;
//! what involves several entries (duplicates, overlaps, the catalogue a pool names) is in
//! `rules.rs`.

use ami_core::money::{self, Micros};
use ami_core::phone::E164;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::types::{bounded, parse_str, shown};

/// Largest price accepted in the catalogue, in currency units (COP prices are large).
const MAX_PRICE_UNITS: f64 = 1_000_000_000.0;
const SIM_TYPES: &[&str] = &["eSIM", "physical"];
const CAPABILITIES: &[&str] = &["sms", "voice"];

/// One entry of the country catalogue. Prices are written in units and kept as integer
/// micro-units (PROTOCOL §0).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Country {
    #[serde(deserialize_with = "iso_country")]
    pub code: String,
    #[serde(deserialize_with = "calling_code")]
    pub msisdn_prefix: String,
    #[serde(deserialize_with = "not_blank")]
    pub name: String,
    #[serde(deserialize_with = "iso_currency")]
    pub currency: String,
    /// Micro-units of `currency`.
    #[serde(rename = "monthly_price", with = "units")]
    pub monthly_price_micros: Micros,
    /// Micro-units of `currency`.
    #[serde(rename = "setup_fee", with = "units")]
    pub setup_fee_micros: Micros,
    #[serde(deserialize_with = "sim_types")]
    pub sim_types: Vec<String>,
    #[serde(deserialize_with = "capabilities")]
    pub capabilities: Vec<String>,
    /// Micro-euros per SMS segment.
    #[serde(rename = "sms_price_eur", with = "units")]
    pub sms_price_eur_micros: Micros,
    /// Micro-euros per started minute.
    #[serde(rename = "call_per_min_eur", with = "units")]
    pub call_per_min_eur_micros: Micros,
}

/// `count` consecutive numbers starting at `from`, for `country`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRange {
    #[serde(deserialize_with = "iso_country")]
    pub country: String,
    #[serde(with = "e164")]
    pub from: E164,
    #[serde(deserialize_with = "bounded::<_, _, 1, 1_000_000>")]
    pub count: u32,
}

impl PoolRange {
    /// Every number of the range, in order, as E.164 strings.
    pub fn numbers(&self) -> impl Iterator<Item = String> + '_ {
        let first = self.first();
        (0..u64::from(self.count)).map(move |i| format!("+{}", first + i))
    }

    /// The first number's digits as an integer (an E.164 number has at most 15 digits).
    pub(super) fn first(&self) -> u64 {
        self.from.as_str()[1..].parse().unwrap_or(0)
    }

    /// The last number of the range, `+` and digits (possibly longer than `from` when the
    /// range overflows its number length).
    pub(super) fn last(&self) -> String {
        format!("+{}", self.first() + u64::from(self.count) - 1)
    }
}

/// `deserialize_with` for the catalogue: at least one entry.
pub(super) fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Country>, D::Error> {
    let countries = Vec::<Country>::deserialize(d)?;
    if countries.is_empty() {
        return Err(de::Error::custom(
            "the catalogue needs at least one country",
        ));
    }
    Ok(countries)
}

/// An amount written in units, kept in micro-units.
mod units {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Micros, D::Error> {
        let units = f64::deserialize(d)?;
        money::from_units(units, MAX_PRICE_UNITS)
            .ok_or_else(|| de::Error::custom(format!("must be a non-negative amount, got {units}")))
    }

    pub fn serialize<S: Serializer>(micros: &Micros, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*micros as f64 / money::MICROS_PER_UNIT as f64)
    }
}

mod e164 {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<E164, D::Error> {
        parse_str(d, |s| {
            E164::parse(s).map_err(|_| format!("`{}` is not an E.164 number", shown(s)))
        })
    }

    pub fn serialize<S: Serializer>(number: &E164, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(number.as_str())
    }
}

fn iso_country<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(s.to_owned())
        } else {
            Err(format!("`{}` is not an ISO 3166 alpha-2 code", shown(s)))
        }
    })
}

fn iso_currency<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(s.to_owned())
        } else {
            Err(format!("`{}` is not an ISO 4217 code", shown(s)))
        }
    })
}

fn calling_code<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        let ok = s.strip_prefix('+').is_some_and(|digits| {
            (1..=3).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        });
        if ok {
            Ok(s.to_owned())
        } else {
            Err(format!("`{}` is not a calling code like +34", shown(s)))
        }
    })
}

fn not_blank<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse_str(d, |s| {
        if s.is_empty() {
            Err("is empty".to_owned())
        } else {
            Ok(s.to_owned())
        }
    })
}

fn sim_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    distinct_choices(d, SIM_TYPES)
}

fn capabilities<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    distinct_choices(d, CAPABILITIES)
}

/// A non-empty list of distinct values from `allowed`; every bad value is named.
fn distinct_choices<'de, D: Deserializer<'de>>(
    d: D,
    allowed: &[&str],
) -> Result<Vec<String>, D::Error> {
    let values = Vec::<String>::deserialize(d)?;
    let mut bad = Vec::new();
    if values.is_empty() {
        bad.push("is empty".to_owned());
    }
    for (i, v) in values.iter().enumerate() {
        if !allowed.contains(&v.as_str()) {
            bad.push(format!(
                "`{}` is not one of {}",
                shown(v),
                allowed.join(", ")
            ));
        } else if values[..i].contains(v) {
            bad.push(format!("`{v}` is listed twice"));
        }
    }
    if bad.is_empty() {
        Ok(values)
    } else {
        Err(de::Error::custom(bad.join(", ")))
    }
}
