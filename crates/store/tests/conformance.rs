//! The store's contract, identical on both engines (SQLite always, PostgreSQL when
//! `AMI_TEST_DATABASE_URL` names a server): idempotent migrations, compare-and-set status
//! changes, structural tenancy, number allocation that never hands one number out twice,
//! gap-free audit hash chains under concurrency, idempotency claims and id paging.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ami_core::audit::{EventFields, GENESIS, link_hash};
use ami_core::id::new_id_at;
use ami_store::idempotency::{self, Claim};
use ami_store::page::PageRequest;
use ami_store::{
    Engine, Store, accounts, audit, calls, commit, contracting, messages, mids, numbers, outbox,
};

use common::{NOW, acct, engines, fixture, new_account, open, seed_mid, system};

#[tokio::test]
async fn migrations_are_idempotent() {
    for engine in engines() {
        let f = fixture(engine).await;
        assert_eq!(
            f.store.migrate().await.unwrap(),
            Vec::<i64>::new(),
            "{engine:?}: second run applies nothing"
        );
        // Another process (a replica, `ami migrate`) opening the same database: nothing either.
        let other = open(&f.url).await;
        assert_eq!(
            other.migrate().await.unwrap(),
            Vec::<i64>::new(),
            "{engine:?}"
        );
        let mut conn = f.store.reader().await.unwrap();
        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert!(recorded >= 1, "{engine:?}");
        drop(conn);
        other.close().await;
        f.close().await;
    }
}

#[tokio::test]
async fn accounts_by_key_hash_and_status_compare_and_set() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        new_account(s, "acct_one").await;
        new_account(s, "acct_two").await;
        let mut conn = s.reader().await.unwrap();
        let found = ami_store::system::accounts::by_key_hash(
            &system(),
            &mut conn,
            &ami_core::secret::hash("acct_one"),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            (found.id.as_str(), found.status.as_str(), found.created_at),
            ("acct_one", "active", NOW)
        );
        assert!(
            ami_store::system::accounts::by_key_hash(
                &system(),
                &mut conn,
                &ami_core::secret::hash("nobody")
            )
            .await
            .unwrap()
            .is_none()
        );
        drop(conn);

        // A key hash belongs to one account only.
        let mut tx = s.begin().await.unwrap();
        let dup = accounts::NewAccount {
            id: "acct_three",
            name: "three",
            billing_email: None,
            key_hash: &ami_core::secret::hash("acct_one"),
            key_prefix: "amik_live_0000",
            now: NOW,
        };
        let err = accounts::insert(&mut tx, &dup).await.unwrap_err();
        assert!(err.is_unique_violation(), "{engine:?}: {err}");
        drop(tx);

        let mut tx = s.begin().await.unwrap();
        assert!(
            accounts::set_status(
                &mut tx,
                &acct("acct_one"),
                "active",
                "suspended",
                Some("fraud"),
                NOW + 1
            )
            .await
            .unwrap()
        );
        // The same move again: the account is no longer in `from`, nothing changes.
        assert!(
            !accounts::set_status(
                &mut tx,
                &acct("acct_one"),
                "active",
                "suspended",
                Some("again"),
                NOW + 2
            )
            .await
            .unwrap()
        );
        assert!(
            !accounts::set_status(
                &mut tx,
                &acct("acct_missing"),
                "active",
                "suspended",
                None,
                NOW
            )
            .await
            .unwrap()
        );
        commit(tx).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        let one = accounts::get(&mut conn, &acct("acct_one"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                one.status.as_str(),
                one.suspended_at,
                one.suspend_reason.as_deref()
            ),
            ("suspended", Some(NOW + 1), Some("fraud"))
        );
        let two = accounts::get(&mut conn, &acct("acct_two"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            two.status, "active",
            "{engine:?}: only the named account moves"
        );
        drop(conn);

        let mut tx = s.begin().await.unwrap();
        assert!(
            accounts::set_status(
                &mut tx,
                &acct("acct_one"),
                "suspended",
                "active",
                None,
                NOW + 3
            )
            .await
            .unwrap()
        );
        commit(tx).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        let one = accounts::get(&mut conn, &acct("acct_one"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((one.status.as_str(), one.suspended_at), ("active", None));
        drop(conn);
        f.close().await;
    }
}

#[tokio::test]
async fn reads_are_scoped_to_the_account() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        new_account(s, "acct_a").await;
        new_account(s, "acct_b").await;
        let mut tx = s.begin().await.unwrap();
        let req = contracting::SimRequest {
            id: new_id_at("simreq", NOW),
            account_id: "acct_a".into(),
            status: "requested".into(),
            country: "ES".into(),
            sim_type: "eSIM".into(),
            capabilities: r#"["sms"]"#.into(),
            agent: "{}".into(),
            commercial_constraints: "{}".into(),
            reason: None,
            offer_id: None,
            customer_id: None,
            contract_id: None,
            mid_id: None,
            created_at: NOW,
            updated_at: NOW,
        };
        contracting::insert_sim_request(&mut tx, &req)
            .await
            .unwrap();
        numbers::insert_many(&mut tx, "ES", &["+34600000001".to_owned()], NOW)
            .await
            .unwrap();
        let mid_id = new_id_at("mid", NOW);
        let number = numbers::allocate(&mut tx, engine, "ES", &mid_id, NOW)
            .await
            .unwrap()
            .unwrap();
        let mid = mids::Mid {
            id: mid_id.clone(),
            account_id: "acct_a".into(),
            sim_request_id: Some(req.id.clone()),
            contract_id: None,
            number_id: number.id,
            phone_number: number.phone_number,
            country: "ES".into(),
            capabilities: r#"["sms"]"#.into(),
            status: "active".into(),
            inbound_sip_uri: None,
            limits: "{}".into(),
            created_at: NOW,
            updated_at: NOW,
            released_at: None,
        };
        mids::insert(&mut tx, &mid).await.unwrap();
        commit(tx).await.unwrap();

        let mut conn = s.reader().await.unwrap();
        assert!(
            contracting::sim_request(&mut conn, &acct("acct_a"), &req.id)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            contracting::sim_request(&mut conn, &acct("acct_b"), &req.id)
                .await
                .unwrap()
                .is_none(),
            "{engine:?}"
        );
        assert!(
            mids::get(&mut conn, &acct("acct_a"), &mid_id)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            mids::get(&mut conn, &acct("acct_b"), &mid_id)
                .await
                .unwrap()
                .is_none(),
            "{engine:?}"
        );
        let page = PageRequest {
            limit: 50,
            cursor: None,
        };
        assert!(
            mids::list(&mut conn, &acct("acct_b"), &page)
                .await
                .unwrap()
                .items
                .is_empty(),
            "{engine:?}"
        );
        assert!(
            contracting::list_sim_requests(&mut conn, &acct("acct_b"), &page)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        drop(conn);
        f.close().await;
    }
}

