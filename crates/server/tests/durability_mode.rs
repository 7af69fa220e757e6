//! `durability` reaches the store: `full` makes every connection that writes wait for the
//! disk (SQLite `synchronous = FULL`, PostgreSQL `synchronous_commit = on`), `normal` does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Engine, TestServer, engines};

#[tokio::test]
async fn the_configured_durability_is_the_stores() {
    for engine in engines() {
        for (mode, sqlite, postgres) in [("normal", 1_i64, "off"), ("full", 2, "on")] {
            let server = TestServer::start_with(engine, &[("AMI_DURABILITY", mode)]).await;
            let mut tx = server.running.services.store.begin().await.unwrap();
            match engine {
                Engine::Sqlite => {
                    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    assert_eq!(level, sqlite, "{mode}");
                }
                Engine::Postgres => {
                    let level: String = sqlx::query_scalar("SHOW synchronous_commit")
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    assert_eq!(level, postgres, "{mode}");
                }
            }
            drop(tx);
            server.stop().await;
        }
    }
}
