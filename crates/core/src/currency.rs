//! ISO 4217 currency codes: the currencies in circulation, compiled in.
//!
//! The table is ISO 4217 list one as amended up to 2025, less what no price is stated in:
//! fund codes (`BOV`, `CHE`, `CHW`, `CLF`, `COU`, `MXV`, `USN`, `UYI`, `UYW`), precious
//! metals, bond-market units, `XDR`, `XSU`, `XUA`, `XTS` (testing) and `XXX` (no currency),
//! and codes withdrawn since (`ANG` → `XCG`, `BGN` → `EUR`, `CUC`, `HRK`, `SLL` → `SLE`,
//! `ZWL` → `ZWG`). An amendment to ISO 4217 is a change to this table.

/// Sorted, for a binary search.
const ACTIVE: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN",
    "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD",
    "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES",
    "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN",
    "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP",
    "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK",
    "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
    "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// The code of a currency in circulation, upper-cased (`eur` → `EUR`); None for anything
/// else, surrounding spaces included.
pub fn parse(code: &str) -> Option<&'static str> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let upper = code.to_ascii_uppercase();
    ACTIVE
        .binary_search(&upper.as_str())
        .ok()
        .map(|i| ACTIVE[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_well_formed() {
        assert!(ACTIVE.windows(2).all(|w| w[0] < w[1]));
        assert!(
            ACTIVE
                .iter()
                .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
        assert!(ACTIVE.len() > 150, "{}", ACTIVE.len());
    }

    #[test]
    fn codes_in_circulation_and_nothing_else() {
        for (input, expected) in [
            ("EUR", Some("EUR")),
            ("eur", Some("EUR")),
            ("Cop", Some("COP")),
            ("USD", Some("USD")),
            ("JPY", Some("JPY")),
            ("XOF", Some("XOF")),
            ("XCG", Some("XCG")),
            ("ZWG", Some("ZWG")),
            ("XYZ", None),
            ("XXX", None),
            ("XTS", None),
            ("XAU", None),
            ("HRK", None),
            ("ZWL", None),
            ("BOV", None),
            ("EU", None),
            ("EURO", None),
            (" EUR", None),
            ("", None),
            ("€", None),
            ("E\u{0}R", None),
        ] {
            assert_eq!(parse(input), expected, "{input:?}");
        }
    }
}
