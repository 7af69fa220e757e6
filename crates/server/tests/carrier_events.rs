//! What the network reports is never lost (docs/durability.md): each event is acknowledged
//! to the network only once it is committed; a batch that fails part-way is applied event by
//! event; an event that cannot be applied even alone is parked for the operator, never
//! dropped; and what the network sends again after a restart (its acknowledgement lost) is
//! applied once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_carrier::{Ack, CarrierEvent, Inbound};
use ami_core::delivery::SmsStatus;
use common::{ADMIN_KEY, Engine, TestServer, engines};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// The network's side: what it sent, and what it was told.
#[derive(Clone, Default)]
struct Network {
    answers: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Network {
    fn send(&self, to: &UnboundedSender<Inbound>, name: &str, event: CarrierEvent) {
        let (answers, name) = (self.answers.clone(), name.to_owned());
        let ack = Ack::new(move |committed| answers.lock().unwrap().push((name, committed)));
        to.send(Inbound { event, ack }).unwrap();
    }

    async fn wait_for(&self, n: usize) -> Vec<(String, bool)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answers = self.answers.lock().unwrap().clone();
            if answers.len() >= n {
                return answers;
            }
            assert!(Instant::now() < deadline, "answered: {answers:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The server's loop that applies carrier events, fed by the test.
fn event_loop(server: &TestServer) -> (UnboundedSender<Inbound>, CancellationToken) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    tokio::spawn(ami_server::workers::carrier_events(
        server.running.services.clone(),
        rx,
        stop.clone(),
    ));
    (tx, stop)
}

fn report(msg_id: &str) -> CarrierEvent {
    CarrierEvent::Sms {
        msg_id: msg_id.to_owned(),
        telco_ref: format!("net-{msg_id}"),
        status: SmsStatus::Delivered,
        error: None,
    }
}

fn inbound(to: &str, body: &str, telco_ref: &str) -> CarrierEvent {
    CarrierEvent::InboundSms {
        from: "+34611000009".into(),
        to: to.to_owned(),
        body: body.to_owned(),
        telco_ref: telco_ref.to_owned(),
    }
}

/// Makes the store refuse an inbound message with the body `poison` and any change to the
/// message `poisoned_id`, as a fault would.
async fn poison(server: &TestServer, poisoned_id: &str) {
    let mut tx = server.running.services.store.begin().await.unwrap();
    let statements = match server.engine {
        Engine::Sqlite => vec![
            "CREATE TRIGGER poison_in BEFORE INSERT ON messages WHEN NEW.body = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
                .to_owned(),
            format!(
                "CREATE TRIGGER poison_up BEFORE UPDATE ON messages WHEN OLD.id = '{poisoned_id}'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            ),
        ],
        Engine::Postgres => vec![
            format!(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN
                   IF (TG_OP = 'INSERT' AND NEW.body = 'poison') OR (TG_OP = 'UPDATE' AND OLD.id = '{poisoned_id}')
                   THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION poison()"
                .to_owned(),
        ],
    };
    for sql in statements {
        sqlx::query(&sql).execute(&mut *tx).await.unwrap();
    }
    ami_store::commit(tx).await.unwrap();
}

async fn cure(server: &TestServer) {
    let mut tx = server.running.services.store.begin().await.unwrap();
    let statements: &[&str] = match server.engine {
        Engine::Sqlite => &["DROP TRIGGER poison_in", "DROP TRIGGER poison_up"],
        Engine::Postgres => &["DROP TRIGGER poison ON messages", "DROP FUNCTION poison()"],
    };
    for sql in statements {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    ami_store::commit(tx).await.unwrap();
}

async fn count(server: &TestServer, sql: &str, arg: &str) -> i64 {
    let mut conn = server.running.services.store.reader().await.unwrap();
    sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn status_of(server: &TestServer, token: &str, id: &str) -> String {
    let (_, m) = server.get(&format!("/v1/agent/sms/{id}"), token).await;
    m["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn events_are_acknowledged_after_commit_parked_when_they_fail_and_applied_once() {
    for engine in engines() {
        // No dispatcher: nothing but the test's events changes the messages.
        let server = TestServer::start_with(engine, &[("AMI_DISPATCH_ENABLED", "false")]).await;
        let (_, key) = server.customer("Network").await;
        let flow = server.provision(&key).await;
        server
            .set_limits(&key, &flow.mid, json!({"rate_per_second": 100}))
            .await;
        let mut ids = Vec::new();
        for to in ["+34611005671", "+34611005672", "+34611005673"] {
            let (s, sms) = server
                .post(
                    "/v1/agent/sms/send",
                    &flow.agent_token,
                    json!({"to": to, "body": "out"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{sms}");
            ids.push(sms["id"].as_str().unwrap().to_owned());
        }
        poison(&server, &ids[1]).await;

        // One batch: three reports (the middle one fails) and three inbound SMS (the middle
        // one fails).
        let network = Network::default();
        let (tx, stop) = event_loop(&server);
        for (name, event) in [
            ("dlr-1", report(&ids[0])),
            ("dlr-2", report(&ids[1])),
            ("dlr-3", report(&ids[2])),
            ("in-1", inbound(&flow.phone_number, "hello", "net-in-1")),
            ("in-2", inbound(&flow.phone_number, "poison", "net-in-2")),
            ("in-3", inbound(&flow.phone_number, "again", "net-in-3")),
        ] {
            network.send(&tx, name, event);
        }
        let answers = network.wait_for(6).await;
        assert!(
            answers.iter().all(|(_, committed)| *committed),
            "{engine:?}: every event is committed or parked: {answers:?}"
        );
        assert_eq!(
            status_of(&server, &flow.agent_token, &ids[0]).await,
            "delivered"
        );
        assert_eq!(
            status_of(&server, &flow.agent_token, &ids[1]).await,
            "queued"
        );
        assert_eq!(
            status_of(&server, &flow.agent_token, &ids[2]).await,
            "delivered"
        );
        let (s, parked) = server
            .get("/v1/admin/carrier-events/parked", ADMIN_KEY)
            .await;
        assert_eq!(s, StatusCode::OK, "{parked}");
        let mut kinds: Vec<(&str, &str)> = parked["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["kind"].as_str().unwrap(), e["subject"].as_str().unwrap()))
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                ("sms_inbound", flow.phone_number.as_str()),
                ("sms_status", ids[1].as_str())
            ],
            "{engine:?} {parked}"
        );
        assert!(
            parked["events"][0]["error"]
                .as_str()
                .unwrap()
                .contains("poisoned"),
            "{parked}"
        );
        assert!(
            !parked.to_string().contains("poison\""),
            "a parked inbound SMS shows no body: {parked}"
        );
        stop.cancel();

        // A restart: a fresh server on the same store. The network never got the answers for
        // two events it had sent (they were committed, then the process died), so it sends
        // them again, with one new event.
        cure(&server).await;
        let restarted = TestServer::start_on(
            engine,
            &server.database_url,
            &[("AMI_DISPATCH_ENABLED", "false")],
        )
        .await;
        let again = Network::default();
        let (tx, stop) = event_loop(&restarted);
        again.send(&tx, "dlr-1", report(&ids[0]));
        again.send(
            &tx,
            "in-1",
            inbound(&flow.phone_number, "hello", "net-in-1"),
        );
        again.send(
            &tx,
            "in-4",
            inbound(&flow.phone_number, "later", "net-in-4"),
        );
        let answers = again.wait_for(3).await;
        assert!(answers.iter().all(|(_, c)| *c), "{answers:?}");
        stop.cancel();

        // The operator retries what was parked, now that its cause is mended.
        for e in parked["events"].as_array().unwrap() {
            let (s, v) = restarted
                .post(
                    &format!(
                        "/v1/admin/carrier-events/parked/{}/retry",
                        e["id"].as_str().unwrap()
                    ),
                    ADMIN_KEY,
                    json!({}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{engine:?} {v}");
        }
        let (_, left) = restarted
            .get("/v1/admin/carrier-events/parked", ADMIN_KEY)
            .await;
        assert_eq!(left["count"], 0, "{engine:?} {left}");

        // Every event applied once.
        assert_eq!(
            status_of(&restarted, &flow.agent_token, &ids[1]).await,
            "delivered"
        );
        for id in &ids {
            assert_eq!(
                count(
                    &restarted,
                    "SELECT COUNT(*) FROM audit_events WHERE action = 'sms_delivered' AND entity_id = $1",
                    id
                )
                .await,
                1,
                "{engine:?} {id}"
            );
        }
        for body in ["hello", "poison", "again", "later"] {
            assert_eq!(
                count(
                    &restarted,
                    "SELECT COUNT(*) FROM messages WHERE direction = 'inbound' AND body = $1",
                    body
                )
                .await,
                1,
                "{engine:?} inbound {body:?}"
            );
        }
        let inbox: Value = restarted
            .get("/v1/agent/sms?direction=inbound", &flow.agent_token)
            .await
            .1;
        assert_eq!(inbox["count"], 4, "{engine:?} {inbox}");
        restarted.stop_replica().await;
        server.stop().await;
    }
}
