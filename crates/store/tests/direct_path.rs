//! The fast paths (`WriteTx`, `ReadConn`, on SQLite direct connections in the caller's
//! thread) keep the store's guarantees: atomic transactions, one writer at a time with the
//! pooled writers, committed data visible to every reader.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ami_store::{Arg, Db, Engine, commit};

async fn counter(db: impl Into<Db<'_>>) -> Option<i64> {
    let rows = db
        .into()
        .fetch(
            "SELECT value FROM settings WHERE key = $1",
            &[Arg::from("counter")],
        )
        .await
        .unwrap();
    rows.first()
        .map(|r| r.get::<String>(0).unwrap().parse().unwrap())
}

async fn set_counter(db: impl Into<Db<'_>>, value: i64) {
    db.into()
        .execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Arg::from("counter"), Arg::from(value.to_string().as_str())],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_uncommitted_write_transaction_changes_nothing_and_a_committed_one_is_seen() {
    for engine in common::engines() {
        let f = common::fixture(engine).await;
        {
            let mut tx = f.store.begin_write().await.unwrap();
            set_counter(tx.db(), 1).await;
            assert_eq!(counter(tx.db()).await, Some(1), "{engine:?}: own write");
        }
        let mut read = f.store.read_conn().await.unwrap();
        assert_eq!(counter(&mut read).await, None, "{engine:?}: rolled back");

        let mut tx = f.store.begin_write().await.unwrap();
        set_counter(tx.db(), 2).await;
        tx.commit().await.unwrap();
        assert_eq!(counter(&mut read).await, Some(2), "{engine:?}: fast reader");
        let mut pooled = f.store.reader().await.unwrap();
        assert_eq!(
            counter(&mut pooled).await,
            Some(2),
            "{engine:?}: pooled reader"
        );
        drop((read, pooled));
        f.close().await;
    }
}

/// SQLite has one writer; PostgreSQL writers run at once and lock rows instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_and_pooled_sqlite_writers_take_turns_without_losing_an_update() {
    let f = common::fixture(Engine::Sqlite).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            // Read, yield, write: two writers inside at once would lose an increment.
            if i % 2 == 0 {
                let mut tx = store.begin_write().await.unwrap();
                let n = counter(tx.db()).await.unwrap_or(0);
                tokio::task::yield_now().await;
                set_counter(tx.db(), n + 1).await;
                tx.commit().await.unwrap();
            } else {
                let mut tx = store.begin().await.unwrap();
                let n = counter(&mut tx).await.unwrap_or(0);
                tokio::task::yield_now().await;
                set_counter(&mut tx, n + 1).await;
                commit(tx).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut read = f.store.read_conn().await.unwrap();
    assert_eq!(counter(&mut read).await, Some(40));
    drop(read);
    f.close().await;
}

/// The direct writer keeps the pool's write connection between its transactions; a pooled
/// writer, and closing the store, must not wait for another direct transaction to free it.
#[tokio::test]
async fn the_write_connection_the_direct_writer_keeps_is_given_back_when_asked() {
    let f = common::fixture(Engine::Sqlite).await;
    let limit = std::time::Duration::from_secs(5);
    let mut tx = f.store.begin_write().await.unwrap();
    set_counter(tx.db(), 1).await;
    tx.commit().await.unwrap();
    let mut pooled = tokio::time::timeout(limit, f.store.begin())
        .await
        .expect("a pooled writer waited for the direct writer's kept connection")
        .unwrap();
    set_counter(&mut pooled, 2).await;
    commit(pooled).await.unwrap();
    let mut tx = f.store.begin_write().await.unwrap();
    assert_eq!(counter(tx.db()).await, Some(2));
    tx.commit().await.unwrap();
    tokio::time::timeout(limit, f.close())
        .await
        .expect("closing waited for the direct writer's kept connection");
}

/// A worker still writing while the server stops: closing the store must not wait for the
/// write connection that worker's transactions take again and keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_closes_while_a_direct_writer_keeps_writing() {
    let f = common::fixture(Engine::Sqlite).await;
    let store = f.store.clone();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let seen = progress.clone();
    let writer = tokio::spawn(async move {
        let mut written = 0;
        while let Ok(mut tx) = store.begin_write().await {
            set_counter(tx.db(), written).await;
            if tx.commit().await.is_err() {
                break;
            }
            written += 1;
            seen.store(written, std::sync::atomic::Ordering::SeqCst);
        }
        written
    });
    // The writer is under way, and keeps the write connection between its transactions.
    while progress.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(10), f.store.close())
        .await
        .expect("closing waited for the connection a running direct writer keeps");
    let written = tokio::time::timeout(std::time::Duration::from_secs(10), writer)
        .await
        .expect("the direct writer stopped once the store was closed")
        .unwrap();
    assert!(written > 0, "the writer never wrote");
}

#[tokio::test]
async fn a_duplicate_key_on_the_fast_path_is_a_unique_violation() {
    for engine in common::engines() {
        let f = common::fixture(engine).await;
        let mut tx = f.store.begin_write().await.unwrap();
        let insert = "INSERT INTO settings (key, value) VALUES ($1, $2)";
        let args = [Arg::from("k"), Arg::from("v")];
        tx.db().execute(insert, &args).await.unwrap();
        let e = tx.db().execute(insert, &args).await.unwrap_err();
        assert!(e.is_unique_violation(), "{engine:?}: {e}");
        drop(tx);
        f.close().await;
    }
}

#[tokio::test]
async fn a_fast_sqlite_reader_cannot_write() {
    let f = common::fixture(Engine::Sqlite).await;
    let mut read = f.store.read_conn().await.unwrap();
    let refused = read
        .db()
        .execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2)",
            &[Arg::from("k"), Arg::from("v")],
        )
        .await;
    assert!(refused.is_err(), "query_only");
    drop(read);
    f.close().await;
}
