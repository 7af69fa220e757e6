//! Writing and reading the audit log (PROTOCOL §9).

use serde::Serialize;
use serde_json::Value;

use ami_core::audit::link_hash;
use ami_store::audit::{self, NewEvent};
use ami_store::page::PageRequest;
use ami_store::{Batch, Db};

use crate::auth::{Actor, AdminCaller, CustomerCaller};
use crate::views::{EventList, EventView};
use crate::{Result, Services};

/// What an event is about.
pub struct Subject<'a> {
    pub account_id: Option<&'a str>,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub mid: Option<&'a str>,
}

/// An event of a batch, kept until the batch appends them all with [`write_events`].
pub(crate) struct PendingEvent {
    pub actor: Actor,
    pub action: &'static str,
    pub account_id: String,
    pub mid_id: Option<String>,
    pub entity_type: &'static str,
    pub entity_id: String,
    /// Serialised JSON.
    pub data: String,
}

/// Appends a batch's events in order, each chain extended once.
pub(crate) async fn write_events(
    db: impl Into<Db<'_>>,
    events: &[PendingEvent],
    at: i64,
) -> Result<()> {
    let mut db = db.into();
    let mut batch = Batch::default();
    push_events(&mut db, &mut batch, events, at).await?;
    batch.run(db).await?;
    Ok(())
}

/// [`write_events`] with the chain heads taken now and the writes left in `batch`.
pub(crate) async fn push_events(
    db: impl Into<Db<'_>>,
    batch: &mut Batch,
    events: &[PendingEvent],
    at: i64,
) -> Result<()> {
    let new: Vec<NewEvent<'_>> = events
        .iter()
        .map(|e| NewEvent {
            account_id: Some(&e.account_id),
            action: e.action,
            actor_type: e.actor.kind(),
            actor_id: e.actor.id(),
            entity_type: e.entity_type,
            entity_id: &e.entity_id,
            mid: e.mid_id.as_deref(),
            data: &e.data,
            at,
        })
        .collect();
    audit::push_append_many(db, batch, &new).await?;
    Ok(())
}

impl Services {
    /// Appends one event inside the caller's transaction.
    pub(crate) async fn audit(
        &self,
        db: impl Into<Db<'_>>,
        actor: &Actor,
        action: &str,
        subject: Subject<'_>,
        data: Value,
    ) -> Result<String> {
        let data = data.to_string();
        Ok(audit::append(
            db,
            &NewEvent {
                account_id: subject.account_id,
                action,
                actor_type: actor.kind(),
                actor_id: actor.id(),
                entity_type: subject.entity_type,
                entity_id: subject.entity_id,
                mid: subject.mid,
                data: &data,
                at: self.now(),
            },
        )
        .await?)
    }

    pub async fn list_events(
        &self,
        caller: &CustomerCaller,
        filter: &audit::Filter,
        page: &PageRequest,
    ) -> Result<EventList> {
        let mut conn = self.store.reader().await?;
        let p = audit::list(&mut conn, &caller.account_id, filter, page).await?;
        Ok(event_list(p))
    }

    pub async fn list_all_events(
        &self,
        admin: &AdminCaller,
        filter: &audit::Filter,
        page: &PageRequest,
    ) -> Result<EventList> {
        let mut conn = self.store.reader().await?;
        let p =
            ami_store::system::audit::list_all(admin.operator(), &mut conn, filter, page).await?;
        drop(conn);
        self.audit_admin_read("events").await?;
        Ok(event_list(p))
    }

    /// Walks every chain and reports the first event whose link does not hold.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        let mut conn = self.store.reader().await?;
        let mut report = ChainReport {
            chains: 0,
            events: 0,
            first_broken: None,
        };
        for chain in ami_store::system::audit::chains(self.system(), &mut conn).await? {
            report.chains += 1;
            let mut prev = ami_core::audit::GENESIS.to_owned();
            let mut seq = 0;
            loop {
                let batch = ami_store::system::audit::chain_batch(
                    self.system(),
                    &mut conn,
                    &chain,
                    seq,
                    1000,
                )
                .await?;
                if batch.is_empty() {
                    break;
                }
                for e in batch {
                    report.events += 1;
                    let expected = link_hash(&prev, &fields(&e));
                    let problem = if e.chain_seq != seq + 1 {
                        Some("an event is missing before this one")
                    } else if e.prev_hash != prev {
                        Some("its link to the previous event is broken")
                    } else if e.hash != expected {
                        Some("its content does not match its hash")
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        report.first_broken = Some(BrokenLink {
                            chain,
                            event_id: e.id,
                            chain_seq: e.chain_seq,
                            problem,
                        });
                        return Ok(report);
                    }
                    seq = e.chain_seq;
                    prev = e.hash;
                }
            }
            if let Some((head_seq, head_hash)) =
                ami_store::system::audit::head(self.system(), &mut conn, &chain).await?
                && (head_seq != seq || head_hash != prev)
            {
                report.first_broken = Some(BrokenLink {
                    chain,
                    event_id: String::new(),
                    chain_seq: seq + 1,
                    problem: "events are missing at the end of the chain",
                });
                return Ok(report);
            }
        }
        Ok(report)
    }
}

fn fields(e: &audit::Event) -> ami_core::audit::EventFields<'_> {
    ami_core::audit::EventFields {
        id: &e.id,
        at_ms: e.at,
        account_id: e.account_id.as_deref(),
        action: &e.action,
        actor_type: &e.actor_type,
        actor_id: &e.actor_id,
        entity_type: &e.entity_type,
        entity_id: &e.entity_id,
        mid: e.mid.as_deref(),
        data: &e.data,
    }
}

#[derive(Debug, Serialize)]
pub struct ChainReport {
    pub chains: u64,
    pub events: u64,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Serialize)]
pub struct BrokenLink {
    pub chain: String,
    pub event_id: String,
    pub chain_seq: i64,
    pub problem: &'static str,
}

fn event_list(p: ami_store::page::Page<audit::Event>) -> EventList {
    let events: Vec<EventView> = p.items.into_iter().map(EventView::from).collect();
    EventList {
        count: events.len(),
        events,
        next_cursor: p.next_cursor,
    }
}
