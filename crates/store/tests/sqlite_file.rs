//! How the embedded SQLite file is written: checkpoints off the write path, temporary data
//! in memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use ami_store::{Engine, commit};

fn file_size(url: &str) -> u64 {
    let path = url.trim_start_matches("sqlite://");
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test]
async fn committed_pages_reach_the_database_file_without_a_writer_checkpoint() {
    let f = common::fixture(Engine::Sqlite).await;
    let before = file_size(&f.url);
    let mut tx = f.store.begin().await.unwrap();
    let value = "x".repeat(1000);
    for i in 0..2000 {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)")
            .bind(format!("bulk-{i}"))
            .bind(value.as_str())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    commit(tx).await.unwrap();
    // Two megabytes is far below the writer's own checkpoint threshold: only the
    // checkpointer can have copied them out of the WAL.
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_size(&f.url) < before + 1_500_000 {
        assert!(
            Instant::now() < deadline,
            "the database file stayed at {} bytes",
            file_size(&f.url)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f.close().await;
}

async fn temp_store(conn: &mut ami_store::Conn) -> i64 {
    let (mode,): (i64,) = sqlx::query_as("PRAGMA temp_store")
        .fetch_one(conn)
        .await
        .unwrap();
    mode
}

#[tokio::test]
async fn statement_journals_and_temporary_tables_stay_in_memory() {
    let f = common::fixture(Engine::Sqlite).await;
    let mut tx = f.store.begin().await.unwrap();
    assert_eq!(temp_store(&mut tx).await, 2, "temp_store = MEMORY");
    commit(tx).await.unwrap();
    let mut reader = f.store.reader().await.unwrap();
    assert_eq!(temp_store(&mut reader).await, 2, "temp_store = MEMORY");
    drop(reader);
    f.close().await;
}
