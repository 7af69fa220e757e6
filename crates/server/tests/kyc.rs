//! The representative's identity check (KYC) over HTTP, on both engines: initiation, the
//! verification page and its one submission with the ID document's images (type and size
//! checks), the operator's verify / reject / purge, the account webhooks, the
//! `kyc_required` contract gate, tenancy, and the purge of documents after the retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::kyc::{
    IDENTITY, accepted_request, form, jpeg, page, path_of, png, request_with_customer_data, submit,
    submitted_kyc,
};
use common::receiver::{Receiver, Reply};
use common::{ADMIN_KEY, LOOPBACK, TestServer, customer_data, engines, register_webhook};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn count(server: &TestServer, sql: &str, id: &str) -> i64 {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn contract(
    server: &TestServer,
    key: &str,
    offer: &str,
    customer: &str,
) -> (StatusCode, Value) {
    server
        .post(
            "/v1/contracts",
            key,
            json!({"offer_id": offer, "customer_id": customer}),
        )
        .await
}

#[tokio::test]
async fn the_whole_kyc_flow_gates_the_contract_and_fires_the_webhooks() {
    for engine in engines() {
        let server = TestServer::start_with(
            engine,
            &[
                LOOPBACK,
                ("AMI_KYC_REQUIRED", "true"),
                ("AMI_KYC_MAX_DOCUMENT_BYTES", "4096"),
            ],
        )
        .await;
        let receiver = Receiver::start(Reply::ok()).await;
        let (account, key) = server.customer("Verified Co").await;
        register_webhook(
            &server.remote(),
            &key,
            "/v1/account/webhooks",
            &receiver.url("/hooks"),
            json!(["kyc.submitted", "kyc.verified", "kyc.rejected"]),
        )
        .await;

        // Before the customer data there is nobody to verify.
        let (req, offer) = accepted_request(&server, &key).await;
        let initiate = format!("/v1/sim-requests/{req}/kyc/initiate");
        let (s, v) = server.post(&initiate, &key, json!({})).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("customer_data_missing")),
            "{engine:?} {v}"
        );
        let (s, v) = server
            .post(
                &format!("/v1/sim-requests/{req}/customer-data"),
                &key,
                customer_data(),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        let customer = v["customer"]["id"].as_str().unwrap().to_owned();
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req}/kyc"), &key)
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("kyc_not_found")),
            "{engine:?} {v}"
        );

        // With kyc_required, no contract before a KYC exists.
        let (s, v) = contract(&server, &key, &offer, &customer).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("kyc_required")),
            "{engine:?} {v}"
        );

        let (s, first) = server.post(&initiate, &key, json!({})).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {first}");
        assert_eq!(first["status"], "pending", "{engine:?} {first}");
        assert_eq!(first["already_existed"], false, "{engine:?} {first}");
        assert!(
            first["kyc_id"].as_str().unwrap().starts_with("kyc_"),
            "{first}"
        );
        assert!(
            first["expires_at"].as_str().unwrap().ends_with('Z'),
            "{first}"
        );
        assert_eq!(first["notification"]["channel"], "manual", "{first}");
        let kyc_id = first["kyc_id"].as_str().unwrap().to_owned();
        let first_path = path_of(&first["verification_url"]);
        let token = first_path.trim_start_matches("/kyc/").to_owned();
        // Stored as its hash only.
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM kyc_checks WHERE token_hash = $1",
                &ami_core::secret::hash(&token)
            )
            .await,
            1,
            "{engine:?}"
        );
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM kyc_checks WHERE token_hash = $1",
                &token
            )
            .await,
            0,
            "{engine:?}"
        );

        // Again: the same check, with a fresh link; the old link opens nothing.
        let (s, again) = server.post(&initiate, &key, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {again}");
        assert_eq!(again["already_existed"], true, "{engine:?} {again}");
        assert_eq!(again["kyc_id"], kyc_id.as_str(), "{engine:?} {again}");
        let link = path_of(&again["verification_url"]);
        assert_ne!(link, first_path);
        let (s, _, text) = page(&server, &first_path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{engine:?} {text}");

        let (s, v) = contract(&server, &key, &offer, &customer).await;
        assert_eq!(
            (s, v["error"].as_str(), v["status"].as_str()),
            (
                StatusCode::CONFLICT,
                Some("kyc_not_verified"),
                Some("pending")
            ),
            "{engine:?} {v}"
        );

        // The page: the form, no script, no framing.
        let (s, headers, html) = page(&server, &link).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {html}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("script-src"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(html.contains("enctype=\"multipart/form-data\""), "{html}");
        assert!(
            html.contains(&format!("action=\"{link}/submit\"")),
            "{html}"
        );
        assert!(
            html.contains("Ana Garcia") && html.contains("Acme Robotics SL"),
            "{html}"
        );
        assert!(
            html.contains("name=\"document_front\"") && html.contains("name=\"document_back\""),
            "{html}"
        );

        // Refusals change nothing.
        let gif = b"GIF89a\x01\x00\x01\x00".repeat(20);
        let refusals: Vec<(Vec<u8>, StatusCode, &str)> = vec![
            (
                form(
                    IDENTITY,
                    &[("document_front", &gif), ("document_back", &png())],
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_document_type",
            ),
            (
                form(
                    IDENTITY,
                    &[
                        ("document_front", &jpeg(900)),
                        ("document_back", &jpeg(5000)),
                    ],
                ),
                StatusCode::PAYLOAD_TOO_LARGE,
                "document_too_large",
            ),
            (
                form(IDENTITY, &[("document_front", &jpeg(900))]),
                StatusCode::BAD_REQUEST,
                "missing_fields",
            ),
            (
                form(
                    &[
                        ("full_name", "Ana Ruiz"),
                        ("date_of_birth", "1985-02-30"),
                        ("nationality", "ES"),
                        ("document_type", "id_card"),
                        ("document_number", "X1"),
                    ],
                    &[("document_front", &jpeg(900)), ("document_back", &png())],
                ),
                StatusCode::BAD_REQUEST,
                "invalid_date_of_birth",
            ),
            (
                form(
                    &[
                        ("full_name", "Ana Ruiz"),
                        ("date_of_birth", "1985-02-03"),
                        ("nationality", "ES"),
                        ("document_type", "library_card"),
                        ("document_number", "X1"),
                    ],
                    &[("document_front", &jpeg(900)), ("document_back", &png())],
                ),
                StatusCode::BAD_REQUEST,
                "invalid_document_type",
            ),
            (
                form(
                    IDENTITY,
                    &[
                        ("document_front", &jpeg(900)),
                        ("document_back", &png()),
                        ("extra", b"x"),
                    ],
                ),
                StatusCode::BAD_REQUEST,
                "unknown_field",
            ),
            // Beyond two files and the 64 KiB the form may add.
            (
                jpeg(2 * 4096 + 64 * 1024 + 1),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                b"--nope\r\n".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_form",
            ),
        ];
        for (body, status, code) in refusals {
            let (s, text) = submit(&server, &link, body).await;
            assert_eq!(s, status, "{engine:?} {code}: {text}");
            assert!(text.contains(code), "{engine:?} {code}: {text}");
            assert!(!text.to_lowercase().contains("<script"), "{text}");
        }
        let res = server
            .http
            .post(format!("{}{link}/submit", server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("full_name=Ana")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{engine:?}"
        );
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req}/kyc"), &key)
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("pending")),
            "{engine:?} {v}"
        );
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM kyc_documents WHERE kyc_id = $1",
                &kyc_id
            )
            .await,
            0,
            "{engine:?}"
        );

        // The one submission.
        let front = jpeg(900);
        let back = png();
        let (s, text) = submit(
            &server,
            &link,
            form(
                IDENTITY,
                &[("document_front", &front), ("document_back", &back)],
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {text}");
        assert!(text.contains("received"), "{engine:?} {text}");
        assert!(!text.contains("<form"), "{engine:?} {text}");
        let (s, text) = submit(
            &server,
            &link,
            form(
                IDENTITY,
                &[("document_front", &front), ("document_back", &back)],
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{engine:?} {text}");
        assert!(text.contains("kyc_already_submitted"), "{engine:?} {text}");
        {
            let mut conn = server.running.services.store.reader().await.unwrap();
            let stored: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
                "SELECT side, media_type, content FROM kyc_documents WHERE kyc_id = $1 ORDER BY side",
            )
            .bind(&kyc_id)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            assert_eq!(
                stored,
                vec![
                    ("back".to_owned(), "image/png".to_owned(), back.clone()),
                    ("front".to_owned(), "image/jpeg".to_owned(), front.clone()),
                ],
                "{engine:?}"
            );
        }
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req}/kyc"), &key)
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("submitted")),
            "{engine:?} {v}"
        );
        assert!(
            v.get("identity").is_none(),
            "the customer sees no identity data: {v}"
        );
        let (s, v) = contract(&server, &key, &offer, &customer).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("kyc_not_verified")),
            "{engine:?} {v}"
        );

        // The operator's queue and decision.
        let (s, queue) = server
            .get("/v1/admin/kyc?status=submitted", ADMIN_KEY)
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {queue}");
        let item = queue["kyc"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kyc_id"] == kyc_id.as_str())
            .expect("the submitted check is queued")
            .clone();
        assert_eq!(item["account_id"], account.as_str());
        assert_eq!(item["identity"]["full_name"], "Ana Ruiz");
        assert_eq!(item["identity"]["nationality"], "ES");
        assert_eq!(item["documents"].as_array().unwrap().len(), 2, "{item}");
        let (s, v) = server.get("/v1/admin/kyc?status=nonsense", ADMIN_KEY).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_status")),
            "{v}"
        );
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req}/kyc"), ADMIN_KEY)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        let (s, v) = server.get("/v1/admin/kyc", &key).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

        let (s, v) = server
            .post(
                &format!("/v1/admin/kyc/{kyc_id}/verify"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("verified")),
            "{engine:?} {v}"
        );
        let (s, v) = server
            .post(
                &format!("/v1/admin/kyc/{kyc_id}/reject"),
                ADMIN_KEY,
                json!({"reason": "late"}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::CONFLICT, Some("kyc_not_submitted")),
            "{engine:?} {v}"
        );
        let (s, v) = server
            .post(
                &format!("/v1/admin/kyc/{}/verify", ami_core::id::new_id("kyc")),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("kyc_not_found")),
            "{v}"
        );
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req}/kyc"), &key)
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("verified")),
            "{engine:?} {v}"
        );

        // Verified: the contract goes through.
        let (s, v) = contract(&server, &key, &offer, &customer).await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");

        // A second request: rejected (with a reason), which keeps the gate shut, and a new
        // check may start.
        let (req2, offer2, customer2) = request_with_customer_data(&server, &key).await;
        let kyc2 = submitted_kyc(&server, &key, &req2).await;
        let (s, v) = server
            .post(
                &format!("/v1/admin/kyc/{kyc2}/reject"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("missing_reason")),
            "{v}"
        );
        let (s, v) = server
            .post(
                &format!("/v1/admin/kyc/{kyc2}/reject"),
                ADMIN_KEY,
                json!({"reason": "document unreadable"}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("rejected")),
            "{engine:?} {v}"
        );
        let (s, v) = contract(&server, &key, &offer2, &customer2).await;
        assert_eq!(
            (s, v["error"].as_str(), v["status"].as_str()),
            (
                StatusCode::CONFLICT,
                Some("kyc_not_verified"),
                Some("rejected")
            ),
            "{engine:?} {v}"
        );
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req2}/kyc"), &key)
            .await;
        assert_eq!(v["reason"], "document unreadable", "{engine:?} {v}");
        assert_eq!(s, StatusCode::OK);
        let (s, v) = server
            .post(
                &format!("/v1/sim-requests/{req2}/kyc/initiate"),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{engine:?} {v}");
        assert_ne!(v["kyc_id"], kyc2.as_str());

        // The account webhook heard each step, about the account.
        receiver
            .wait_until(20, "kyc events", |seen| {
                let events: Vec<String> = seen.iter().map(|c| c.event()).collect();
                events.iter().filter(|e| *e == "kyc.submitted").count() == 2
                    && events.iter().any(|e| e == "kyc.verified")
                    && events.iter().any(|e| e == "kyc.rejected")
            })
            .await;
        for c in receiver.requests() {
            let body = c.json();
            assert_eq!(body["account_id"], account.as_str(), "{body}");
            assert!(body.get("mid").is_none(), "{body}");
            assert!(
                body["data"]["kyc_id"].as_str().unwrap().starts_with("kyc_"),
                "{body}"
            );
            assert!(
                !body.to_string().contains("12345678Z"),
                "no identity data in webhooks: {body}"
            );
        }

        // Audited, without the identity data.
        let (s, events) = server
            .get("/v1/events?entity_type=kyc&limit=100", &key)
            .await;
        assert_eq!(s, StatusCode::OK, "{events}");
        let actions: Vec<&str> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for action in [
            "kyc_initiated",
            "kyc_link_reissued",
            "kyc_submitted",
            "kyc_verified",
            "kyc_rejected",
        ] {
            assert!(
                actions.contains(&action),
                "{engine:?} {action} missing from {actions:?}"
            );
        }
        let all = events.to_string();
        assert!(
            !all.contains("12345678Z") && !all.contains("1985-04-12"),
            "{all}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn another_account_cannot_see_or_start_a_foreign_kyc() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (_, key_a) = server.customer("Tenant A").await;
        let (_, key_b) = server.customer("Tenant B").await;
        let (req_a, _, _) = request_with_customer_data(&server, &key_a).await;
        submitted_kyc(&server, &key_a, &req_a).await;
        let random = ami_core::id::new_id("simreq");
        for (method, suffix) in [(Method::GET, "kyc"), (Method::POST, "kyc/initiate")] {
            let body = (method == Method::POST).then(|| json!({}));
            let (s_foreign, foreign) = server
                .call(
                    method.clone(),
                    &format!("/v1/sim-requests/{req_a}/{suffix}"),
                    Some(&key_b),
                    body.clone(),
                )
                .await;
            let (s_random, missing) = server
                .call(
                    method.clone(),
                    &format!("/v1/sim-requests/{random}/{suffix}"),
                    Some(&key_b),
                    body,
                )
                .await;
            assert_eq!(
                s_foreign,
                StatusCode::NOT_FOUND,
                "{engine:?} {method} {suffix}: {foreign}"
            );
            assert_eq!(
                s_random,
                StatusCode::NOT_FOUND,
                "{engine:?} {method} {suffix}"
            );
            assert_eq!(foreign, missing, "{engine:?} {method} {suffix}");
            assert_eq!(foreign["error"], "sim_request_not_found");
        }
        // B's attempt started nothing: A's check is still the only one, still submitted.
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{req_a}/kyc"), &key_a)
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("submitted")),
            "{engine:?} {v}"
        );
        assert_eq!(
            count(
                &server,
                "SELECT COUNT(*) FROM kyc_checks WHERE sim_request_id = $1",
                &req_a
            )
            .await,
            1
        );
        // A token that opens nothing: the same 404 page as any other.
        let (s1, _, p1) = page(
            &server,
            &format!("/kyc/{}", ami_core::secret::new_link_token()),
        )
        .await;
        let (s2, _, p2) = page(&server, "/kyc/not-a-token").await;
        assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
        assert_eq!(p1, p2);
        server.stop().await;
    }
}

