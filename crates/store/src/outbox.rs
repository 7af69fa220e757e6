//! Side effects waiting for a worker: written in the request's transaction, claimed with a
//! lease, so a crash loses nothing (an expired lease is claimed again) and replicas never
//! work the same row at once.
//!
//! Every claim names its holder and raises the job's fence. Whoever records a job's outcome
//! first checks, inside the recording transaction, that the job still carries the fence its
//! claim returned ([`held`]): a worker whose lease ran out while it waited on the carrier
//! finds the fence moved on and records nothing.

use std::collections::HashSet;

use crate::{Arg, Batch, Conn, Db, Result, rows};

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub ref_id: String,
    pub due_at: i64,
    /// How many times the job was leased, this lease included.
    pub attempts: i64,
    /// This lease's fencing token.
    pub fence: i64,
    pub lease_until: i64,
    /// The fence of an earlier attempt that reached the carrier and whose outcome was never
    /// recorded.
    pub started_fence: Option<i64>,
}

impl Job {
    /// Whether an earlier holder may have handed this job to the carrier without recording
    /// it. With a carrier that can be asked (`looks_up`), any earlier lease may have; with one
    /// that cannot, only an attempt recorded as started.
    pub fn maybe_started(&self, looks_up: bool) -> bool {
        if looks_up {
            self.attempts > 1
        } else {
            self.started_fence.is_some()
        }
    }
}

/// A lease given at insertion: the jobs belong to `holder`'s own worker from the start.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub until: i64,
    pub holder: &'a str,
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

/// [`enqueue_many`] as statements of a batch; returns the jobs. With a `lease`, the jobs are
/// leased from the start to the caller's own worker, which runs them without claiming them;
/// should it never run them, they are claimed again once the lease ends (or at once, when
/// the holder's successor takes back its leases), like any other lease.
pub fn push_enqueue_many(
    batch: &mut Batch,
    kind: &str,
    ref_ids: &[&str],
    due_at: i64,
    now: i64,
    lease: Option<Lease<'_>>,
) -> Vec<Job> {
    const COLUMNS: usize = 9;
    let mut jobs = Vec::with_capacity(ref_ids.len());
    let leased = i64::from(lease.is_some());
    for chunk in ref_ids.chunks(rows::CHUNK) {
        let sql = format!(
            "INSERT INTO outbox (id, kind, ref_id, due_at, created_at, lease_until, attempts, fence, lease_holder) VALUES {}",
            rows::values(chunk.len(), COLUMNS, 1)
        );
        let mut args = Vec::with_capacity(chunk.len() * COLUMNS);
        for ref_id in chunk {
            let job = Job {
                id: ami_core::id::new_id_at("job", now),
                kind: kind.to_owned(),
                ref_id: (*ref_id).to_owned(),
                due_at,
                attempts: leased,
                fence: leased,
                lease_until: lease.map_or(0, |l| l.until),
                started_fence: None,
            };
            args.extend([
                Arg::from(&job.id),
                Arg::from(kind),
                Arg::from(*ref_id),
                Arg::from(due_at),
                Arg::from(now),
                Arg::from(lease.map(|l| l.until)),
                Arg::from(job.attempts),
                Arg::from(job.fence),
                Arg::from(lease.map(|l| l.holder)),
            ]);
            jobs.push(job);
        }
        batch.push(sql, args);
    }
    jobs
}

/// Ends the leases of jobs a worker will not run after all: they are due again at once.
/// Whether an attempt of theirs may have reached the carrier stays recorded.
pub async fn release(db: impl Into<Db<'_>>, jobs: &[&Job]) -> Result<()> {
    let mut db = db.into();
    let ours = held(&mut db, jobs).await?;
    set_for(&mut db, "lease_until = NULL", &ours).await
}

/// Ends the leases of jobs whose run failed, due again at `due_at`, so that a job that
/// keeps failing is tried on a backoff rather than on every claim.
pub async fn defer(db: impl Into<Db<'_>>, jobs: &[&Job], due_at: i64) -> Result<()> {
    let mut db = db.into();
    let ours = held(&mut db, jobs).await?;
    set_for(
        &mut db,
        &format!("lease_until = NULL, due_at = {due_at}"),
        &ours,
    )
    .await
}

