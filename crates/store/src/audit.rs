//! The append-only audit log with one hash chain per account (plus the operator's global one).

use ami_core::audit::{self, EventFields};

use crate::AccountId;
use crate::page::{self, Page, PageRequest};
use crate::{Arg, Batch, Conn, Db, Result, rows};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: String,
    pub chain_id: String,
    pub chain_seq: i64,
    pub account_id: Option<String>,
    pub at: i64,
    pub action: String,
    pub actor_type: String,
    pub actor_id: String,
    pub entity_type: String,
    pub entity_id: String,
    pub mid: Option<String>,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

pub(crate) const COLUMNS: &str = "id, chain_id, chain_seq, account_id, at, action, actor_type, actor_id, entity_type, entity_id, mid, data, prev_hash, hash";

pub struct NewEvent<'a> {
    pub account_id: Option<&'a str>,
    pub action: &'a str,
    pub actor_type: &'a str,
    pub actor_id: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub mid: Option<&'a str>,
    /// Minimal JSON: never a body, a secret or full PII.
    pub data: &'a str,
    pub at: i64,
}

/// Appends an event inside the caller's transaction, extending its chain. The chain head
/// row is locked for the rest of the transaction, so concurrent writers extend it in turn.
pub async fn append(db: impl Into<Db<'_>>, e: &NewEvent<'_>) -> Result<String> {
    let mut ids = append_many(db, std::slice::from_ref(e)).await?;
    Ok(ids.pop().unwrap_or_default())
}

/// Appends events in their order, each chain extended once: per chain, one statement takes
/// (and locks) the head, one writes the events, one moves the head.
pub async fn append_many(db: impl Into<Db<'_>>, events: &[NewEvent<'_>]) -> Result<Vec<String>> {
    let mut db = db.into();
    let mut batch = Batch::default();
    let ids = push_append_many(&mut db, &mut batch, events).await?;
    batch.run(&mut db).await?;
    Ok(ids)
}

/// [`append_many`] with the chain heads taken (on PostgreSQL, locked) now and the writes
/// left in `batch`, which must run in the same transaction before anything else appends to
/// these chains.
pub async fn push_append_many(
    db: impl Into<Db<'_>>,
    batch: &mut Batch,
    events: &[NewEvent<'_>],
) -> Result<Vec<String>> {
    let mut db = db.into();
    let mut ids = vec![String::new(); events.len()];
    let mut chains: Vec<&str> = Vec::new();
    for e in events {
        let chain = audit::chain_id(e.account_id);
        if !chains.contains(&chain) {
            chains.push(chain);
        }
    }
    for chain in chains {
        // Creates the head on first use and returns it, locked, in one statement.
        let head = db
            .fetch_one(
                "INSERT INTO audit_heads (chain_id, seq, hash) VALUES ($1, 0, $2)
                 ON CONFLICT (chain_id) DO UPDATE SET seq = audit_heads.seq
                 RETURNING seq, hash",
                &[Arg::from(chain), Arg::from(audit::GENESIS)],
            )
            .await?;
        let (mut seq, mut prev): (i64, String) = (head.get(0)?, head.get(1)?);
        let mut rows_of_chain = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if audit::chain_id(e.account_id) != chain {
                continue;
            }
            let id = ami_core::id::new_id_at("evt", e.at);
            let hash = audit::link_hash(
                &prev,
                &EventFields {
                    id: &id,
                    at_ms: e.at,
                    account_id: e.account_id,
                    action: e.action,
                    actor_type: e.actor_type,
                    actor_id: e.actor_id,
                    entity_type: e.entity_type,
                    entity_id: e.entity_id,
                    mid: e.mid,
                    data: e.data,
                },
            );
            seq += 1;
            rows_of_chain.push((
                e,
                id.clone(),
                seq,
                std::mem::replace(&mut prev, hash.clone()),
                hash,
            ));
            ids[i] = id;
        }
        for chunk in rows_of_chain.chunks(rows::CHUNK) {
            let sql = format!(
                "INSERT INTO audit_events (id, chain_id, chain_seq, account_id, at, action, actor_type, actor_id,
                                           entity_type, entity_id, mid, data, prev_hash, hash)
                 VALUES {}",
                rows::values(chunk.len(), 14, 1)
            );
            let mut args = Vec::with_capacity(chunk.len() * 14);
            for (e, id, seq, prev_hash, hash) in chunk {
                args.extend([
                    Arg::from(id),
                    Arg::from(chain),
                    Arg::from(*seq),
                    Arg::from(e.account_id),
                    Arg::from(e.at),
                    Arg::from(e.action),
                    Arg::from(e.actor_type),
                    Arg::from(e.actor_id),
                    Arg::from(e.entity_type),
                    Arg::from(e.entity_id),
                    Arg::from(e.mid),
                    Arg::from(e.data),
                    Arg::from(prev_hash),
                    Arg::from(hash),
                ]);
            }
            batch.push(sql, args);
        }
        batch.push(
            "UPDATE audit_heads SET seq = $2, hash = $3 WHERE chain_id = $1".to_owned(),
            vec![Arg::from(chain), Arg::from(seq), Arg::from(&prev)],
        );
    }
    Ok(ids)
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub mid: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// The tenant's own events (its chain, read through the chain's index in chain order).
/// Ordered by insertion, so events written in the same millisecond (one transaction often
/// writes several) still list newest first; the cursor is an event id.
pub async fn list(
    conn: &mut Conn,
    account_id: &AccountId,
    f: &Filter,
    req: &PageRequest,
) -> Result<Page<Event>> {
    list_in(conn, Some(account_id.as_str()), f, req).await
}

/// `account_id: Some` → that tenant's events only; `None` → every event (the operator's
/// view, reached only through `system::audit::list_all`).
pub(crate) async fn list_in(
    conn: &mut Conn,
    account_id: Option<&str>,
    f: &Filter,
    req: &PageRequest,
) -> Result<Page<Event>> {
    // Two fixed shapes: a tenant's events are its own chain, read through the chain's index
    // in chain order; the operator's are every chain, in the global order. The optional
    // filters are "parameter IS NULL OR ..." guards, never text built from input.
    let (scope, order) = match account_id {
        Some(_) => ("chain_id = $1", "chain_seq"),
        None => ("$1 IS NULL", "seq"),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events
         WHERE {scope}
           AND ($2 IS NULL OR {order} < (SELECT c.{order} FROM audit_events c
                                         WHERE c.id = $2 AND ({scope_c})))
           AND ($3 IS NULL OR action = $3)
           AND ($4 IS NULL OR entity_type = $4)
           AND ($5 IS NULL OR entity_id = $5)
           AND ($6 IS NULL OR mid = $6)
           AND ($7 IS NULL OR at >= $7)
           AND ($8 IS NULL OR at <= $8)
         ORDER BY {order} DESC LIMIT $9",
        scope_c = scope.replace("chain_id", "c.chain_id"),
    );
    let rows: Vec<Event> = sqlx::query_as(&sql)
        .bind(account_id.map(|a| audit::chain_id(Some(a))))
        .bind(req.cursor.as_deref())
        .bind(f.action.as_deref())
        .bind(f.entity_type.as_deref())
        .bind(f.entity_id.as_deref())
        .bind(f.mid.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(req.limit + 1)
        .fetch_all(conn)
        .await?;
    Ok(page::finish(rows, req.limit, |e| &e.id))
}
