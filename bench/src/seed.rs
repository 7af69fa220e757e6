//! Preloads a SQLite store with many MIDs and audit events, straight through SQL, so the
//! benchmarks can show that the cost of an operation does not grow with the data.
//! Seeded events live on their own chain (`bench_seed`); they are filler, not history.

use anyhow::Context;
use sqlx::{Connection, Executor, SqliteConnection};

pub async fn run(path: &str, mids: i64, events: i64, messages: i64) -> anyhow::Result<()> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .context("open the store")?;
    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .await?;
    let now = 1_767_225_600_000_i64;
    let mut tx = conn.begin().await?;
    tx.execute(
        sqlx::query(
            "INSERT INTO accounts (id, name, status, key_hash, key_prefix, created_at)
         VALUES ('acct_seed', 'seed', 'active', 'seed-key-hash', 'amik_live_seed', $1)",
        )
        .bind(now),
    )
    .await?;
    // Ids keep the real shape: prefix, 10 time characters, 20 more.
    tx.execute(sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO numbers (id, phone_number, country, status, mid_id, created_at, updated_at)
         SELECT printf('num_0seed%021d', i), printf('+3471%07d', i), 'ES', 'assigned', printf('mid_0seed%021d', i), $2, $2 FROM n",
    ).bind(mids).bind(now)).await?;
    tx.execute(sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO mobile_identities (id, account_id, number_id, phone_number, country, capabilities, status, limits, created_at, updated_at)
         SELECT printf('mid_0seed%021d', i), 'acct_seed', printf('num_0seed%021d', i), printf('+3471%07d', i), 'ES',
                '[\"sms\",\"voice\"]', 'active', '{}', $2, $2 FROM n",
    ).bind(mids).bind(now)).await?;
    tx.execute(sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO audit_events (id, chain_id, chain_seq, account_id, at, action, actor_type, actor_id,
                                   entity_type, entity_id, mid, data, prev_hash, hash)
         SELECT printf('evt_0seed%021d', i), 'bench_seed', i, 'acct_seed', $2, 'seed', 'system', 'system',
                'mobile_identity', printf('mid_0seed%021d', 1 + i % 100000), NULL, '{}', '', '' FROM n",
    ).bind(events).bind(now)).await?;
    tx.execute(sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO messages (id, account_id, mid_id, direction, from_number, to_number, body, segments, encoding,
                               cost, status, created_at, retry_count, updated_at)
         SELECT printf('msg_0seed%021d', i), 'acct_seed', printf('mid_0seed%021d', 1 + i % 100000), 'outbound',
                '+34710000001', '+34600000002', 'seeded', 1, 'GSM-7', 70000, 'delivered', $2, 0, $2 FROM n",
    ).bind(messages).bind(now)).await?;
    tx.commit().await?;
    println!(
        "{{\"seeded_mids\": {mids}, \"seeded_events\": {events}, \"seeded_messages\": {messages}}}"
    );
    Ok(())
}