/// Allocates in its own transaction, like activation does.
async fn allocate(store: &Store, country: &str, now: i64) -> Option<numbers::Number> {
    let mut tx = store.begin().await.unwrap();
    let n = numbers::allocate(
        &mut tx,
        store.engine(),
        country,
        &new_id_at("mid", now),
        now,
    )
    .await
    .unwrap();
    commit(tx).await.unwrap();
    n
}

fn phones(n: std::ops::Range<u32>) -> Vec<String> {
    n.map(|i| format!("+346000{i:05}")).collect()
}

#[tokio::test]
async fn numbers_allocate_available_then_cooled_quarantine() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        let mut tx = s.begin().await.unwrap();
        assert_eq!(
            numbers::insert_many(&mut tx, "ES", &phones(0..4), NOW)
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            numbers::insert_many(&mut tx, "ES", &phones(0..4), NOW)
                .await
                .unwrap(),
            0,
            "already present"
        );
        numbers::insert_many(&mut tx, "CO", &["+573000000001".to_owned()], NOW)
            .await
            .unwrap();
        let disabled = numbers::by_phone(&mut tx, "+34600000000")
            .await
            .unwrap()
            .unwrap();
        assert!(
            numbers::set_status(&mut tx, &disabled.id, "available", "disabled", None, NOW)
                .await
                .unwrap()
        );
        commit(tx).await.unwrap();

        let mut taken = BTreeSet::new();
        while let Some(n) = allocate(s, "ES", NOW).await {
            assert_eq!(
                (n.status.as_str(), n.country.as_str()),
                ("assigned", "ES"),
                "{engine:?}"
            );
            assert!(n.mid_id.is_some());
            assert!(
                taken.insert(n.phone_number.clone()),
                "{engine:?}: {} handed out twice",
                n.phone_number
            );
        }
        let expected: BTreeSet<String> = phones(1..4).into_iter().collect();
        assert_eq!(
            taken, expected,
            "{engine:?}: the available numbers, never the disabled one"
        );

        // A released number cools down in quarantine before it is reused.
        let released = taken.first().unwrap();
        let mut tx = s.begin().await.unwrap();
        let n = numbers::by_phone(&mut tx, released).await.unwrap().unwrap();
        assert!(
            numbers::set_status(
                &mut tx,
                &n.id,
                "assigned",
                "quarantined",
                Some(NOW + 1_000),
                NOW
            )
            .await
            .unwrap()
        );
        commit(tx).await.unwrap();
        assert!(
            allocate(s, "ES", NOW).await.is_none(),
            "{engine:?}: still cooling"
        );
        assert!(
            allocate(s, "ES", NOW + 999).await.is_none(),
            "{engine:?}: still cooling"
        );
        let reused = allocate(s, "ES", NOW + 1_000).await.expect("cooled down");
        assert_eq!(
            (&reused.phone_number, reused.quarantined_until),
            (released, None),
            "{engine:?}"
        );
        assert!(
            allocate(s, "ES", NOW + 1_000).await.is_none(),
            "{engine:?}: empty"
        );
        assert!(
            allocate(s, "FR", NOW).await.is_none(),
            "{engine:?}: no inventory for the country"
        );
        let co = allocate(s, "CO", NOW).await.unwrap();
        assert_eq!(co.phone_number, "+573000000001");
        f.close().await;
    }
}

