//! The country catalogue behind offers and `/v1/sim-options`.

use ami_core::money::Micros;

#[derive(Debug, Clone)]
pub struct Country {
    pub code: String,
    pub name: String,
    pub msisdn_prefix: String,
    pub currency: String,
    pub monthly_price: Micros,
    pub setup_fee: Micros,
    pub sim_types: Vec<String>,
    pub capabilities: Vec<String>,
    pub sms_price_eur: Micros,
    pub call_per_min_eur: Micros,
}

impl Country {
    pub fn defaults() -> Vec<Country> {
        let both = || vec!["sms".to_owned(), "voice".to_owned()];
        let types = || vec!["eSIM".to_owned(), "physical".to_owned()];
        vec![
            Country {
                code: "ES".into(),
                name: "Spain".into(),
                msisdn_prefix: "+34".into(),
                currency: "EUR".into(),
                monthly_price: 8_900_000,
                setup_fee: 5_000_000,
                sim_types: types(),
                capabilities: both(),
                sms_price_eur: 70_000,
                call_per_min_eur: 50_000,
            },
            Country {
                code: "CO".into(),
                name: "Colombia".into(),
                msisdn_prefix: "+57".into(),
                currency: "COP".into(),
                monthly_price: 32_000_000_000,
                setup_fee: 18_000_000_000,
                sim_types: types(),
                capabilities: both(),
                sms_price_eur: 50_000,
                call_per_min_eur: 40_000,
            },
        ]
    }
}

/// The longest part of an asked country code echoed back in `unsupported_country`.
const MAX_ECHOED_COUNTRY_CHARS: usize = 16;

impl crate::Services {
    pub fn country(&self, code: &str) -> Option<&Country> {
        self.settings.countries.iter().find(|c| c.code == code)
    }

    /// The catalogue's entry for `code`, else `400 unsupported_country` with the country
    /// that was asked and the supported codes, as every route taking a country answers.
    pub(crate) fn supported_country(&self, code: &str) -> crate::Result<&Country> {
        self.country(code).ok_or_else(|| {
            let asked: String = code.chars().take(MAX_ECHOED_COUNTRY_CHARS).collect();
            crate::Error::bad_request(
                "unsupported_country",
                "the country is not in the catalogue (see /v1/sim-options)",
            )
            .with("country", asked)
            .with(
                "supported",
                self.settings
                    .countries
                    .iter()
                    .map(|c| c.code.clone())
                    .collect::<Vec<_>>(),
            )
        })
    }
}
