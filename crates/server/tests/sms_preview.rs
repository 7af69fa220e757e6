//! `POST /v1/agent/sms/preview` against a table of real texts (accents, emoji, the GSM-7
//! extension table, typographic punctuation, the 153/160/161/306 boundaries) and against
//! what the send of the same text is charged, on every engine. The preview writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TO: &str = "+34611045678";

struct Case {
    body: String,
    encoding: &'static str,
    units: u64,
    segments: u64,
    ucs2: &'static [&'static str],
    /// The GSM-7 alternative and its segments, when there is one.
    alternative: Option<(&'static str, u64)>,
}

fn case(
    body: impl Into<String>,
    encoding: &'static str,
    units: u64,
    segments: u64,
    ucs2: &'static [&'static str],
) -> Case {
    Case {
        body: body.into(),
        encoding,
        units,
        segments,
        ucs2,
        alternative: None,
    }
}

fn table() -> Vec<Case> {
    let a = |n: usize| "a".repeat(n);
    vec![
        case("Hola, ¿qué tal?", "GSM-7", 15, 1, &[]),
        case("Ñandú en Málaga", "UCS-2", 15, 1, &["ú", "á"]),
        case("Adiós", "UCS-2", 5, 1, &["ó"]),
        case("Café ☕", "UCS-2", 6, 1, &["☕"]),
        case("😀", "UCS-2", 2, 1, &["😀"]),
        case("😀".repeat(35), "UCS-2", 70, 1, &["😀"]),
        case("😀".repeat(36), "UCS-2", 72, 2, &["😀"]),
        case("Price: 10€ [promo] {ok}", "GSM-7", 28, 1, &[]),
        case("~^|\\", "GSM-7", 8, 1, &[]),
        case(a(153), "GSM-7", 153, 1, &[]),
        case(a(160), "GSM-7", 160, 1, &[]),
        case(a(161), "GSM-7", 161, 2, &[]),
        case(a(306), "GSM-7", 306, 2, &[]),
        case(a(307), "GSM-7", 307, 3, &[]),
        // An escape pair is never split: 152 + 2 would straddle the first part.
        case(format!("{}€{}", a(152), a(152)), "GSM-7", 306, 3, &[]),
        case(format!("{}€", a(159)), "GSM-7", 161, 2, &[]),
        case("á".repeat(70), "UCS-2", 70, 1, &["á"]),
        case("á".repeat(71), "UCS-2", 71, 2, &["á"]),
        Case {
            alternative: Some(("It's \"done\" - ok...", 1)),
            ..case(
                "It\u{2019}s \u{201c}done\u{201d} \u{2013} ok\u{2026}",
                "UCS-2",
                17,
                1,
                &["\u{2019}", "\u{201c}", "\u{201d}", "\u{2013}", "\u{2026}"],
            )
        },
        // Typography alone made 96 characters cost two parts; the alternative costs one.
        Case {
            alternative: Some((
                "Ok - 98 more characters follow here.............................................................",
                1,
            )),
            ..case(
                format!(
                    "Ok \u{2014} 98 more characters follow here{}",
                    ".".repeat(61)
                ),
                "UCS-2",
                96,
                2,
                &["\u{2014}"],
            )
        },
    ]
}

#[tokio::test]
async fn preview_matches_the_table_and_the_charge_of_the_send() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Preview").await;
        let flow = server.provision(&key).await;
        server
            .set_limits(
                &key,
                &flow.mid,
                json!({"rate_per_second": 1000, "sms_per_hour": 1000, "sms_per_day": 1000,
                       "sms_per_destination_per_hour": 1000, "sms_per_destination_per_day": 1000,
                       "monthly_budget_eur": 1000}),
            )
            .await;
        for c in table() {
            let (_, usage_before) = server.get("/v1/agent/usage", &flow.agent_token).await;
            let (_, sms_before) = server.get("/v1/agent/sms", &flow.agent_token).await;
            let (s, v) = server
                .post(
                    "/v1/agent/sms/preview",
                    &flow.agent_token,
                    json!({"to": TO, "body": c.body}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let ctx = format!("{engine:?} {:?}: {v}", c.body);
            assert_eq!(v["encoding"], c.encoding, "{ctx}");
            assert_eq!(v["units"], c.units, "{ctx}");
            assert_eq!(v["segments"], c.segments, "{ctx}");
            assert_eq!(v["ucs2_characters"], json!(c.ucs2), "{ctx}");
            let price = v["price_per_segment_eur"].as_f64().unwrap();
            assert!(price > 0.0, "{ctx}");
            let cost = v["cost_eur"].as_f64().unwrap();
            assert!((cost - price * c.segments as f64).abs() < 1e-9, "{ctx}");
            match c.alternative {
                None => assert!(v.get("gsm7_alternative").is_none(), "{ctx}"),
                Some((body, segments)) => {
                    assert_eq!(v["gsm7_alternative"]["body"], body, "{ctx}");
                    assert_eq!(v["gsm7_alternative"]["segments"], segments, "{ctx}");
                    let alt = v["gsm7_alternative"]["cost_eur"].as_f64().unwrap();
                    assert!((alt - price * segments as f64).abs() < 1e-9, "{ctx}");
                }
            }
            // The preview reserved and queued nothing.
            let (_, usage_after) = server.get("/v1/agent/usage", &flow.agent_token).await;
            let (_, sms_after) = server.get("/v1/agent/sms", &flow.agent_token).await;
            assert_eq!(usage_after["usage"], usage_before["usage"], "{ctx}");
            assert_eq!(sms_after["count"], sms_before["count"], "{ctx}");

            // The send of the same text is charged what the preview said.
            let (s, sent) = server
                .post(
                    "/v1/agent/sms/send",
                    &flow.agent_token,
                    json!({"to": TO, "body": c.body}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{sent}");
            assert_eq!(sent["cost_eur"], v["cost_eur"], "{ctx}: {sent}");
            assert_eq!(sent["segments"], v["segments"], "{ctx}: {sent}");
            assert_eq!(sent["encoding"], v["encoding"], "{ctx}: {sent}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn preview_refuses_what_the_send_refuses() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Preview").await;
        let flow = server.provision(&key).await;
        let cases: [(Value, &str); 5] = [
            (json!({"to": TO, "body": " "}), "empty_body"),
            (json!({"to": TO}), "empty_body"),
            (json!({"to": "+3461", "body": "x"}), "invalid_to"),
            (json!({"to": TO, "body": "a".repeat(1001)}), "body_too_long"),
            (
                json!({"to": TO, "body": "x", "max_price_eur": 1}),
                "unknown_field",
            ),
        ];
        for (input, code) in cases {
            for path in ["/v1/agent/sms/preview", "/v1/agent/sms/send"] {
                if code == "unknown_field" && path.ends_with("send") {
                    continue;
                }
                let (s, v) = server.post(path, &flow.agent_token, input.clone()).await;
                assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {input}: {v}");
                assert_eq!(v["error"], code, "{path} {input}: {v}");
            }
        }
        let (s, _) = server
            .post(
                "/v1/agent/sms/preview",
                "amiagt_live_nope",
                json!({"to": TO, "body": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}
