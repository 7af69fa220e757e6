//! Money is integer micro-units (1 EUR = 1_000_000). Floats appear only at the JSON boundary.

pub type Micros = i64;

pub const MICROS_PER_UNIT: i64 = 1_000_000;

/// The JSON number for an amount: `8_900_000` → `8.9`.
pub fn to_json(micros: Micros) -> serde_json::Value {
    serde_json::Number::from_f64(micros as f64 / MICROS_PER_UNIT as f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// A finite, non-negative amount up to `max_units`, rounded to the micro-unit.
pub fn from_units(value: f64, max_units: f64) -> Option<Micros> {
    (value.is_finite() && (0.0..=max_units).contains(&value))
        .then(|| (value * MICROS_PER_UNIT as f64).round() as Micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_conversions() {
        assert_eq!(to_json(8_900_000), serde_json::json!(8.9));
        assert_eq!(to_json(32_000_000_000), serde_json::json!(32000.0));
        assert_eq!(from_units(0.1 + 0.2, 10.0), Some(300_000));
        assert_eq!(from_units(-1.0, 10.0), None);
        assert_eq!(from_units(f64::NAN, 10.0), None);
        assert_eq!(from_units(11.0, 10.0), None);
    }
}