#[tokio::test]
async fn concurrent_allocations_never_share_a_number() {
    const TASKS: usize = 20;
    const NUMBERS: u32 = 15;
    for engine in engines() {
        let f = fixture(engine).await;
        let mut tx = f.store.begin().await.unwrap();
        numbers::insert_many(&mut tx, "ES", &phones(0..NUMBERS), NOW)
            .await
            .unwrap();
        commit(tx).await.unwrap();
        // On PostgreSQL every transaction is open before any allocates; on SQLite writers
        // queue on the single write connection, so a barrier there would never open.
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let (store, barrier) = (f.store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                if store.engine() == Engine::Postgres {
                    barrier.wait().await;
                }
                let n =
                    numbers::allocate(&mut tx, store.engine(), "ES", &new_id_at("mid", NOW), NOW)
                        .await
                        .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                commit(tx).await.unwrap();
                n.map(|n| n.phone_number)
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.extend(t.await.unwrap());
        }
        let distinct: BTreeSet<&String> = got.iter().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "{engine:?}: a number was handed out twice: {got:?}"
        );
        assert_eq!(
            got.len(),
            NUMBERS as usize,
            "{engine:?}: every number taken once, the rest None"
        );
        f.close().await;
    }
}

fn fields(e: &audit::Event) -> EventFields<'_> {
    EventFields {
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

async fn append(store: &Store, account: Option<&str>, action: &str) -> String {
    let mut tx = store.begin().await.unwrap();
    let e = audit::NewEvent {
        account_id: account,
        action,
        actor_type: "system",
        actor_id: "system",
        entity_type: "test",
        entity_id: action,
        mid: None,
        data: r#"{"n":1}"#,
        at: NOW,
    };
    let id = audit::append(&mut tx, &e).await.unwrap();
    commit(tx).await.unwrap();
    id
}

/// The whole chain, asserting seq 1..=n, each prev_hash the previous hash, each hash the
/// link of its content, and the head; returns the event ids in order.
async fn assert_chain(store: &Store, chain: &str) -> Vec<String> {
    let mut conn = store.reader().await.unwrap();
    let events = ami_store::system::audit::chain_batch(&system(), &mut conn, chain, 0, 10_000)
        .await
        .unwrap();
    let mut prev = GENESIS.to_owned();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.chain_seq, i as i64 + 1, "chain {chain}: gap or duplicate");
        assert_eq!(
            e.prev_hash, prev,
            "chain {chain}: broken link at {}",
            e.chain_seq
        );
        assert_eq!(
            e.hash,
            link_hash(&prev, &fields(e)),
            "chain {chain}: hash at {}",
            e.chain_seq
        );
        prev = e.hash.clone();
    }
    let head = ami_store::system::audit::head(&system(), &mut conn, chain)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head, (events.len() as i64, prev), "chain {chain}: head");
    events.into_iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn audit_append_links_one_chain_per_account() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        let mut ids: Vec<(&str, String)> = Vec::new();
        for (chain, account, action) in [
            ("acct_a", Some("acct_a"), "a1"),
            ("acct_b", Some("acct_b"), "b1"),
            ("acct_a", Some("acct_a"), "a2"),
            ("global", None, "g1"),
            ("acct_a", Some("acct_a"), "a3"),
            ("acct_b", Some("acct_b"), "b2"),
        ] {
            ids.push((chain, append(s, account, action).await));
        }
        for chain in ["acct_a", "acct_b", "global"] {
            let expected: Vec<String> = ids
                .iter()
                .filter(|(c, _)| *c == chain)
                .map(|(_, id)| id.clone())
                .collect();
            assert_eq!(
                assert_chain(s, chain).await,
                expected,
                "{engine:?}: chain {chain}"
            );
        }
        let mut conn = s.reader().await.unwrap();
        assert_eq!(
            ami_store::system::audit::chains(&system(), &mut conn)
                .await
                .unwrap(),
            ["acct_a", "acct_b", "global"]
        );
        drop(conn);
        f.close().await;
    }
}