#[tokio::test]
async fn documents_are_purged_after_the_retention_and_links_expire() {
    for engine in engines() {
        let server = TestServer::start_with(engine, &[("AMI_KYC_RETENTION_DAYS", "30")]).await;
        let (_, key) = server.customer("Retained Co").await;
        let (decided_req, _, _) = request_with_customer_data(&server, &key).await;
        let decided = submitted_kyc(&server, &key, &decided_req).await;
        let (waiting_req, _, _) = request_with_customer_data(&server, &key).await;
        let waiting = submitted_kyc(&server, &key, &waiting_req).await;
        let (s, v) = server
            .post(
                &format!("/v1/admin/kyc/{decided}/verify"),
                ADMIN_KEY,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // An unsubmitted link, to see it expire.
        let (late_req, _, _) = request_with_customer_data(&server, &key).await;
        let (s, late) = server
            .post(
                &format!("/v1/sim-requests/{late_req}/kyc/initiate"),
                &key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{late}");
        let late_link = path_of(&late["verification_url"]);

        // Within the retention: nothing goes.
        let (s, v) = server
            .post("/v1/admin/kyc/purge", ADMIN_KEY, json!({}))
            .await;
        assert_eq!(
            (s, v["purged"].as_i64()),
            (StatusCode::OK, Some(0)),
            "{engine:?} {v}"
        );
        let docs = "SELECT COUNT(*) FROM kyc_documents WHERE kyc_id = $1";
        assert_eq!(count(&server, docs, &decided).await, 2, "{engine:?}");

        server.clock.advance_days(31);
        // The link outlived its 7 days.
        let (s, _, text) = page(&server, &late_link).await;
        assert_eq!(s, StatusCode::GONE, "{engine:?} {text}");
        assert!(
            text.contains("expired") && !text.contains("<form"),
            "{text}"
        );
        let (s, text) = submit(
            &server,
            &late_link,
            form(
                IDENTITY,
                &[("document_front", &jpeg(900)), ("document_back", &png())],
            ),
        )
        .await;
        assert_eq!(s, StatusCode::GONE, "{engine:?} {text}");
        assert!(text.contains("kyc_link_expired"), "{text}");

        let (s, v) = server
            .post("/v1/admin/kyc/purge", ADMIN_KEY, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        assert_eq!(v["kyc_ids"], json!([decided]), "{engine:?} {v}");
        assert_eq!(count(&server, docs, &decided).await, 0, "{engine:?}");
        // Undecided checks keep their documents: the operator has not looked yet.
        assert_eq!(count(&server, docs, &waiting).await, 2, "{engine:?}");
        let (s, v) = server
            .get(&format!("/v1/sim-requests/{decided_req}/kyc"), &key)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (v["status"].as_str(), v["documents_purged"].as_bool()),
            (Some("verified"), Some(true)),
            "{engine:?} {v}"
        );
        let (_, queue) = server.get("/v1/admin/kyc?status=verified", ADMIN_KEY).await;
        let item = queue["kyc"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kyc_id"] == decided.as_str())
            .unwrap()
            .clone();
        assert_eq!(item["documents"], json!([]), "{item}");
        assert!(item["identity"]["document_number"].is_null(), "{item}");
        // A second run finds nothing more.
        let (_, v) = server
            .post("/v1/admin/kyc/purge", ADMIN_KEY, json!({}))
            .await;
        assert_eq!(v["purged"], 0, "{engine:?} {v}");
        let (_, events) = server
            .get(
                "/v1/admin/events?action=kyc_documents_purged&limit=100",
                ADMIN_KEY,
            )
            .await;
        assert_eq!(
            events["events"].as_array().unwrap().len(),
            1,
            "{engine:?} {events}"
        );
        server.stop().await;
    }
}
