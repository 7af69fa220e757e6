//! The number inventory: available → assigned → quarantined → (after the cooling period) reused.

use crate::page::{self, Page, PageRequest};
use crate::{Conn, Engine, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Number {
    pub id: String,
    pub phone_number: String,
    pub country: String,
    pub status: String,
    pub mid_id: Option<String>,
    pub quarantined_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// `main`, `sandbox` or `demo` (see [`Pool`]).
    pub pool: String,
    /// A JSON list of capabilities; None: everything the country offers.
    pub capabilities: Option<String>,
}

const COLUMNS: &str = "id, phone_number, country, status, mid_id, quarantined_until, created_at, updated_at, pool, capabilities";

/// Which numbers an activation may draw from: tenants the operator's inventory (`Main`),
/// and the sandbox's fictional numbers only for a country the operator stocks none of; the
/// public demo its own numbers, so that it can never take a number a paying customer would get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    Main,
    Sandbox,
    Demo,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Main => "main",
            Pool::Sandbox => "sandbox",
            Pool::Demo => "demo",
        }
    }
}

/// Inserts numbers not already present into the operator's inventory; returns how many
/// were new.
pub async fn insert_many(
    conn: &mut Conn,
    country: &str,
    numbers: &[String],
    now: i64,
) -> Result<u64> {
    insert_rows(conn, Pool::Main, country, numbers, None, now).await
}

/// [`insert_many`] with the capabilities the numbers carry (a JSON list; None: all).
pub async fn insert_with_capabilities(
    conn: &mut Conn,
    country: &str,
    numbers: &[String],
    capabilities: Option<&str>,
    now: i64,
) -> Result<u64> {
    insert_rows(conn, Pool::Main, country, numbers, capabilities, now).await
}

/// Inserts numbers not already present into `pool`; returns how many were new.
pub async fn insert_many_into(
    conn: &mut Conn,
    pool: Pool,
    country: &str,
    numbers: &[String],
    now: i64,
) -> Result<u64> {
    insert_rows(conn, pool, country, numbers, None, now).await
}

async fn insert_rows(
    conn: &mut Conn,
    pool: Pool,
    country: &str,
    numbers: &[String],
    capabilities: Option<&str>,
    now: i64,
) -> Result<u64> {
    // Multi-row statements: one round trip per chunk instead of per number.
    const CHUNK: usize = 200;
    let mut added = 0;
    for chunk in numbers.chunks(CHUNK) {
        let mut sql = String::from(
            "INSERT INTO numbers (id, phone_number, country, status, created_at, updated_at, pool, capabilities) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 2;
            sql.push_str(&format!(
                "(${}, ${}, $1, 'available', $2, $2, $3, $4)",
                b + 5,
                b + 6
            ));
        }
        sql.push_str(" ON CONFLICT (phone_number) DO NOTHING");
        let mut q = sqlx::query(&sql)
            .bind(country)
            .bind(now)
            .bind(pool.as_str())
            .bind(capabilities);
        for n in chunk {
            q = q.bind(ami_core::id::new_id_at("num", now)).bind(n);
        }
        added += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(added)
}

/// How many numbers of `pool` the inventory holds for a country.
pub async fn count_in(conn: &mut Conn, pool: Pool, country: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM numbers WHERE pool = $1 AND country = $2")
            .bind(pool.as_str())
            .bind(country)
            .fetch_one(conn)
            .await?,
    )
}

pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<Number>> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM numbers WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn by_phone(conn: &mut Conn, phone: &str) -> Result<Option<Number>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM numbers WHERE phone_number = $1"
    ))
    .bind(phone)
    .fetch_optional(conn)
    .await?)
}

/// How many numbers of each status there are, over every pool, for one country or all.
pub async fn counts_by_status(
    conn: &mut Conn,
    country: Option<&str>,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT status, COUNT(*) FROM numbers WHERE ($1 IS NULL OR country = $1) GROUP BY status",
    )
    .bind(country)
    .fetch_all(conn)
    .await?)
}

pub async fn list(
    conn: &mut Conn,
    status: Option<&str>,
    country: Option<&str>,
    req: &PageRequest,
) -> Result<Page<Number>> {
    let rows: Vec<Number> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM numbers
         WHERE id < $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR country = $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(page::cursor_bound(req))
    .bind(status)
    .bind(country)
    .bind(req.limit + 1)
    .fetch_all(conn)
    .await?;
    Ok(page::finish(rows, req.limit, |n| &n.id))
}

/// Takes one free number of the country from the operator's inventory.
pub async fn allocate(
    conn: &mut Conn,
    engine: Engine,
    country: &str,
    mid_id: &str,
    now: i64,
) -> Result<Option<Number>> {
    allocate_from(conn, engine, Pool::Main, country, &[], mid_id, now).await
}

/// Takes one free number of the country from `pool` that carries every capability in
/// `needs`: available, or quarantined past its cooling period.
pub async fn allocate_from(
    conn: &mut Conn,
    engine: Engine,
    pool: Pool,
    country: &str,
    needs: &[&str],
    mid_id: &str,
    now: i64,
) -> Result<Option<Number>> {
    // A number without a list carries everything; with one, each need must be in it.
    let carries: String = (0..needs.len())
        .map(|i| {
            format!(
                " AND (capabilities IS NULL OR capabilities LIKE ${})",
                i + 5
            )
        })
        .collect();
    for status in ["available", "quarantined"] {
        let sql = format!(
            "SELECT id FROM numbers
             WHERE pool = $4 AND country = $1 AND status = $2 AND ($2 = 'available' OR quarantined_until <= $3){carries}
             ORDER BY id LIMIT 1{}",
            engine.skip_locked()
        );
        let mut q = sqlx::query_scalar(&sql)
            .bind(country)
            .bind(status)
            .bind(now)
            .bind(pool.as_str());
        for need in needs {
            q = q.bind(format!("%\"{need}\"%"));
        }
        let candidate: Option<String> = q.fetch_optional(&mut *conn).await?;
        if let Some(id) = candidate {
            let n: Option<Number> = sqlx::query_as(&format!(
                "UPDATE numbers SET status = 'assigned', mid_id = $2, quarantined_until = NULL, updated_at = $3
                 WHERE id = $1 RETURNING {COLUMNS}"
            ))
            .bind(&id)
            .bind(mid_id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            return Ok(n);
        }
    }
    Ok(None)
}

/// Ends the cooling period of every quarantined number of `pool` at once.
pub async fn end_quarantine(conn: &mut Conn, pool: Pool, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE numbers SET status = 'available', quarantined_until = NULL, updated_at = $2
         WHERE pool = $1 AND status = 'quarantined'",
    )
    .bind(pool.as_str())
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Moves a number between states; false when it was not in `from`.
pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    from: &str,
    to: &str,
    quarantined_until: Option<i64>,
    now: i64,
) -> Result<bool> {
    let keep_mid = to == "assigned";
    let r = sqlx::query(
        "UPDATE numbers SET status = $3, quarantined_until = $4, updated_at = $5,
                            mid_id = CASE WHEN $6 = 1 THEN mid_id ELSE NULL END
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(quarantined_until)
    .bind(now)
    .bind(i64::from(keep_mid))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Binds an assigned number to its MID.
pub async fn assign(conn: &mut Conn, id: &str, mid_id: &str) -> Result<()> {
    sqlx::query("UPDATE numbers SET mid_id = $2 WHERE id = $1 AND status = 'assigned'")
        .bind(id)
        .bind(mid_id)
        .execute(conn)
        .await?;
    Ok(())
}
