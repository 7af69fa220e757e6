//! Existing AMI clients work unchanged: each point where this server once differed from the
//! public protocol without a decision of ours, driven over HTTP exactly as a protocol client
//! (an SDK, an MCP client, a carrier) would, on both engines. The deliberate differences are
//! listed in `docs/compatibility.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, engines};
use reqwest::StatusCode;
use serde_json::json;

/// 1. `GET /v1/sim-options`: `countries` keyed by country code, as the SDK indexes it.
#[tokio::test]
async fn sim_options_are_keyed_by_country_code() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Acme").await;
        let (s, v) = server.get("/v1/sim-options", &key).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let countries = v["countries"].as_object().expect("countries is an object");
        for (code, prefix, monthly, setup, currency) in [
            ("ES", "+34", 8.9, 5.0, "EUR"),
            ("CO", "+57", 32000.0, 18000.0, "COP"),
        ] {
            let c = &countries[code];
            assert_eq!(c["msisdn_prefix"], prefix, "{engine:?} {c}");
            assert_eq!(c["price"]["monthly"].as_f64(), Some(monthly), "{c}");
            assert_eq!(c["price"]["setup"].as_f64(), Some(setup), "{c}");
            assert_eq!(c["price"]["currency"], currency, "{c}");
            assert!(c["sim_types"].as_array().unwrap().contains(&json!("eSIM")));
            let caps = c["capabilities"].as_array().unwrap();
            assert!(caps.contains(&json!("sms")) && caps.contains(&json!("voice")));
        }
        server.stop().await;
    }
}