#[tokio::test]
async fn concurrent_appends_keep_the_chain_gap_free() {
    const TASKS: usize = 20;
    for engine in engines() {
        let f = fixture(engine).await;
        append(&f.store, Some("acct_other"), "unrelated").await;
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let (store, barrier) = (f.store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                if store.engine() == Engine::Postgres {
                    barrier.wait().await;
                }
                let action = format!("concurrent_{i}");
                let e = audit::NewEvent {
                    account_id: Some("acct_busy"),
                    action: &action,
                    actor_type: "system",
                    actor_id: "system",
                    entity_type: "test",
                    entity_id: "x",
                    mid: None,
                    data: "{}",
                    at: NOW + i as i64,
                };
                let id = audit::append(&mut tx, &e).await.unwrap();
                commit(tx).await.unwrap();
                id
            }));
        }
        let mut appended = BTreeSet::new();
        for t in tasks {
            appended.insert(t.await.unwrap());
        }
        let chain = assert_chain(&f.store, "acct_busy").await;
        assert_eq!(chain.len(), TASKS, "{engine:?}: seq 1..={TASKS}");
        assert_eq!(
            chain.into_iter().collect::<BTreeSet<_>>(),
            appended,
            "{engine:?}"
        );
        assert_eq!(assert_chain(&f.store, "acct_other").await.len(), 1);
        f.close().await;
    }
}

const TTL: i64 = 86_400_000;
const LEASE: i64 = 35_000;

fn window(now: i64) -> idempotency::Window {
    idempotency::Window {
        now,
        ttl_ms: TTL,
        lease_ms: LEASE,
    }
}

async fn claim_as(
    store: &Store,
    scope: &str,
    key: &str,
    hash: &str,
    token: &str,
    now: i64,
) -> Claim {
    let mut tx = store.begin().await.unwrap();
    let c = idempotency::claim(&mut tx, scope, key, hash, token, window(now))
        .await
        .unwrap();
    commit(tx).await.unwrap();
    c
}

async fn claim(store: &Store, scope: &str, key: &str, hash: &str, now: i64) -> Claim {
    claim_as(store, scope, key, hash, "t", now).await
}

async fn complete(store: &Store, scope: &str, key: &str, token: &str, body: &str) -> bool {
    let mut tx = store.begin().await.unwrap();
    let done = idempotency::complete(&mut tx, scope, key, token, 201, body)
        .await
        .unwrap();
    commit(tx).await.unwrap();
    done
}

#[tokio::test]
async fn idempotency_claim_replay_mismatch_and_expiry() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        assert!(
            matches!(claim(s, "scope_a", "k1", "h1", NOW).await, Claim::Fresh),
            "{engine:?}"
        );
        assert!(
            matches!(
                claim(s, "scope_a", "k1", "h1", NOW + 1).await,
                Claim::InFlight
            ),
            "{engine:?}"
        );
        assert!(complete(s, "scope_a", "k1", "t", r#"{"ok":true}"#).await);
        match claim(s, "scope_a", "k1", "h1", NOW + 2).await {
            Claim::Replay { status, body } => {
                assert_eq!((status, body.as_str()), (201, r#"{"ok":true}"#))
            }
            _ => panic!("{engine:?}: expected a replay"),
        }
        assert!(
            matches!(
                claim(s, "scope_a", "k1", "h2", NOW + 3).await,
                Claim::Mismatch
            ),
            "{engine:?}"
        );
        // Keys belong to their scope (the caller's credential).
        assert!(
            matches!(claim(s, "scope_b", "k1", "h2", NOW + 3).await, Claim::Fresh),
            "{engine:?}"
        );
        // Still remembered at the edge of the window, forgotten after it.
        assert!(
            matches!(
                claim(s, "scope_a", "k1", "h1", NOW + TTL).await,
                Claim::Replay { .. }
            ),
            "{engine:?}"
        );
        assert!(
            matches!(
                claim(s, "scope_a", "k1", "h2", NOW + TTL + 1).await,
                Claim::Fresh
            ),
            "{engine:?}"
        );
        f.close().await;
    }
}

#[tokio::test]
async fn idempotency_claims_expire_after_their_lease_and_belong_to_their_token() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        assert!(matches!(
            claim_as(s, "sc", "k", "h", "first", NOW).await,
            Claim::Fresh
        ));
        // Within the lease the key is held; another request is refused.
        assert!(
            matches!(
                claim_as(s, "sc", "k", "h", "second", NOW + LEASE - 1).await,
                Claim::InFlight
            ),
            "{engine:?}"
        );
        // After it, the same request takes the key over; another body still may not.
        assert!(
            matches!(
                claim_as(s, "sc", "k", "other", "third", NOW + LEASE).await,
                Claim::Mismatch
            ),
            "{engine:?}"
        );
        assert!(
            matches!(
                claim_as(s, "sc", "k", "h", "second", NOW + LEASE).await,
                Claim::Fresh
            ),
            "{engine:?}"
        );
        assert!(
            matches!(
                claim_as(s, "sc", "k", "h", "third", NOW + LEASE + 1).await,
                Claim::InFlight
            ),
            "{engine:?}: the takeover holds a fresh lease"
        );
        // The first holder, late, neither completes nor releases the successor's claim.
        assert!(!complete(s, "sc", "k", "first", "late").await, "{engine:?}");
        let mut tx = s.begin().await.unwrap();
        idempotency::release(&mut tx, "sc", "k", "first")
            .await
            .unwrap();
        commit(tx).await.unwrap();
        assert!(complete(s, "sc", "k", "second", "mine").await, "{engine:?}");
        match claim(s, "sc", "k", "h", NOW + LEASE + 2).await {
            Claim::Replay { body, .. } => assert_eq!(body, "mine", "{engine:?}"),
            _ => panic!("{engine:?}: expected the successor's answer"),
        }
        f.close().await;
    }
}

