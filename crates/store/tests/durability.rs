//! The store's durability mode reaches every connection that writes: SQLite's `synchronous`
//! on the pool's writer and on the direct writer, PostgreSQL's `synchronous_commit` on the
//! pool; and in full mode a direct commit has synced the WAL by the time it returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;

use ami_sqlite_wal::wal_syncs_on_this_thread;
use ami_store::{Arg, Durability, Engine, Store, commit};

const MODES: [Durability; 2] = [Durability::Normal, Durability::Full];

/// `PRAGMA synchronous`: 1 is NORMAL, 2 is FULL.
fn sqlite_synchronous(durability: Durability) -> i64 {
    match durability {
        Durability::Normal => 1,
        Durability::Full => 2,
    }
}

#[tokio::test]
async fn sqlite_writers_have_the_synchronous_setting_of_the_mode() {
    for durability in MODES {
        let f = common::fixture_with(Engine::Sqlite, durability).await;
        let expected = sqlite_synchronous(durability);

        let mut pooled = f.store.begin().await.unwrap();
        let (on_pool_writer,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&mut *pooled)
            .await
            .unwrap();
        commit(pooled).await.unwrap();
        assert_eq!(
            on_pool_writer, expected,
            "{durability:?}: the pool's writer"
        );

        let mut direct = f.store.begin_write().await.unwrap();
        assert!(matches!(direct, ami_store::WriteTx::Direct(_)));
        let on_direct_writer: i64 = direct
            .db()
            .fetch_one("PRAGMA synchronous", &[])
            .await
            .unwrap()
            .get(0)
            .unwrap();
        direct.commit().await.unwrap();
        assert_eq!(
            on_direct_writer, expected,
            "{durability:?}: the direct writer"
        );
        f.close().await;
    }
}

async fn insert(store: &Store, key: i64) {
    let mut tx = store.begin_write().await.unwrap();
    tx.db()
        .execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2)",
            &[Arg::from(key.to_string().as_str()), Arg::from("v")],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The WAL header's checkpoint sequence: SQLite adds one each time the WAL restarts from
/// its start, and the first commit after a restart syncs the new header in either mode.
fn wal_restarts(wal: &str) -> u32 {
    let mut header = [0u8; 16];
    std::fs::File::open(wal)
        .unwrap()
        .read_exact(&mut header)
        .unwrap();
    u32::from_be_bytes([header[12], header[13], header[14], header[15]])
}

/// A direct transaction runs in the caller's thread (a current-thread runtime here), so the
/// VFS's per-thread count is this test's commits and nothing else's.
#[tokio::test]
async fn a_direct_commit_syncs_the_wal_before_it_returns_in_full_mode_only() {
    const COMMITS: u64 = 20;
    for durability in MODES {
        let f = common::fixture_with(Engine::Sqlite, durability).await;
        let wal = format!("{}-wal", f.url.trim_start_matches("sqlite://"));
        insert(&f.store, -1).await;
        let restarts_before = wal_restarts(&wal);
        let mut syncs = 0;
        for key in 0..COMMITS {
            let before = wal_syncs_on_this_thread();
            insert(&f.store, key as i64).await;
            let synced = wal_syncs_on_this_thread() - before;
            if durability == Durability::Full {
                assert!(synced >= 1, "full: commit {key} returned unsynced");
            }
            syncs += synced;
        }
        let restarts = u64::from(wal_restarts(&wal) - restarts_before);
        match durability {
            // The checkpoint task may restart the WAL between two commits; nothing else syncs.
            Durability::Normal => assert!(
                syncs <= restarts,
                "normal: {syncs} syncs over {COMMITS} commits and {restarts} WAL restarts"
            ),
            Durability::Full => assert!(syncs >= COMMITS, "full: {syncs} syncs"),
        }
        f.close().await;
    }
}

async fn synchronous_commit(store: &Store) -> (String, String) {
    let mut reader = store.reader().await.unwrap();
    let (pooled,): (String,) = sqlx::query_as("SHOW synchronous_commit")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    drop(reader);
    let mut tx = store.begin_write().await.unwrap();
    let writing: String = tx
        .db()
        .fetch_one("SHOW synchronous_commit", &[])
        .await
        .unwrap()
        .get(0)
        .unwrap();
    tx.commit().await.unwrap();
    (pooled, writing)
}

/// Normal turns the flush wait off; full raises `off` to `on` and keeps any stronger
/// setting the database already has (an operator's wait for standbys).
#[tokio::test]
async fn postgres_connections_have_the_synchronous_commit_of_the_mode() {
    if !common::engines().contains(&Engine::Postgres) {
        return;
    }
    let cases = [
        (None, Durability::Normal, "off"),
        (None, Durability::Full, "on"),
        (Some("off"), Durability::Full, "on"),
        (Some("remote_apply"), Durability::Full, "remote_apply"),
        (Some("remote_apply"), Durability::Normal, "off"),
    ];
    for (database_setting, durability, expected) in cases {
        let url = common::fresh_pg_database().await;
        if let Some(setting) = database_setting {
            use sqlx::Connection;
            let name = url.rsplit_once('/').unwrap().1;
            let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(&format!(
                "ALTER DATABASE \"{name}\" SET synchronous_commit = {setting}"
            ))
            .execute(&mut admin)
            .await
            .unwrap();
            admin.close().await.unwrap();
        }
        let store = common::open_with(&url, durability).await;
        let (pooled, writing) = synchronous_commit(&store).await;
        let case = format!("{durability:?} over a database set to {database_setting:?}");
        assert_eq!(pooled, expected, "{case}: a pooled connection");
        assert_eq!(writing, expected, "{case}: a write transaction");
        store.close().await;
        common::drop_pg_database(&url).await;
    }
}
