//! Embedded, ordered migrations per engine, recorded in `schema_migrations`.

use sqlx::AnyPool;

use crate::{Engine, Result};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, include_str!("../migrations/sqlite/0002_operations.sql")),
    (3, include_str!("../migrations/sqlite/0003_calls.sql")),
    (4, include_str!("../migrations/sqlite/0004_webhooks.sql")),
    (
        5,
        include_str!("../migrations/sqlite/0005_lean_send_path.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_audit_by_chain.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_idempotency_sweep.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/0008_fenced_dispatch.sql"),
    ),
    (9, include_str!("../migrations/sqlite/0009_demo_pool.sql")),
    (
        10,
        include_str!("../migrations/sqlite/0010_carrier_references.sql"),
    ),
    (
        11,
        include_str!("../migrations/sqlite/0011_voice_config.sql"),
    ),
    (12, include_str!("../migrations/sqlite/0012_kyc.sql")),
    (
        13,
        include_str!("../migrations/sqlite/0013_number_capabilities.sql"),
    ),
];
const POSTGRES: &[(i64, &str)] = &[
    (
        1,
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        include_str!("../migrations/postgres/0002_operations.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_calls.sql")),
    (4, include_str!("../migrations/postgres/0004_webhooks.sql")),
    (
        5,
        include_str!("../migrations/postgres/0005_lean_send_path.sql"),
    ),
    (
        6,
        include_str!("../migrations/postgres/0006_audit_by_chain.sql"),
    ),
    (
        7,
        include_str!("../migrations/postgres/0007_idempotency_sweep.sql"),
    ),
    (
        8,
        include_str!("../migrations/postgres/0008_fenced_dispatch.sql"),
    ),
    (9, include_str!("../migrations/postgres/0009_demo_pool.sql")),
    (
        10,
        include_str!("../migrations/postgres/0010_carrier_references.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/0011_voice_config.sql"),
    ),
    (12, include_str!("../migrations/postgres/0012_kyc.sql")),
    (
        13,
        include_str!("../migrations/postgres/0013_number_capabilities.sql"),
    ),
];

/// Where a database stands against this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub pending: Vec<i64>,
    pub unknown: Vec<i64>,
}

pub(crate) async fn status(pool: &AnyPool, engine: Engine) -> Result<Status> {
    let steps = match engine {
        Engine::Sqlite => SQLITE,
        Engine::Postgres => POSTGRES,
    };
    // A database never migrated has no table yet: everything is pending.
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    Ok(Status {
        pending: steps
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| !applied.contains(v))
            .collect(),
        unknown: applied
            .iter()
            .copied()
            .filter(|v| !steps.iter().any(|(known, _)| known == v))
            .collect(),
    })
}

/// Applies what is missing; returns the versions applied now.
pub(crate) async fn run(pool: &AnyPool, engine: Engine) -> Result<Vec<i64>> {
    let steps = match engine {
        Engine::Sqlite => SQLITE,
        Engine::Postgres => POSTGRES,
    };
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let mut applied = Vec::new();
    for (version, sql) in steps {
        let mut tx = match engine {
            Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => pool.begin().await?,
        };
        if engine == Engine::Postgres {
            // Replicas starting together migrate one at a time.
            sqlx::query("SELECT pg_advisory_xact_lock(7274730001)")
                .execute(&mut *tx)
                .await?;
        }
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_none() {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(ami_core::time::now_ms())
                .execute(&mut *tx)
                .await?;
            applied.push(*version);
        }
        tx.commit().await?;
    }
    Ok(applied)
}