async fn keys(store: &Store) -> BTreeSet<String> {
    let mut conn = store.reader().await.unwrap();
    sqlx::query_scalar::<_, String>("SELECT key FROM idempotency_keys")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn idempotency_sweep_removes_what_the_window_forgot() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        // Five finished keys past the window, one finished and one in flight inside it, and
        // an old claim whose lease (as long as a request may run) is still live.
        for i in 0..5 {
            claim(s, "sc", &format!("old-{i}"), "h", NOW + i).await;
            complete(s, "sc", &format!("old-{i}"), "t", "{}").await;
        }
        let late = NOW + TTL;
        claim(s, "sc", "recent", "h", late).await;
        complete(s, "sc", "recent", "t", "{}").await;
        claim(s, "sc", "running", "h", late).await;
        let mut tx = s.begin().await.unwrap();
        idempotency::claim(
            &mut tx,
            "sc",
            "slow",
            "h",
            "t",
            idempotency::Window {
                now: NOW,
                ttl_ms: TTL,
                lease_ms: TTL + 3_600_000,
            },
        )
        .await
        .unwrap();
        commit(tx).await.unwrap();

        let sweep = |limit: i64| async move {
            let mut tx = s.begin().await.unwrap();
            let swept = idempotency::sweep(&mut tx, late + 10, TTL, limit)
                .await
                .unwrap();
            commit(tx).await.unwrap();
            swept
        };
        // Batches of about two, oldest first, until the cutoff is reached.
        let mut deleted = 0;
        let mut batches = 0;
        loop {
            let swept = sweep(2).await;
            assert!(swept.deleted <= 2, "{engine:?}: {swept:?}");
            deleted += swept.deleted;
            batches += 1;
            if !swept.more {
                break;
            }
            assert!(batches < 10, "{engine:?}: the sweep does not end");
        }
        assert_eq!(deleted, 5, "{engine:?}");
        assert!(batches >= 3, "{engine:?}: {batches} batches of at most two");
        assert_eq!(
            sweep(100).await,
            idempotency::Swept {
                deleted: 0,
                more: false
            },
            "{engine:?}"
        );
        assert_eq!(
            keys(s).await,
            ["recent", "running", "slow"]
                .map(String::from)
                .into_iter()
                .collect(),
            "{engine:?}"
        );
        f.close().await;
    }
}

#[tokio::test]
async fn pages_of_two_over_five_rows() {
    for engine in engines() {
        let f = fixture(engine).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let id = new_id_at("acct", NOW + i);
            new_account(&f.store, &id).await;
            ids.push(id);
        }
        ids.reverse(); // newest first
        let mut conn = f.store.reader().await.unwrap();
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor = None;
        loop {
            let page = ami_store::system::accounts::list(
                &system(),
                &mut conn,
                &PageRequest {
                    limit: 2,
                    cursor: cursor.clone(),
                },
            )
            .await
            .unwrap();
            sizes.push(page.items.len());
            seen.extend(page.items.into_iter().map(|a| a.id));
            match page.next_cursor {
                Some(c) => {
                    assert_eq!(
                        Some(&c),
                        seen.last(),
                        "{engine:?}: the cursor is the last id of the page"
                    );
                    cursor = Some(c);
                }
                None => break,
            }
        }
        assert_eq!(sizes, [2, 2, 1], "{engine:?}");
        assert_eq!(seen, ids, "{engine:?}: newest first, each row once");
        drop(conn);
        f.close().await;
    }
}

