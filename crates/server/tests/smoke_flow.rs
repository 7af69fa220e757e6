//! The six contracting steps end to end, on every engine.

mod common;

use common::{ADMIN_KEY, TestServer, engines};
use reqwest::StatusCode;

#[tokio::test]
async fn six_steps_then_agent_self() {
    for engine in engines() {
        let server = TestServer::start(engine).await;
        let (account, key) = server.customer("Acme").await;
        let flow = server.provision(&key).await;
        let (s, me) = server.get("/v1/agent/self", &flow.agent_token).await;
        assert_eq!(s, StatusCode::OK, "{engine:?} {me}");
        assert_eq!(me["mobile_identity_id"], flow.mid.as_str());
        assert_eq!(me["customer_id"], account.as_str());
        assert_eq!(me["status"], "active");
        assert!(me.get("agent_token").is_none());
        let (s, req) = server
            .get(&format!("/v1/sim-requests/{}", flow.sim_request), &key)
            .await;
        assert_eq!(
            (s, req["status"].as_str()),
            (StatusCode::OK, Some("active"))
        );
        let (s, events) = server.get("/v1/admin/events?limit=1000", ADMIN_KEY).await;
        assert_eq!(s, StatusCode::OK);
        assert!(events["count"].as_u64().unwrap() > 10, "{engine:?}");
        server.stop().await;
    }
}
