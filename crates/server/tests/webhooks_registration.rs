//! Registering webhooks (PROTOCOL §8): the secret shown once, lists with its prefix only,
//! events filters, at most 10 per MID even under a race, delete, and every kind of bad input
//! refused with a clear 400 or 409 and nothing stored. The SSRF guard judges the URL at
//! registration, on a server with the default (empty) allowlist as on one that allows
//! loopback receivers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{LOOPBACK, TestServer, engines, mid_webhooks};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn registration_shows_the_secret_once_and_lists_its_prefix() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let (_, key) = server.customer("Hooks").await;
        let flow = server.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let (s, created) = server
            .post(
                &collection,
                &key,
                json!({"url": "HTTP://127.0.0.1:8443/a/../hooks/tok-PATHSECRET?x=1"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {created}");
        let id = created["id"].as_str().unwrap();
        let secret = created["secret"].as_str().unwrap();
        assert!(id.starts_with("wh_"), "{created}");
        assert_eq!(created["mid"], flow.mid.as_str());
        assert_eq!(created["events"], json!(["*"]), "all events by default");
        assert_eq!(created["status"], "active");
        assert_eq!(
            created["url"], "http://127.0.0.1:8443/hooks/tok-PATHSECRET?x=1",
            "the normalised URL is stored and sent"
        );
        // whsec_ + base64 of 32 bytes.
        let encoded = secret.strip_prefix("whsec_").expect("whsec_ prefix");
        assert_eq!(encoded.len(), 44, "{secret}");
        assert!(encoded.ends_with('=') && !encoded[..43].contains('='));
        let prefix = created["secret_prefix"].as_str().unwrap();
        let hint = created["secret_hint"].as_str().unwrap();
        assert!(secret.starts_with(prefix) && prefix.len() == 10, "{prefix}");
        assert!(hint.starts_with(prefix) && hint.ends_with(&secret[secret.len() - 4..]));

        let (s, list) = server.get(&collection, &key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list["count"], 1);
        assert_eq!(list["webhooks"][0]["id"], id);
        assert_eq!(list["webhooks"][0]["secret_prefix"], prefix);
        assert!(list["webhooks"][0].get("secret").is_none(), "{list}");
        assert!(
            !list.to_string().contains(secret),
            "the secret is shown once"
        );

        // The filter is normalised: each event once, in protocol order.
        let (s, v) = server
            .post(
                &collection,
                &key,
                json!({"url": "http://127.0.0.1:8443/b", "events": ["mid.resumed", "sms.inbound", "sms.inbound"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["events"], json!(["sms.inbound", "mid.resumed"]));
        let (s, v) = server
            .post(
                "/v1/account/webhooks",
                &key,
                json!({"url": "http://127.0.0.1:8443/c", "events": ["sms.failed", "*"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            (v["mid"].clone(), v["events"].clone()),
            (Value::Null, json!(["*"]))
        );
        let account_hook = v["id"].as_str().unwrap().to_owned();

        // The audit names the host, never the secret nor a path that may hold a token.
        let (_, events) = server
            .get("/v1/events?action=webhook_created&limit=100", &key)
            .await;
        let created_events = events["events"].as_array().unwrap();
        assert_eq!(created_events.len(), 3, "{events}");
        let text = events.to_string();
        assert!(
            !text.contains(secret) && !text.contains("PATHSECRET"),
            "{text}"
        );
        assert!(text.contains("\"host\":\"127.0.0.1\""), "{text}");

        // Delete: once, in its own scope only.
        let (s, v) = server
            .post(
                &format!("/v1/account/webhooks/{id}/delete"),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("webhook_not_found")),
            "a MID's webhook through the account's routes"
        );
        let delete = format!("{collection}/{id}/delete");
        let (s, v) = server.post(&delete, &key, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v, json!({"id": id, "deleted": true}));
        let (s, v) = server.post(&delete, &key, json!({})).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("webhook_not_found"))
        );
        let (s, v) = server
            .post(
                &format!("/v1/account/webhooks/{account_hook}/delete"),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, events) = server.get("/v1/events?action=webhook_deleted", &key).await;
        assert_eq!(events["count"], 2, "{events}");
        let (_, list) = server.get(&collection, &key).await;
        assert_eq!(list["count"], 1, "{list}");
        server.stop().await;
    }
}

/// Every refusal: (what, body, error code, detail or field to check).
fn bad_bodies() -> Vec<(&'static str, Value, &'static str, Option<&'static str>)> {
    let long = format!("http://127.0.0.1:8443/{}", "a".repeat(2030));
    vec![
        ("no url", json!({}), "missing_fields", None),
        ("url null", json!({"url": null}), "missing_fields", None),
        (
            "url not a string",
            json!({"url": 42}),
            "invalid_url",
            Some("not_a_string"),
        ),
        (
            "ftp",
            json!({"url": "ftp://127.0.0.1/x"}),
            "invalid_url",
            Some("scheme_not_allowed"),
        ),
        (
            "file",
            json!({"url": "file:///etc/passwd"}),
            "invalid_url",
            Some("scheme_not_allowed"),
        ),
        (
            "gopher",
            json!({"url": "gopher://127.0.0.1:6379/_x"}),
            "invalid_url",
            Some("scheme_not_allowed"),
        ),
        (
            "javascript",
            json!({"url": "javascript:alert(1)"}),
            "invalid_url",
            Some("scheme_not_allowed"),
        ),
        (
            "ws",
            json!({"url": "ws://127.0.0.1/"}),
            "invalid_url",
            Some("scheme_not_allowed"),
        ),
        (
            "over 2048",
            json!({"url": long}),
            "invalid_url",
            Some("too_long"),
        ),
        (
            "CR LF",
            json!({"url": "http://127.0.0.1/a\r\nX-Evil: 1"}),
            "invalid_url",
            Some("control_character"),
        ),
        (
            "LF in the host",
            json!({"url": "http://127.0.0.\n1/"}),
            "invalid_url",
            Some("control_character"),
        ),
        (
            "NUL",
            json!({"url": "http://127.0.0.1/\u{0}"}),
            "invalid_url",
            Some("control_character"),
        ),
        (
            "BEL",
            json!({"url": "http://127.0.0.1/\u{7}"}),
            "invalid_url",
            Some("control_character"),
        ),
        (
            "tab",
            json!({"url": "http://127.0.0.1/\t"}),
            "invalid_url",
            Some("control_character"),
        ),
        (
            "spaces",
            json!({"url": " http://127.0.0.1/ "}),
            "invalid_url",
            Some("whitespace"),
        ),
        (
            "userinfo",
            json!({"url": "http://user:pw@127.0.0.1/"}),
            "invalid_url",
            Some("userinfo_not_allowed"),
        ),
        (
            "backslash",
            json!({"url": "https:\\\\127.0.0.1\\"}),
            "invalid_url",
            Some("backslash"),
        ),
        (
            "fragment",
            json!({"url": "http://127.0.0.1/#x"}),
            "invalid_url",
            Some("fragment_not_allowed"),
        ),
        (
            "port 0",
            json!({"url": "http://127.0.0.1:0/"}),
            "invalid_url",
            Some("port_not_allowed"),
        ),
        (
            "zone id",
            json!({"url": "http://[fe80::1%25eth0]/"}),
            "invalid_url",
            Some("zone_id"),
        ),
        (
            "metadata",
            json!({"url": "http://169.254.169.254/latest/meta-data/"}),
            "invalid_url",
            Some("blocked_address:cloud_metadata"),
        ),
        (
            "metadata, decimal",
            json!({"url": "http://2852039166/"}),
            "invalid_url",
            Some("blocked_address:cloud_metadata"),
        ),
        (
            "metadata, mapped",
            json!({"url": "http://[::ffff:169.254.169.254]/"}),
            "invalid_url",
            Some("blocked_address:"),
        ),
        (
            "metadata, NAT64",
            json!({"url": "http://[64:ff9b::a9fe:a9fe]/"}),
            "invalid_url",
            Some("blocked_address:"),
        ),
        (
            "metadata, 6to4",
            json!({"url": "http://[2002:a9fe:a9fe::]/"}),
            "invalid_url",
            Some("blocked_address:"),
        ),
        (
            "private",
            json!({"url": "http://10.0.0.1/"}),
            "invalid_url",
            Some("blocked_address:private"),
        ),
        (
            "unspecified",
            json!({"url": "http://0.0.0.0/"}),
            "invalid_url",
            Some("blocked_address:unspecified"),
        ),
        (
            "IPv6 loopback",
            json!({"url": "http://[::1]/"}),
            "invalid_url",
            Some("blocked_address:loopback"),
        ),
        (
            "localhost",
            json!({"url": "https://localhost/"}),
            "invalid_url",
            Some("blocked_host_name"),
        ),
        (
            "metadata name",
            json!({"url": "https://metadata.google.internal./"}),
            "invalid_url",
            Some("blocked_host_name"),
        ),
        (
            "events a string",
            json!({"url": "http://127.0.0.1/", "events": "sms.inbound"}),
            "invalid_events",
            None,
        ),
        (
            "events empty",
            json!({"url": "http://127.0.0.1/", "events": []}),
            "invalid_events",
            None,
        ),
        (
            "events not names",
            json!({"url": "http://127.0.0.1/", "events": [1]}),
            "invalid_events",
            None,
        ),
        (
            "CR LF in an event",
            json!({"url": "http://127.0.0.1/", "events": ["sms.inbound\r\nX: 1"]}),
            "invalid_events",
            None,
        ),
        (
            "unknown event",
            json!({"url": "http://127.0.0.1/", "events": ["sms.sent"]}),
            "unsupported_event",
            Some("sms.sent"),
        ),
        (
            "event in capitals",
            json!({"url": "http://127.0.0.1/", "events": ["SMS.INBOUND"]}),
            "unsupported_event",
            Some("SMS.INBOUND"),
        ),
        (
            "a secret of one's own",
            json!({"url": "http://127.0.0.1/", "secret": "whsec_mine"}),
            "unknown_field",
            Some("secret"),
        ),
    ]
}

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_stores_nothing() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let (_, key) = server.customer("Careless").await;
        let flow = server.provision(&key).await;
        let before = server.event_count().await;
        for collection in [mid_webhooks(&flow.mid), "/v1/account/webhooks".to_owned()] {
            for (what, body, code, detail) in bad_bodies() {
                let (s, v) = server.post(&collection, &key, body).await;
                assert_eq!(
                    (s, v["error"].as_str()),
                    (StatusCode::BAD_REQUEST, Some(code)),
                    "{engine:?} {what}: {v}"
                );
                match (code, detail) {
                    ("invalid_url", Some(d)) => {
                        assert!(v["detail"].as_str().unwrap().starts_with(d), "{what}: {v}")
                    }
                    ("unsupported_event", Some(event)) => {
                        assert_eq!(v["event"], event, "{v}");
                        let supported = v["supported"].as_array().unwrap();
                        assert_eq!(supported.len(), 13, "{v}");
                        assert!(supported.contains(&json!("*")));
                        assert!(supported.contains(&json!("limit.blocked")));
                        assert!(supported.contains(&json!("kyc.verified")));
                    }
                    ("unknown_field", Some(field)) => assert_eq!(v["field"], field),
                    ("missing_fields", _) => assert_eq!(v["fields"], json!(["url"])),
                    _ => {}
                }
                // A refusal never echoes raw control characters.
                assert!(!v.to_string().contains('\r'), "{what}: {v}");
            }
            let (_, list) = server.get(&collection, &key).await;
            assert_eq!(list["count"], 0, "{engine:?}: a refusal stored something");
        }
        assert_eq!(
            server.event_count().await,
            before,
            "{engine:?}: a refusal wrote audit events"
        );
        server.stop().await;
    }
}

/// Without an allowlist (the default), loopback in all its spellings is refused too.
#[tokio::test]
async fn the_default_guard_refuses_loopback_in_every_spelling() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Default").await;
        let flow = server.provision(&key).await;
        for url in [
            "http://127.0.0.1:8443/",
            "http://127.1:8443/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://017700000001/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://127.0.0.1./",
            "https://127\u{3002}0\u{3002}0\u{3002}1/",
            "http://%31%32%37.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            "http://0/",
            "https://0.1.2.3/",
            "http://evil@127.0.0.1/",
            "https://127.0.0.1#@example.com/",
            "https://\u{24db}\u{24de}\u{24d2}\u{24d0}\u{24db}\u{24d7}\u{24de}\u{24e2}\u{24e3}/",
            "https:127.0.0.1",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://192.0.0.192/",
            "http://198.18.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
        ] {
            let (s, v) = server
                .post(&mid_webhooks(&flow.mid), &key, json!({"url": url}))
                .await;
            assert_eq!(
                (s, v["error"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_url")),
                "{engine:?} {url}: {v}"
            );
            assert!(v["detail"].is_string(), "{v}");
        }
        let (_, list) = server.get(&mid_webhooks(&flow.mid), &key).await;
        assert_eq!(list["count"], 0);
        server.stop().await;
    }
}

#[tokio::test]
async fn at_most_ten_per_mid_even_when_racing() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let (_, key) = server.customer("Greedy").await;
        let flow = server.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let mut ids = Vec::new();
        for i in 0..10 {
            let (s, v) = server
                .post(
                    &collection,
                    &key,
                    json!({"url": format!("http://127.0.0.1:8443/{i}")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{engine:?} {i}: {v}");
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
        let before = server.event_count().await;
        let (s, v) = server
            .post(
                &collection,
                &key,
                json!({"url": "http://127.0.0.1:8443/11"}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str(), v["max"].as_i64()),
            (
                StatusCode::CONFLICT,
                Some("webhook_limit_reached"),
                Some(10)
            ),
            "{engine:?} {v}"
        );
        assert_eq!(server.event_count().await, before, "a refusal was audited");
        // The account's own scope is counted apart.
        let (s, v) = server
            .post(
                "/v1/account/webhooks",
                &key,
                json!({"url": "http://127.0.0.1:8443/acct"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // A deleted one frees its place.
        let (s, _) = server
            .post(&format!("{collection}/{}/delete", ids[0]), &key, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = server
            .post(
                &collection,
                &key,
                json!({"url": "http://127.0.0.1:8443/again"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");

        // 25 registrations racing for another MID's ten places.
        let other = server.provision(&key).await;
        let racers: Vec<_> = (0..25)
            .map(|i| {
                let api = server.remote();
                let (key, collection) = (key.clone(), mid_webhooks(&other.mid));
                tokio::spawn(async move {
                    api.post(
                        &collection,
                        &key,
                        json!({"url": format!("http://127.0.0.1:8443/race/{i}")}),
                    )
                    .await
                })
            })
            .collect();
        let mut created = 0;
        for r in racers {
            let (s, v) = r.await.unwrap();
            match s {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => assert_eq!(v["error"], "webhook_limit_reached"),
                other => panic!("{engine:?}: {other} {v}"),
            }
        }
        assert_eq!(created, 10, "{engine:?}");
        let (_, list) = server
            .get(&format!("{}?limit=200", mid_webhooks(&other.mid)), &key)
            .await;
        assert_eq!(list["count"], 10, "{engine:?} {list}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_released_mid_takes_no_new_webhook() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let (_, key) = server.customer("Leaving").await;
        let flow = server.provision(&key).await;
        let collection = mid_webhooks(&flow.mid);
        let (s, _) = server
            .post(&collection, &key, json!({"url": "http://127.0.0.1:8443/"}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/release", flow.mid),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = server
            .post(&collection, &key, json!({"url": "http://127.0.0.1:8443/"}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("mobile_identity_not_active")),
            "{engine:?} {v}"
        );
        let (s, list) = server.get(&collection, &key).await;
        assert_eq!((s, list["count"].as_i64()), (StatusCode::OK, Some(1)));
        server.stop().await;
    }
}