fn call(id: String, account: &str, mid: &str, direction: &str, status: &str) -> calls::Call {
    calls::Call {
        id,
        account_id: account.into(),
        mid_id: mid.into(),
        direction: direction.into(),
        from_number: "+34600000001".into(),
        to_number: "+34600123456".into(),
        callback_sip_uri: Some("sip:agent@voice.example.com".into()),
        status: status.into(),
        created_at: NOW,
        handed_at: None,
        started_at: None,
        answered_at: None,
        ended_at: None,
        duration_sec: None,
        hangup_cause: None,
        telco_ref: None,
        retry_count: 0,
        cost: 0,
        updated_at: NOW,
    }
}

#[tokio::test]
async fn calls_are_scoped_listed_locked_and_found_live() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        new_account(s, "acct_a").await;
        new_account(s, "acct_b").await;
        let mid_a = seed_mid(s, engine, "acct_a", "+34600000001").await;
        let mid_b = seed_mid(s, engine, "acct_b", "+34600000002").await;
        let rows = [
            call(
                new_id_at("call", NOW),
                "acct_a",
                &mid_a,
                "outbound",
                "initiated",
            ),
            call(
                new_id_at("call", NOW + 1),
                "acct_a",
                &mid_a,
                "inbound",
                "in_progress",
            ),
            call(
                new_id_at("call", NOW + 2),
                "acct_a",
                &mid_a,
                "outbound",
                "completed",
            ),
            call(
                new_id_at("call", NOW + 3),
                "acct_b",
                &mid_b,
                "outbound",
                "ringing",
            ),
        ];
        let mut tx = s.begin().await.unwrap();
        for c in &rows {
            calls::insert(&mut tx, c).await.unwrap();
        }
        commit(tx).await.unwrap();

        let mut conn = s.reader().await.unwrap();
        let a0 = &rows[0];
        assert_eq!(
            calls::get(&mut conn, &acct("acct_a"), &mid_a, &a0.id)
                .await
                .unwrap()
                .as_ref(),
            Some(a0),
            "{engine:?}: a call reads back as written"
        );
        assert!(
            calls::get(&mut conn, &acct("acct_b"), &mid_a, &a0.id)
                .await
                .unwrap()
                .is_none()
                && calls::get(&mut conn, &acct("acct_b"), &mid_b, &a0.id)
                    .await
                    .unwrap()
                    .is_none(),
            "{engine:?}: another account's call is a miss"
        );
        let page = |limit, cursor| PageRequest { limit, cursor };
        let all = calls::list(&mut conn, &acct("acct_a"), &mid_a, None, &page(2, None))
            .await
            .unwrap();
        assert_eq!(
            all.items.iter().map(|c| &c.id).collect::<Vec<_>>(),
            [&rows[2].id, &rows[1].id],
            "{engine:?}: newest first"
        );
        let rest = calls::list(
            &mut conn,
            &acct("acct_a"),
            &mid_a,
            None,
            &page(2, all.next_cursor),
        )
        .await
        .unwrap();
        assert_eq!(
            (rest.items.len(), rest.next_cursor),
            (1, None),
            "{engine:?}"
        );
        let outbound = calls::list(
            &mut conn,
            &acct("acct_a"),
            &mid_a,
            Some("outbound"),
            &page(50, None),
        )
        .await
        .unwrap();
        assert_eq!(outbound.items.len(), 2, "{engine:?}");
        assert!(
            calls::list(&mut conn, &acct("acct_b"), &mid_a, None, &page(50, None))
                .await
                .unwrap()
                .items
                .is_empty(),
            "{engine:?}"
        );
        drop(conn);

        // Live calls by MID, by account, everywhere; ended ones never.
        let mut tx = s.begin().await.unwrap();
        let ids = |v: Vec<calls::Call>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(
            ids(
                ami_store::system::calls::live(&system(), &mut tx, engine, Some(&mid_a), None)
                    .await
                    .unwrap()
            ),
            [rows[0].id.clone(), rows[1].id.clone()],
            "{engine:?}"
        );
        assert_eq!(
            ids(
                ami_store::system::calls::live(&system(), &mut tx, engine, None, Some("acct_b"))
                    .await
                    .unwrap()
            ),
            [rows[3].id.clone()],
            "{engine:?}"
        );
        assert_eq!(
            ami_store::system::calls::live(&system(), &mut tx, engine, None, None)
                .await
                .unwrap()
                .len(),
            3,
            "{engine:?}"
        );
        // Locked read-modify-write of every mutable column.
        let mut c = ami_store::system::calls::lock(&system(), &mut tx, engine, &a0.id)
            .await
            .unwrap()
            .unwrap();
        c.status = "completed".into();
        c.handed_at = Some(NOW + 10);
        c.started_at = Some(NOW + 20);
        c.answered_at = Some(NOW + 30);
        c.ended_at = Some(NOW + 90_000);
        c.duration_sec = Some(90);
        c.hangup_cause = Some("normal_clearing".into());
        c.telco_ref = Some("sbx_ref_1".into());
        c.retry_count = 2;
        c.cost = 100_000;
        c.updated_at = NOW + 90_000;
        ami_store::system::calls::save(&system(), &mut tx, &c)
            .await
            .unwrap();
        commit(tx).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        assert_eq!(
            ami_store::system::calls::by_id(&system(), &mut conn, &a0.id)
                .await
                .unwrap()
                .as_ref(),
            Some(&c),
            "{engine:?}"
        );
        assert_eq!(
            ami_store::system::calls::by_telco_ref(&system(), &mut conn, "sbx_ref_1")
                .await
                .unwrap()
                .map(|c| c.id),
            Some(a0.id.clone()),
            "{engine:?}"
        );
        drop(conn);
        let mut tx = s.begin().await.unwrap();
        assert_eq!(
            ami_store::system::calls::live(
                &system(),
                &mut tx,
                engine,
                Some(&mid_a),
                Some("acct_a")
            )
            .await
            .unwrap()
            .len(),
            1,
            "{engine:?}: the completed call is no longer live"
        );
        drop(tx);
        f.close().await;
    }
}

