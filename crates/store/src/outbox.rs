//! Side effects waiting for a worker: written in the request's transaction, claimed with a
//! lease, so a crash loses nothing (an expired lease is claimed again) and replicas never
//! work the same row at once.

use crate::{Arg, Batch, Conn, Db, Result, rows};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub ref_id: String,
    pub due_at: i64,
    pub attempts: i64,
}

pub async fn enqueue(
    conn: &mut Conn,
    kind: &str,
    ref_id: &str,
    due_at: i64,
    now: i64,
) -> Result<()> {
    enqueue_many(conn, kind, &[ref_id], due_at, now).await
}

/// One job of `kind` per resource, all due at `due_at`.
pub async fn enqueue_many(
    conn: &mut Conn,
    kind: &str,
    ref_ids: &[&str],
    due_at: i64,
    now: i64,
) -> Result<()> {
    let mut batch = Batch::default();
    push_enqueue_many(&mut batch, kind, ref_ids, due_at, now, None);
    batch.run(conn).await
}

/// [`enqueue_many`] as statements of a batch; returns the jobs. With `lease_until`, the jobs
/// are leased from the start to the caller's own worker, which runs them without claiming
/// them; should it never run them, they are claimed again once the lease ends, like any
/// other lease.
pub fn push_enqueue_many(
    batch: &mut Batch,
    kind: &str,
    ref_ids: &[&str],
    due_at: i64,
    now: i64,
    lease_until: Option<i64>,
) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(ref_ids.len());
    for chunk in ref_ids.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO outbox (id, kind, ref_id, due_at, created_at, lease_until, attempts) VALUES {}",
            rows::values(chunk.len(), 7, 1)
        );
        let mut args = Vec::with_capacity(chunk.len() * 7);
        for ref_id in chunk {
            let job = Job {
                id: ami_core::id::new_id_at("job", now),
                kind: kind.to_owned(),
                ref_id: (*ref_id).to_owned(),
                due_at,
                attempts: i64::from(lease_until.is_some()),
            };
            args.extend([
                Arg::from(&job.id),
                Arg::from(kind),
                Arg::from(*ref_id),
                Arg::from(due_at),
                Arg::from(now),
                Arg::from(lease_until),
                Arg::from(job.attempts),
            ]);
            jobs.push(job);
        }
        batch.push(sql, args);
    }
    jobs
}

/// Ends the leases of jobs a worker will not run after all: they are due again at once.
pub async fn release(db: impl Into<Db<'_>>, ids: &[&str]) -> Result<()> {
    let mut db = db.into();
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "UPDATE outbox SET lease_until = NULL WHERE id IN ({})",
            rows::list(chunk.len(), 1)
        );
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Claims up to `batch` due jobs for `lease_ms`.
pub async fn claim(db: impl Into<Db<'_>>, now: i64, lease_ms: i64, batch: i64) -> Result<Vec<Job>> {
    let mut db = db.into();
    let sql = format!(
        "UPDATE outbox SET lease_until = $1, attempts = attempts + 1
         WHERE id IN (SELECT id FROM outbox WHERE due_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)
                      ORDER BY due_at LIMIT $3{})
         RETURNING id, kind, ref_id, due_at, attempts",
        db.engine().skip_locked()
    );
    db.fetch(
        &sql,
        &[Arg::from(now + lease_ms), Arg::from(now), Arg::from(batch)],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(Job {
            id: row.get(0)?,
            kind: row.get(1)?,
            ref_id: row.get(2)?,
            due_at: row.get(3)?,
            attempts: row.get(4)?,
        })
    })
    .collect()
}

pub async fn done(conn: &mut Conn, id: &str) -> Result<()> {
    done_many(conn, &[id.to_owned()]).await
}

pub async fn done_many(conn: &mut Conn, ids: &[String]) -> Result<()> {
    let mut batch = Batch::default();
    push_done_many(&mut batch, ids);
    batch.run(conn).await
}

/// [`done_many`] as statements of a batch.
pub fn push_done_many(batch: &mut Batch, ids: &[String]) {
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "DELETE FROM outbox WHERE id IN ({})",
            rows::list(chunk.len(), 1)
        );
        batch.push(sql, chunk.iter().map(Arg::from).collect());
    }
}

pub async fn reschedule(db: impl Into<Db<'_>>, id: &str, due_at: i64) -> Result<()> {
    db.into()
        .execute(
            "UPDATE outbox SET due_at = $2, lease_until = NULL WHERE id = $1",
            &[Arg::from(id), Arg::from(due_at)],
        )
        .await?;
    Ok(())
}

/// Drops pending jobs of a resource (a cancelled message).
pub async fn forget(db: impl Into<Db<'_>>, ref_id: &str) -> Result<()> {
    db.into()
        .execute("DELETE FROM outbox WHERE ref_id = $1", &[Arg::from(ref_id)])
        .await?;
    Ok(())
}

/// Drops the pending jobs of a resource unless a worker holds one under a live lease (it may
/// be inside the carrier right now). True when no job of the resource is left, i.e. nobody
/// is handing it off and it may be cancelled. The delete is the decision: on PostgreSQL it
/// waits for a concurrent claim of the row and re-checks the lease; a claim that comes later
/// skips the locked row and then finds it gone.
pub async fn forget_unleased(conn: &mut Conn, ref_id: &str, now: i64) -> Result<bool> {
    sqlx::query(
        "DELETE FROM outbox WHERE ref_id = $1 AND (lease_until IS NULL OR lease_until <= $2)",
    )
    .bind(ref_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE ref_id = $1")
        .bind(ref_id)
        .fetch_one(conn)
        .await?;
    Ok(left == 0)
}

/// Jobs accepted but not yet done: the dispatch backlog.
pub async fn backlog(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(conn)
        .await?)
}