/// Claims up to `batch` due jobs for `lease_ms`, for `holder`.
pub async fn claim(
    db: impl Into<Db<'_>>,
    now: i64,
    lease_ms: i64,
    batch: i64,
    holder: &str,
) -> Result<Vec<Job>> {
    let mut db = db.into();
    let sql = format!(
        "UPDATE outbox SET lease_until = $1, attempts = attempts + 1, fence = fence + 1, lease_holder = $4
         WHERE id IN (SELECT id FROM outbox WHERE due_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)
                      ORDER BY due_at LIMIT $3{})
         RETURNING id, kind, ref_id, due_at, attempts, fence, lease_until, started_fence",
        db.engine().skip_locked()
    );
    db.fetch(
        &sql,
        &[
            Arg::from(now + lease_ms),
            Arg::from(now),
            Arg::from(batch),
            Arg::from(holder),
        ],
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
            fence: row.get(5)?,
            lease_until: row.get(6)?,
            started_fence: row.get(7)?,
        })
    })
    .collect()
}

/// The ids of `jobs` that still carry the fence of their claim, locked until the
/// transaction ends (on SQLite the write transaction holds the whole database): only these
/// may have their outcome recorded.
pub async fn held(db: impl Into<Db<'_>>, jobs: &[&Job]) -> Result<HashSet<String>> {
    let mut db = db.into();
    let mut ours = HashSet::with_capacity(jobs.len());
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "SELECT id, fence FROM outbox WHERE id IN ({}){}",
            rows::list(chunk.len(), 1),
            db.engine().for_update()
        );
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        for row in db.fetch(&sql, &args).await? {
            let id: String = row.get(0)?;
            let fence: i64 = row.get(1)?;
            if jobs.iter().any(|j| j.id == id && j.fence == fence) {
                ours.insert(id);
            }
        }
    }
    Ok(ours)
}

/// Records that these jobs, still ours, are about to reach the carrier: should their outcome
/// never be recorded, whoever claims them next knows they may have. Returns the ids still
/// ours; the others are left alone.
pub async fn mark_started(db: impl Into<Db<'_>>, jobs: &[&Job]) -> Result<HashSet<String>> {
    let mut db = db.into();
    let ours = held(&mut db, jobs).await?;
    set_for(&mut db, "started_fence = fence", &ours).await?;
    Ok(ours)
}

/// Extends the leases of these jobs, still ours, to `until`; returns the ids renewed.
pub async fn renew(db: impl Into<Db<'_>>, jobs: &[&Job], until: i64) -> Result<HashSet<String>> {
    let mut db = db.into();
    let ours = held(&mut db, jobs).await?;
    set_for(&mut db, &format!("lease_until = {until}"), &ours).await?;
    Ok(ours)
}

async fn set_for(db: &mut Db<'_>, assignment: &str, ids: &HashSet<String>) -> Result<()> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for chunk in ids.chunks(rows::CHUNK) {
        let sql = format!(
            "UPDATE outbox SET {assignment} WHERE id IN ({})",
            rows::list(chunk.len(), 1)
        );
        let args: Vec<Arg> = chunk.iter().map(|id| Arg::from(*id)).collect();
        db.execute(&sql, &args).await?;
    }
    Ok(())
}

/// Voids the leases a dead process held, so its jobs are claimed at once: every lease when
/// `holder` is None (a SQLite database is owned by one process at a time, so at its start
/// nobody else holds any), else the leases held under that name. Returns how many.
pub async fn take_back(db: impl Into<Db<'_>>, holder: Option<&str>) -> Result<u64> {
    let mut db = db.into();
    match holder {
        None => {
            db.execute(
                "UPDATE outbox SET lease_until = NULL WHERE lease_until IS NOT NULL",
                &[],
            )
            .await
        }
        Some(holder) => {
            db.execute(
                "UPDATE outbox SET lease_until = NULL WHERE lease_holder = $1 AND lease_until IS NOT NULL",
                &[Arg::from(holder)],
            )
            .await
        }
    }
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

/// Puts a job back in the queue for `due_at`, its attempt finished with a known outcome.
pub async fn reschedule(db: impl Into<Db<'_>>, id: &str, due_at: i64) -> Result<()> {
    db.into()
        .execute(
            "UPDATE outbox SET due_at = $2, lease_until = NULL, started_fence = NULL WHERE id = $1",
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