/// The batch reads behind group commit match whole `(account, mid)` pairs only: an account
/// named next to another account's MID finds nothing, on every batch function.
fn message(id: String, account: &str, mid: &str, direction: &str) -> messages::Message {
    messages::Message {
        id,
        account_id: account.into(),
        mid_id: mid.into(),
        direction: direction.into(),
        from_number: "+34600000001".into(),
        to_number: "+34600000009".into(),
        body: "hello".into(),
        segments: 1,
        encoding: "GSM-7".into(),
        cost: 0,
        status: "queued".into(),
        created_at: NOW,
        handed_at: None,
        sent_at: None,
        delivered_at: None,
        telco_ref: Some(format!("ref-{direction}")),
        retry_count: 0,
        error: None,
        updated_at: NOW,
    }
}

#[tokio::test]
async fn message_pages_merge_both_directions_newest_first() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        new_account(s, "acct_a").await;
        new_account(s, "acct_b").await;
        let mid_a = seed_mid(s, engine, "acct_a", "+34600000001").await;
        let mid_b = seed_mid(s, engine, "acct_b", "+34600000002").await;
        // Directions interleaved unevenly, so pages cross from one run to the other.
        let directions = [
            "outbound", "inbound", "outbound", "outbound", "inbound", "outbound",
        ];
        let rows: Vec<_> = directions
            .iter()
            .enumerate()
            .map(|(i, d)| message(new_id_at("msg", NOW + i as i64), "acct_a", &mid_a, d))
            .collect();
        let mut tx = s.begin().await.unwrap();
        for m in &rows {
            messages::insert(&mut tx, m).await.unwrap();
        }
        let other = message(new_id_at("msg", NOW + 10), "acct_b", &mid_b, "inbound");
        messages::insert(&mut tx, &other).await.unwrap();
        commit(tx).await.unwrap();

        let mut conn = s.reader().await.unwrap();
        let newest_first: Vec<&String> = rows.iter().rev().map(|m| &m.id).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let req = PageRequest { limit: 4, cursor };
            let page = messages::list(&mut conn, &acct("acct_a"), &mid_a, None, &req)
                .await
                .unwrap();
            assert!(page.items.len() <= 4, "{engine:?}");
            seen.extend(page.items.into_iter().map(|m| m.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(
            seen.iter().collect::<Vec<_>>(),
            newest_first,
            "{engine:?}: both directions, newest first, each once"
        );
        let req = PageRequest {
            limit: 50,
            cursor: None,
        };
        let inbound = messages::list(&mut conn, &acct("acct_a"), &mid_a, Some("inbound"), &req)
            .await
            .unwrap();
        assert_eq!(
            inbound.items.iter().map(|m| &m.id).collect::<Vec<_>>(),
            [&rows[4].id, &rows[1].id],
            "{engine:?}: one direction"
        );
        assert!(
            messages::list(&mut conn, &acct("acct_b"), &mid_a, None, &req)
                .await
                .unwrap()
                .items
                .is_empty(),
            "{engine:?}: another account sees none of this MID's messages"
        );
        let by_ref = ami_store::system::messages::inbound_by_telco_ref(
            &system(),
            &mut conn,
            &mid_a,
            "ref-inbound",
        )
        .await
        .unwrap()
        .map(|m| m.id);
        assert_eq!(
            by_ref.as_ref(),
            Some(&rows[1].id),
            "{engine:?}: oldest inbound of the reference"
        );
        assert!(
            ami_store::system::messages::inbound_by_telco_ref(
                &system(),
                &mut conn,
                &mid_a,
                "ref-outbound"
            )
            .await
            .unwrap()
            .is_none(),
            "{engine:?}: outbound references are not looked up"
        );
    }
}

