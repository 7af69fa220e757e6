//! The voice configuration of a MID (PROTOCOL §3.4): the voice URL passes the webhook SSRF
//! guard, the signing secret is shown once and redacted afterwards, rotation replaces it at
//! once, another account's MID is a missing MID, no secret reaches the audit log or the
//! logs, and `Services::route_inbound_call` decides every INVITE on the one inbound path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ami_services::inbound_calls::{InboundRoute, RefuseReason};
use common::{
    ADMIN_KEY, AmiProcess, Engine, LOOPBACK, Remote, TestServer, drop_pg_database, engines,
    fresh_pg_database,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn voice_config(mid: &str) -> String {
    format!("/v1/mobile-identities/{mid}/voice-config")
}

fn rotate(mid: &str) -> String {
    format!("/v1/mobile-identities/{mid}/rotate-signing-secret")
}

/// `whsec_` + standard base64 of 32 bytes.
fn assert_secret_shape(secret: &str) {
    let tail = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    assert_eq!(tail.len(), 44, "{secret}");
    assert!(
        tail.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "{secret}"
    );
}

/// The secret the store holds, read past the API: sealed at rest, opened here with the
/// server's key.
async fn stored_secret(server: &TestServer, mid: &str) -> Option<String> {
    let store = &server.running.services.store;
    let mut conn = store.reader().await.unwrap();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT signing_secret FROM voice_configs WHERE mid_id = $1")
            .bind(mid)
            .fetch_optional(&mut *conn)
            .await
            .unwrap()
            .flatten();
    stored.map(|sealed| {
        assert!(ami_store::sealed::is_sealed(&sealed), "stored in clear");
        store
            .secrets()
            .unwrap()
            .open(ami_store::sealed::VOICE_SIGNING_SECRET, mid, &sealed)
            .unwrap()
    })
}

async fn events(server: &TestServer, key: &str, action: &str) -> Vec<Value> {
    let (s, v) = server
        .get(&format!("/v1/events?action={action}&limit=1000"), key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn set_read_and_clear_with_the_secret_shown_once() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Voice").await;
        let flow = server.provision(&key).await;
        let path = voice_config(&flow.mid);

        let (s, v) = server.get(&path, &key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v,
            json!({"mid": flow.mid, "voice_url": null, "signing_secret_hint": null, "updated_at": null}),
            "{engine:?}"
        );

        let (s, v) = server
            .post(
                &path,
                &key,
                json!({"voice_url": "WSS://8.8.8.8:443/agent?x=1"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        assert_eq!(v["mid"], flow.mid.as_str());
        assert_eq!(v["voice_url"], "wss://8.8.8.8/agent?x=1", "normalised: {v}");
        let secret = v["signing_secret"].as_str().unwrap().to_owned();
        assert_secret_shape(&secret);
        let hint = ami_core::secret::hint(&secret);
        assert_eq!(v["signing_secret_hint"], hint.as_str());
        assert!(v["updated_at"].as_str().unwrap().ends_with('Z'), "{v}");
        assert_eq!(
            stored_secret(&server, &flow.mid).await.as_deref(),
            Some(secret.as_str())
        );

        // Every later read shows the hint only.
        let (s, v) = server.get(&path, &key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.get("signing_secret").is_none(), "{v}");
        assert_eq!(v["signing_secret_hint"], hint.as_str());
        assert_eq!(v["voice_url"], "wss://8.8.8.8/agent?x=1");
        assert!(!v.to_string().contains(&secret[6..]), "{v}");

        // A new URL keeps the secret and does not show it again.
        let (s, v) = server
            .post(&path, &key, json!({"voice_url": "https://1.1.1.1/voice"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.get("signing_secret").is_none(), "{v}");
        assert_eq!(
            (v["voice_url"].as_str(), v["signing_secret_hint"].as_str()),
            (Some("https://1.1.1.1/voice"), Some(hint.as_str()))
        );

        // null and "" clear the URL; the secret stays for the next one.
        for clear in [json!({"voice_url": null}), json!({"voice_url": ""})] {
            let (s, v) = server.post(&path, &key, clear.clone()).await;
            assert_eq!(s, StatusCode::OK, "{clear} {v}");
            assert!(v["voice_url"].is_null(), "{v}");
            assert!(v.get("signing_secret").is_none(), "{v}");
            assert_eq!(v["signing_secret_hint"], hint.as_str());
            let (_, read) = server.get(&path, &key).await;
            assert!(read["voice_url"].is_null(), "{read}");
        }
        let (s, v) = server
            .post(&path, &key, json!({"voice_url": "wss://8.8.4.4/again"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.get("signing_secret").is_none(), "{v}");
        assert_eq!(
            stored_secret(&server, &flow.mid).await.as_deref(),
            Some(secret.as_str())
        );

        let changed = events(&server, &key, "voice_config_changed").await;
        assert_eq!(changed.len(), 5, "{changed:?}");
        let first = changed.last().unwrap();
        assert_eq!(first["data"]["signing_secret_issued"], true, "{first}");
        assert_eq!(first["data"]["host"], "8.8.8.8", "{first}");
        assert_eq!(first["mid"], flow.mid.as_str(), "{first}");
        assert!(
            changed[1..changed.len() - 1]
                .iter()
                .all(|e| e["data"]["signing_secret_issued"] == false),
            "{changed:?}"
        );

        // A released MID takes no new configuration.
        let (s, _) = server
            .post(
                &format!("/v1/mobile-identities/{}/release", flow.mid),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = server
            .post(&path, &key, json!({"voice_url": "wss://8.8.8.8/x"}))
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("mobile_identity_not_active")),
            "{v}"
        );
        let (s, v) = server.post(&rotate(&flow.mid), &key, json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        server.stop().await;
    }
}

#[tokio::test]
async fn rotation_replaces_the_secret_used_for_signing_at_once() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Rotate").await;
        let flow = server.provision(&key).await;

        // Rotating before any URL makes the first secret.
        let (s, v) = server.post(&rotate(&flow.mid), &key, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        let first = v["signing_secret"].as_str().unwrap().to_owned();
        assert_secret_shape(&first);
        assert!(v["voice_url"].is_null(), "{v}");

        let (s, v) = server
            .post(
                &voice_config(&flow.mid),
                &key,
                json!({"voice_url": "wss://8.8.8.8/agent"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.get("signing_secret").is_none(), "a secret existed: {v}");

        let services = &server.running.services;
        let route = services
            .route_inbound_call("+34611000001", &flow.phone_number, Some("r-1"))
            .await
            .unwrap();
        let InboundRoute::Agent { signing_secret, .. } = route else {
            panic!("{route:?}")
        };
        assert_eq!(signing_secret, first);

        let (s, v) = server.post(&rotate(&flow.mid), &key, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let second = v["signing_secret"].as_str().unwrap().to_owned();
        assert_secret_shape(&second);
        assert_ne!(first, second);
        assert_eq!(
            v["voice_url"], "wss://8.8.8.8/agent",
            "the URL is kept: {v}"
        );
        assert_eq!(
            v["signing_secret_hint"],
            ami_core::secret::hint(&second).as_str()
        );
        assert_eq!(
            stored_secret(&server, &flow.mid).await.as_deref(),
            Some(second.as_str())
        );

        // The very next call is signed with the new secret; the old one is gone.
        let route = services
            .route_inbound_call("+34611000001", &flow.phone_number, Some("r-2"))
            .await
            .unwrap();
        let InboundRoute::Agent { signing_secret, .. } = route else {
            panic!("{route:?}")
        };
        assert_eq!(signing_secret, second);

        let (_, read) = server.get(&voice_config(&flow.mid), &key).await;
        assert!(read.get("signing_secret").is_none(), "{read}");
        assert_eq!(
            read["signing_secret_hint"],
            ami_core::secret::hint(&second).as_str()
        );

        let rotated = events(&server, &key, "voice_signing_secret_rotated").await;
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        assert_eq!(rotated[0]["data"]["replaced_previous"], true, "{rotated:?}");
        assert_eq!(
            rotated[1]["data"]["replaced_previous"], false,
            "{rotated:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn non_public_and_malformed_voice_urls_are_refused_and_change_nothing() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key) = server.customer("Guarded").await;
        let flow = server.provision(&key).await;
        let path = voice_config(&flow.mid);
        let (s, v) = server
            .post(&path, &key, json!({"voice_url": "wss://8.8.8.8/agent"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, before) = server.get(&path, &key).await;

        let rows = [
            (json!("wss://127.0.0.1/agent"), "blocked_address:loopback"),
            (
                json!("https://2130706433/agent"),
                "blocked_address:loopback",
            ),
            (json!("wss://[::1]:8443/agent"), "blocked_address:loopback"),
            (json!("https://10.1.2.3/agent"), "blocked_address:private"),
            (json!("wss://192.168.1.20/agent"), "blocked_address:private"),
            (
                json!("https://169.254.169.254/latest/meta-data"),
                "blocked_address:",
            ),
            (json!("wss://[fe80::1]/agent"), "blocked_address:link_local"),
            (json!("https://localhost/agent"), "blocked_host_name"),
            // Plain schemes only for the operator's allowlist, which is empty here.
            (json!("ws://8.8.8.8/agent"), "plaintext_scheme_not_allowed"),
            (
                json!("http://8.8.8.8/agent"),
                "plaintext_scheme_not_allowed",
            ),
            (json!("sip:agent@example.com"), "scheme_not_allowed"),
            (json!("ftp://8.8.8.8/"), "scheme_not_allowed"),
            (json!("wss://user@8.8.8.8/"), "userinfo_not_allowed"),
            (json!("wss://8.8.8.8/#frag"), "fragment_not_allowed"),
            (json!("wss:8.8.8.8"), "missing_slashes"),
            (json!("no url"), "unparsable"),
            (json!(5), "not_a_string"),
        ];
        for (url, detail) in rows {
            let (s, v) = server.post(&path, &key, json!({"voice_url": url})).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{engine:?} {url}: {v}");
            assert_eq!(v["error"], "invalid_voice_url", "{url}: {v}");
            let got = v["detail"].as_str().unwrap_or_default();
            assert!(got.starts_with(detail), "{url}: {detail} expected, got {v}");
        }
        let (s, v) = server
            .post(
                &path,
                &key,
                json!({"voice_url": "wss://8.8.8.8/", "extra": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        let (_, after) = server.get(&path, &key).await;
        assert_eq!(
            before, after,
            "{engine:?}: a refusal changed the configuration"
        );
        assert_eq!(events(&server, &key, "voice_config_changed").await.len(), 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_operator_allowlist_admits_plain_schemes_on_its_subnets_only() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let (_, key) = server.customer("Private").await;
        let flow = server.provision(&key).await;
        let path = voice_config(&flow.mid);
        for url in [
            "ws://127.0.0.1:9/agent",
            "http://127.0.0.1:9/agent",
            "wss://127.0.0.1:9/agent",
        ] {
            let (s, v) = server.post(&path, &key, json!({"voice_url": url})).await;
            assert_eq!(s, StatusCode::OK, "{engine:?} {url}: {v}");
            assert_eq!(v["voice_url"], url, "{v}");
        }
        for (url, detail) in [
            ("ws://8.8.8.8/agent", "plaintext_scheme_not_allowed"),
            ("wss://10.0.0.1/agent", "blocked_address:private"),
        ] {
            let (s, v) = server.post(&path, &key, json!({"voice_url": url})).await;
            assert_eq!(
                (s, v["detail"].as_str()),
                (StatusCode::BAD_REQUEST, Some(detail)),
                "{url}: {v}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn another_accounts_mid_is_a_missing_mid() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key_a) = server.customer("Owner").await;
        let (_, key_b) = server.customer("Stranger").await;
        let a = server.provision(&key_a).await;
        let (s, v) = server
            .post(
                &voice_config(&a.mid),
                &key_a,
                json!({"voice_url": "wss://8.8.8.8/a"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, before) = server.get(&voice_config(&a.mid), &key_a).await;
        let missing = ami_core::id::new_id("mid");

        for (foreign, absent) in [
            (
                server.get(&voice_config(&a.mid), &key_b).await,
                server.get(&voice_config(&missing), &key_b).await,
            ),
            (
                server
                    .post(
                        &voice_config(&a.mid),
                        &key_b,
                        json!({"voice_url": "wss://8.8.8.8/b"}),
                    )
                    .await,
                server
                    .post(
                        &voice_config(&missing),
                        &key_b,
                        json!({"voice_url": "wss://8.8.8.8/b"}),
                    )
                    .await,
            ),
            (
                server.post(&rotate(&a.mid), &key_b, json!({})).await,
                server.post(&rotate(&missing), &key_b, json!({})).await,
            ),
        ] {
            assert_eq!(foreign.0, StatusCode::NOT_FOUND, "{engine:?} {}", foreign.1);
            assert_eq!(foreign, absent, "{engine:?}");
            assert_eq!(foreign.1["error"], "mobile_identity_not_found");
        }
        let (_, after) = server.get(&voice_config(&a.mid), &key_a).await;
        assert_eq!(before, after, "{engine:?}");
        // Nor does an agent token reach it.
        let (s, _) = server.get(&voice_config(&a.mid), &a.agent_token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}

#[tokio::test]
async fn no_signing_secret_in_the_audit_log_or_the_logs() {
    for engine in engines() {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match engine {
            Engine::Sqlite => format!("sqlite://{}/ami.db", dir.path().display()),
            Engine::Postgres => fresh_pg_database().await,
        };
        let mut ami = AmiProcess::spawn(&database_url, &[("AMI_LOG", "debug")], &[]);
        let api = Remote::new(&ami.ready().await);
        let (_, key) = api.customer("Quiet voice").await;
        let flow = api.provision(&key).await;

        let mut secrets = Vec::new();
        let (s, v) = api
            .post(
                &voice_config(&flow.mid),
                &key,
                json!({"voice_url": "wss://8.8.8.8/agent"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        secrets.push(v["signing_secret"].as_str().unwrap().to_owned());
        let (s, v) = api.post(&rotate(&flow.mid), &key, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        secrets.push(v["signing_secret"].as_str().unwrap().to_owned());
        let (s, v) = api.get(&voice_config(&flow.mid), &key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = api
            .post(
                &voice_config(&flow.mid),
                &key,
                json!({"voice_url": "https://10.0.0.1/x"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        let (s, events) = api.get("/v1/events?limit=1000", &key).await;
        assert_eq!(s, StatusCode::OK, "{events}");
        let (s, all) = api.get("/v1/admin/events?limit=1000", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        for text in [events.to_string(), all.to_string()] {
            for action in ["voice_config_changed", "voice_signing_secret_rotated"] {
                assert!(text.contains(action), "{engine:?}: no {action} in {text}");
            }
            for secret in &secrets {
                // The random part alone would be the same leak.
                assert!(
                    !text.contains(&secret[6..]),
                    "{engine:?}: secret in the audit: {text}"
                );
            }
        }

        let (status, log) = ami.terminate().await;
        assert!(status.success(), "{status:?}\n{log}");
        assert!(
            log.contains("DEBUG") && log.contains("request finished"),
            "{log}"
        );
        assert!(
            log.contains("voice-config"),
            "the requests were logged:\n{log}"
        );
        for secret in &secrets {
            let line = log.lines().find(|l| l.contains(&secret[6..]));
            assert!(
                line.is_none(),
                "{engine:?}: a signing secret in the log: {line:?}"
            );
        }
        if engine == Engine::Postgres {
            drop_pg_database(&database_url).await;
        }
    }
}

#[tokio::test]
async fn route_inbound_call_decides_every_outcome_on_the_inbound_path() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[LOOPBACK]).await;
        let services = &server.running.services;
        let (_, key) = server.customer("Router").await;
        let flow = server.provision(&key).await;
        let hook = common::register_webhook(
            &server.remote(),
            &key,
            &common::mid_webhooks(&flow.mid),
            "http://127.0.0.1:9/hook",
            json!(["call.inbound"]),
        )
        .await;
        let caller = "+34611000001";

        // Unknown number.
        let route = services
            .route_inbound_call(caller, "+34699999999", Some("u-1"))
            .await
            .unwrap();
        assert!(
            matches!(
                route,
                InboundRoute::Refuse {
                    reason: RefuseReason::NotFound
                }
            ),
            "{engine:?} {route:?}"
        );

        // Nothing configured: no route, audited with its reason and the caller masked.
        let route = services
            .route_inbound_call(caller, &flow.phone_number, Some("n-1"))
            .await
            .unwrap();
        assert!(
            matches!(
                route,
                InboundRoute::Refuse {
                    reason: RefuseReason::NoRoute
                }
            ),
            "{route:?}"
        );
        let blocked = events(&server, &key, "call_blocked").await;
        assert_eq!(blocked.len(), 1, "{blocked:?}");
        assert_eq!(blocked[0]["data"]["reason"], "no_route");
        assert!(!blocked[0].to_string().contains(caller), "{blocked:?}");

        // A SIP URI only: bridged.
        let sip = "sip:agent@voice.example.com";
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/inbound-config", flow.mid),
                &key,
                json!({"inbound_sip_uri": sip}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let route = services
            .route_inbound_call(caller, &flow.phone_number, Some("b-1"))
            .await
            .unwrap();
        let InboundRoute::Bridge {
            call_id: bridged,
            mid,
            sip_uri,
        } = route
        else {
            panic!("{route:?}")
        };
        assert_eq!((mid.as_str(), sip_uri.as_str()), (flow.mid.as_str(), sip));

        // A voice URL as well: the agent wins.
        let (s, v) = server
            .post(
                &voice_config(&flow.mid),
                &key,
                json!({"voice_url": "wss://8.8.8.8/agent"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let secret = v["signing_secret"].as_str().unwrap().to_owned();
        let route = services
            .route_inbound_call(caller, &flow.phone_number, Some("a-1"))
            .await
            .unwrap();
        let debug = format!("{route:?}");
        assert!(!debug.contains(&secret), "the secret in Debug: {debug}");
        let InboundRoute::Agent {
            call_id: to_agent,
            mid,
            voice_url,
            signing_secret,
            ..
        } = route
        else {
            panic!("{debug}")
        };
        assert_eq!(mid, flow.mid);
        assert_eq!(voice_url, "wss://8.8.8.8/agent");
        assert_eq!(signing_secret, secret);

        // The same INVITE again (same carrier reference): the same call.
        let again = services
            .route_inbound_call(caller, &flow.phone_number, Some("a-1"))
            .await
            .unwrap();
        assert!(
            matches!(&again, InboundRoute::Agent { call_id, .. } if *call_id == to_agent),
            "{again:?}"
        );

        // Both calls are recorded like any inbound call, audited and announced.
        let (s, list) = server
            .get("/v1/agent/calls?direction=inbound", &flow.agent_token)
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let calls = list["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2, "{list}");
        for call in calls {
            assert_eq!(call["status"], "ringing", "{call}");
            assert_eq!(call["from"], caller, "{call}");
        }
        let ids: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&bridged.as_str()) && ids.contains(&to_agent.as_str()));
        let received = events(&server, &key, "call_received").await;
        assert_eq!(received.len(), 2, "{received:?}");
        assert_eq!(received[0]["data"]["route"], "agent");
        assert_eq!(received[1]["data"]["route"], "bridge");
        assert!(
            !received[0].to_string().contains(&secret[6..]),
            "{received:?}"
        );
        let (s, deliveries) = server
            .get(
                &format!("{}/{}/deliveries", common::mid_webhooks(&flow.mid), hook.id),
                &key,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{deliveries}");
        let announced = deliveries["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["event"] == "call.inbound")
            .count();
        assert_eq!(announced, 2, "{deliveries}");

        // Suspended by its customer (a kill-switch): not active, audited.
        let (s, v) = server
            .post(
                &format!("/v1/mobile-identities/{}/suspend", flow.mid),
                &key,
                json!({"reason": "stop"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let route = services
            .route_inbound_call(caller, &flow.phone_number, Some("k-1"))
            .await
            .unwrap();
        assert!(
            matches!(
                route,
                InboundRoute::Refuse {
                    reason: RefuseReason::NotActive
                }
            ),
            "{route:?}"
        );
        let blocked = events(&server, &key, "call_blocked").await;
        assert_eq!(blocked.len(), 2, "{blocked:?}");
        assert_eq!(blocked[0]["data"]["reason"], "kill_switch");

        // Released: the number belongs to no MID any more.
        let (s, _) = server
            .post(
                &format!("/v1/mobile-identities/{}/release", flow.mid),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let route = services
            .route_inbound_call(caller, &flow.phone_number, Some("r-1"))
            .await
            .unwrap();
        assert!(
            matches!(
                route,
                InboundRoute::Refuse {
                    reason: RefuseReason::NotFound
                }
            ),
            "{route:?}"
        );

        // Malformed input is an error, not a routing decision.
        let err = services
            .route_inbound_call("not a number", &flow.phone_number, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_from");
        server.stop().await;
    }
}