#[tokio::test]
async fn cancellable_messages_are_the_queued_outbound_ones_of_the_scope() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        new_account(s, "acct_a").await;
        new_account(s, "acct_b").await;
        let mid_a1 = seed_mid(s, engine, "acct_a", "+34600000001").await;
        let mid_a2 = seed_mid(s, engine, "acct_a", "+34600000002").await;
        let mid_b = seed_mid(s, engine, "acct_b", "+34600000003").await;
        let queued = |n: i64, account: &str, mid: &str| {
            message(new_id_at("msg", NOW + n), account, mid, "outbound")
        };
        let (a1, a2, b) = (
            queued(0, "acct_a", &mid_a1),
            queued(1, "acct_a", &mid_a2),
            queued(2, "acct_b", &mid_b),
        );
        let mut handed = queued(3, "acct_a", &mid_a1);
        handed.handed_at = Some(NOW);
        let inbound = message(new_id_at("msg", NOW + 4), "acct_a", &mid_a1, "inbound");
        let mut tx = s.begin().await.unwrap();
        for m in [&a1, &a2, &b, &handed, &inbound] {
            messages::insert(&mut tx, m).await.unwrap();
        }
        // Accepted messages wait in the outbox until handed off; a handed-off one has left.
        for m in [&a1, &a2, &b] {
            outbox::enqueue(&mut tx, "submit_sms", &m.id, NOW, NOW)
                .await
                .unwrap();
        }
        commit(tx).await.unwrap();

        let mut conn = s.reader().await.unwrap();
        let mut ids = async |mid: Option<&str>, account: Option<&str>| {
            let mut ids: Vec<String> =
                ami_store::system::messages::cancellable(&system(), &mut conn, mid, account)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.id)
                    .collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ids(Some(&mid_a1), None).await,
            std::slice::from_ref(&a1.id),
            "{engine:?}: one MID"
        );
        assert_eq!(
            ids(None, Some("acct_a")).await,
            [a1.id.clone(), a2.id.clone()],
            "{engine:?}: one account"
        );
        assert_eq!(
            ids(None, None).await,
            [a1.id.clone(), a2.id.clone(), b.id.clone()],
            "{engine:?}: everywhere"
        );
    }
}

#[tokio::test]
async fn batch_reads_match_whole_tenant_pairs() {
    use ami_core::policy::{DestinationUsage, Kind, Usage};
    use ami_store::usage;
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        new_account(s, "acct_one").await;
        new_account(s, "acct_two").await;
        let a = seed_mid(s, engine, "acct_one", "+34600000101").await;
        let b = seed_mid(s, engine, "acct_two", "+34600000102").await;
        let mut tx = s.begin().await.unwrap();
        let (one, two) = (acct("acct_one"), acct("acct_two"));
        let pairs = [(&one, a.as_str()), (&two, b.as_str())];
        let crossed = [(&one, b.as_str()), (&two, a.as_str())];

        let found = mids::get_many(&mut tx, &pairs).await.unwrap();
        assert_eq!(found.len(), 2, "{engine:?}");
        assert!(
            mids::get_many(&mut tx, &crossed).await.unwrap().is_empty(),
            "{engine:?}"
        );

        let counters = usage::lock_many(&mut tx, &pairs).await.unwrap();
        assert_eq!(counters.len(), 2, "{engine:?}");
        let spent = Usage {
            spend_month: 42,
            sms_hour: 3,
            ..Usage::default()
        };
        usage::save_many(&mut tx, &[(&acct("acct_one"), &a, spent.clone())])
            .await
            .unwrap();
        // Saving through the wrong account changes nothing.
        usage::save_many(&mut tx, &[(&acct("acct_two"), &a, Usage::default())])
            .await
            .unwrap();
        let again = usage::lock_many(&mut tx, &pairs).await.unwrap();
        assert_eq!(again[&a], spent, "{engine:?}");
        assert!(
            usage::lock_many(&mut tx, &crossed)
                .await
                .unwrap()
                .is_empty()
        );

        let d = DestinationUsage {
            hour_start: NOW,
            hour_count: 2,
            day_start: NOW,
            day_count: 2,
        };
        usage::save_destinations(
            &mut tx,
            Kind::Sms,
            &[
                (a.as_str(), "+34600123456", d.clone()),
                (b.as_str(), "+34600999999", d.clone()),
            ],
        )
        .await
        .unwrap();
        let known = usage::destinations(
            &mut tx,
            Kind::Sms,
            &[(a.as_str(), "+34600123456"), (a.as_str(), "+34600999999")],
        )
        .await
        .unwrap();
        assert_eq!(known.len(), 1, "{engine:?} {known:?}");
        assert_eq!(known[&(a.clone(), "+34600123456".to_owned())], d);
        commit(tx).await.unwrap();
        f.close().await;
    }
}
