//! The webhook part of the store's contract, identical on both engines: endpoints scoped to
//! an account and exactly one scope (a MID, or the account), per-resource sequences that
//! never hand a number out twice, deliveries claimed under a lease that concurrent claimers
//! never share, attempts recorded only by the lease holder, disabled webhooks parked, and
//! a deleted webhook taking its deliveries and attempts with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use ami_core::id::new_id_at;
use ami_store::page::PageRequest;
use ami_store::webhook_deliveries::{self as deliveries, NewAttempt, NewDelivery, Settled};
use ami_store::webhooks::{self, Scope, Webhook};
use ami_store::{Engine, Store, commit};

use common::{NOW, acct, engines, fixture, new_account, seed_mid, system};

const LEASE: i64 = 30_000;

fn webhook(account: &str, mid: Option<&str>) -> Webhook {
    Webhook {
        id: new_id_at("wh", NOW),
        account_id: account.into(),
        mid_id: mid.map(str::to_owned),
        url: "https://hooks.example.com/ami".into(),
        events: r#"["*"]"#.into(),
        secret: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
        secret_prefix: "whsec_AAEC".into(),
        status: webhooks::ACTIVE.into(),
        disabled_reason: None,
        disabled_at: None,
        consecutive_failures: 0,
        created_at: NOW,
        updated_at: NOW,
    }
}

async fn insert_webhook(store: &Store, w: &Webhook) {
    let mut tx = store.begin().await.unwrap();
    webhooks::insert(&mut tx, w).await.unwrap();
    commit(tx).await.unwrap();
}

/// `n` deliveries of one webhook, due at NOW; their ids.
async fn deliveries_of(store: &Store, w: &Webhook, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| new_id_at("dlv", NOW)).collect();
    let event_ids: Vec<String> = (0..n).map(|_| new_id_at("evt", NOW)).collect();
    let rows: Vec<NewDelivery<'_>> = ids
        .iter()
        .zip(&event_ids)
        .enumerate()
        .map(|(i, (id, event_id))| NewDelivery {
            id: id.clone(),
            account_id: &w.account_id,
            webhook_id: &w.id,
            event_id,
            event: "sms.inbound",
            mid_id: w.mid_id.as_deref(),
            sequence: i as i64 + 1,
            payload: "{\"n\":1}",
            redelivery_of: None,
            now: NOW,
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    deliveries::insert_many(&mut tx, &rows).await.unwrap();
    commit(tx).await.unwrap();
    ids
}

async fn claim(store: &Store, now: i64, batch: i64) -> Vec<deliveries::Claimed> {
    let mut tx = store.begin().await.unwrap();
    let claimed = deliveries::claim(&mut tx, store.engine(), now, LEASE, batch, "test")
        .await
        .unwrap();
    commit(tx).await.unwrap();
    claimed
}

async fn settle(store: &Store, c: &deliveries::Claimed, status: &str, due: Option<i64>) -> bool {
    let mut tx = store.begin().await.unwrap();
    let ours = deliveries::settle(
        &mut tx,
        &Settled {
            id: &c.id,
            lease_token: &c.lease_token,
            attempts: c.attempts + 1,
            status,
            due_at: due,
            attempted_at: NOW,
            status_code: Some(200),
            error: None,
            delivered_at: (status == deliveries::DELIVERED).then_some(NOW),
        },
    )
    .await
    .unwrap();
    commit(tx).await.unwrap();
    ours
}

/// Two accounts; the first with a MID webhook and an account webhook.
async fn two_accounts(store: &Store, engine: Engine) -> (String, String, Webhook, Webhook) {
    new_account(store, "acct_a").await;
    new_account(store, "acct_b").await;
    let mid = seed_mid(store, engine, "acct_a", "+34600000101").await;
    let on_mid = webhook("acct_a", Some(&mid));
    let on_account = webhook("acct_a", None);
    insert_webhook(store, &on_mid).await;
    insert_webhook(store, &on_account).await;
    (mid, "acct_b".into(), on_mid, on_account)
}

#[tokio::test]
async fn webhooks_are_found_only_in_their_account_and_exact_scope() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        let (mid, other, on_mid, on_account) = two_accounts(s, engine).await;
        let mut conn = s.reader().await.unwrap();
        let got = |scope, id: &str| {
            let id = id.to_owned();
            async move {
                let mut c = s.reader().await.unwrap();
                webhooks::get(&mut c, &acct("acct_a"), scope, &id)
                    .await
                    .unwrap()
            }
        };
        assert!(
            got(Scope::Mid(&mid), &on_mid.id).await.is_some(),
            "{engine:?}"
        );
        assert!(got(Scope::Account, &on_account.id).await.is_some());
        // The wrong scope is a miss, both ways; so is another account.
        assert!(
            got(Scope::Account, &on_mid.id).await.is_none(),
            "{engine:?}"
        );
        assert!(got(Scope::Mid(&mid), &on_account.id).await.is_none());
        assert!(
            webhooks::get(&mut conn, &acct(&other), Scope::Account, &on_account.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            webhooks::get(&mut conn, &acct(&other), Scope::Mid(&mid), &on_mid.id)
                .await
                .unwrap()
                .is_none()
        );

        assert_eq!(
            webhooks::count(&mut conn, &acct("acct_a"), Scope::Mid(&mid))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            webhooks::count(&mut conn, &acct("acct_a"), Scope::Account)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            webhooks::count(&mut conn, &acct(&other), Scope::Account)
                .await
                .unwrap(),
            0
        );
        let page = PageRequest {
            limit: 10,
            cursor: None,
        };
        let listed = webhooks::list(&mut conn, &acct("acct_a"), Scope::Mid(&mid), &page)
            .await
            .unwrap();
        assert_eq!(
            listed.items.iter().map(|w| &w.id).collect::<Vec<_>>(),
            vec![&on_mid.id],
            "{engine:?}"
        );
        assert!(
            webhooks::list(&mut conn, &acct(&other), Scope::Account, &page)
                .await
                .unwrap()
                .items
                .is_empty()
        );
        drop(conn);

        let mut tx = s.begin().await.unwrap();
        assert!(
            webhooks::lock_scope(&mut tx, engine, &acct("acct_a"), Scope::Mid(&mid))
                .await
                .unwrap()
        );
        assert!(
            !webhooks::lock_scope(&mut tx, engine, &acct(&other), Scope::Mid(&mid))
                .await
                .unwrap(),
            "{engine:?}: another account's MID is no scope of its"
        );
        // Deleting through another account or the wrong scope deletes nothing.
        assert!(
            !webhooks::delete(&mut tx, &acct(&other), Scope::Account, &on_account.id)
                .await
                .unwrap()
        );
        assert!(
            !webhooks::delete(&mut tx, &acct("acct_a"), Scope::Account, &on_mid.id)
                .await
                .unwrap()
        );
        assert!(
            !webhooks::enable(
                &mut tx,
                &acct("acct_a"),
                Scope::Account,
                &on_account.id,
                NOW
            )
            .await
            .unwrap(),
            "an active webhook is not enabled again"
        );
        commit(tx).await.unwrap();
        let subs = {
            let mut conn = s.reader().await.unwrap();
            ami_store::system::webhooks::subscriptions(&system(), &mut conn, &["acct_a", "acct_b"])
                .await
                .unwrap()
        };
        assert_eq!(subs.len(), 2, "{engine:?}");
        f.close().await;
    }
}

#[tokio::test]
async fn sequences_never_repeat_under_concurrency() {
    for engine in engines() {
        let f = fixture(engine).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = f.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = s.begin().await.unwrap();
                let n = 1 + i % 3;
                let first = deliveries::reserve_sequences(&mut tx, "mid_x", n)
                    .await
                    .unwrap();
                commit(tx).await.unwrap();
                (first..first + n).collect::<Vec<i64>>()
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let unique: BTreeSet<i64> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "{engine:?}: a number twice");
        assert_eq!(
            unique,
            (1..=all.len() as i64).collect(),
            "{engine:?}: not gap-free"
        );
        let mut tx = f.store.begin().await.unwrap();
        assert_eq!(
            deliveries::reserve_sequences(&mut tx, "mid_y", 1)
                .await
                .unwrap(),
            1,
            "each resource counts on its own"
        );
        commit(tx).await.unwrap();
        f.close().await;
    }
}

#[tokio::test]
async fn a_lease_is_held_by_one_claimer_until_it_expires() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        let (_, _, on_mid, _) = two_accounts(s, engine).await;
        deliveries_of(s, &on_mid, 3).await;

        let first = claim(s, NOW, 2).await;
        assert_eq!(first.len(), 2, "{engine:?}");
        assert!(
            first
                .iter()
                .all(|c| c.url == on_mid.url && c.secret == on_mid.secret)
        );
        let second = claim(s, NOW + 1, 10).await;
        assert_eq!(second.len(), 1, "{engine:?}: only the unleased one");
        assert!(claim(s, NOW + LEASE - 1, 10).await.is_empty(), "{engine:?}");

        // The lease of `first` expires: another claimer takes them over; the first holder
        // can no longer record anything.
        let taken_over = claim(s, NOW + LEASE, 10).await;
        assert_eq!(taken_over.len(), 2, "{engine:?}");
        // `second` still holds its lease and records its attempt.
        assert!(settle(s, &second[0], deliveries::DELIVERED, None).await);
        assert!(!settle(s, &first[0], deliveries::DELIVERED, None).await);
        let again = taken_over.iter().find(|c| c.id == first[0].id).unwrap();
        assert!(settle(s, again, deliveries::PENDING, Some(NOW + LEASE + 5_000)).await);
        // Settled: the token is spent, and the delivery waits for its due time.
        assert!(!settle(s, again, deliveries::DELIVERED, None).await);
        assert!(claim(s, NOW + LEASE + 4_999, 10).await.is_empty());
        let retried = claim(s, NOW + LEASE + 5_000, 10).await;
        assert_eq!(retried.len(), 1, "{engine:?}: the retry alone");
        let retry = &retried[0];
        assert_eq!(retry.id, first[0].id);
        assert_eq!(retry.attempts, 1);
        assert!(settle(s, retry, deliveries::DELIVERED, None).await);

        let mut conn = s.reader().await.unwrap();
        let d = deliveries::get(&mut conn, &acct("acct_a"), &on_mid.id, &first[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.status.as_str(), d.attempts, d.due_at, d.delivered_at),
            (deliveries::DELIVERED, 2, None, Some(NOW)),
            "{engine:?}"
        );
        assert!(
            deliveries::get(&mut conn, &acct("acct_b"), &on_mid.id, &first[0].id)
                .await
                .unwrap()
                .is_none()
        );
        drop(conn);
        f.close().await;
    }
}

#[tokio::test]
async fn concurrent_claimers_never_share_a_delivery() {
    for engine in engines() {
        let f = fixture(engine).await;
        let (_, _, on_mid, on_account) = two_accounts(&f.store, engine).await;
        let mut ids = deliveries_of(&f.store, &on_mid, 30).await;
        ids.extend(deliveries_of(&f.store, &on_account, 30).await);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = f.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = claim(&s, NOW, 4).await;
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|c| c.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let unique: BTreeSet<&String> = all.iter().collect();
        assert_eq!(
            unique.len(),
            all.len(),
            "{engine:?}: a delivery claimed twice"
        );
        assert_eq!(unique, ids.iter().collect(), "{engine:?}");
        f.close().await;
    }
}

#[tokio::test]
async fn disabled_webhooks_park_their_deliveries_until_enabled() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        let (mid, _, on_mid, on_account) = two_accounts(s, engine).await;
        deliveries_of(s, &on_mid, 2).await;
        let on_account_ids = deliveries_of(s, &on_account, 1).await;

        let mut tx = s.begin().await.unwrap();
        assert!(
            ami_store::system::webhooks::disable(&system(), &mut tx, &on_mid.id, "gone", NOW)
                .await
                .unwrap()
        );
        assert!(
            !ami_store::system::webhooks::disable(&system(), &mut tx, &on_mid.id, "gone", NOW)
                .await
                .unwrap()
        );
        assert_eq!(deliveries::park(&mut tx, &on_mid.id, NOW).await.unwrap(), 2);
        commit(tx).await.unwrap();
        let claimed = claim(s, NOW, 10).await;
        assert_eq!(
            claimed.iter().map(|c| &c.id).collect::<Vec<_>>(),
            on_account_ids.iter().collect::<Vec<_>>(),
            "{engine:?}: only the active webhook's delivery"
        );
        let mut conn = s.reader().await.unwrap();
        assert_eq!(deliveries::backlog(&mut conn).await.unwrap(), 1);
        drop(conn);

        let mut tx = s.begin().await.unwrap();
        assert!(
            !webhooks::enable(&mut tx, &acct("acct_b"), Scope::Mid(&mid), &on_mid.id, NOW)
                .await
                .unwrap(),
            "another account cannot enable it"
        );
        assert!(
            webhooks::enable(
                &mut tx,
                &acct("acct_a"),
                Scope::Mid(&mid),
                &on_mid.id,
                NOW + 1
            )
            .await
            .unwrap()
        );
        assert_eq!(
            deliveries::unpark(&mut tx, &on_mid.id, NOW + 1)
                .await
                .unwrap(),
            2
        );
        commit(tx).await.unwrap();
        assert_eq!(claim(s, NOW + 1, 10).await.len(), 2, "{engine:?}");
        f.close().await;
    }
}

#[tokio::test]
async fn failures_count_up_reset_and_attempts_go_with_their_webhook() {
    for engine in engines() {
        let f = fixture(engine).await;
        let s = &f.store;
        let (mid, _, on_mid, _) = two_accounts(s, engine).await;
        let ids = deliveries_of(s, &on_mid, 1).await;

        let mut tx = s.begin().await.unwrap();
        for n in 1..=3 {
            assert_eq!(
                ami_store::system::webhooks::count_failure(&system(), &mut tx, &on_mid.id, NOW)
                    .await
                    .unwrap(),
                Some(n)
            );
        }
        ami_store::system::webhooks::reset_failures(&system(), &mut tx, &on_mid.id, NOW)
            .await
            .unwrap();
        assert_eq!(
            ami_store::system::webhooks::count_failure(&system(), &mut tx, &on_mid.id, NOW)
                .await
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            ami_store::system::webhooks::count_failure(&system(), &mut tx, "wh_missing", NOW)
                .await
                .unwrap(),
            None
        );
        let attempts: Vec<NewAttempt<'_>> = (1..=2)
            .map(|n| NewAttempt {
                delivery_id: &ids[0],
                number: n,
                account_id: "acct_a",
                attempted_at: NOW + n,
                status_code: Some(503),
                latency_ms: 12,
                error_kind: None,
                error: None,
                response_excerpt: "busy",
            })
            .collect();
        deliveries::insert_attempts(&mut tx, &attempts)
            .await
            .unwrap();
        commit(tx).await.unwrap();

        let mut conn = s.reader().await.unwrap();
        let seen = deliveries::attempts(&mut conn, &acct("acct_a"), &ids[0], 100)
            .await
            .unwrap();
        assert_eq!(
            seen.iter().map(|a| a.number).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(
            deliveries::attempts(&mut conn, &acct("acct_b"), &ids[0], 100)
                .await
                .unwrap()
                .is_empty(),
            "{engine:?}: another account's attempts"
        );
        let page = PageRequest {
            limit: 10,
            cursor: None,
        };
        for (status, n) in [(None, 1), (Some("pending"), 1), (Some("delivered"), 0)] {
            let listed = deliveries::list(&mut conn, &acct("acct_a"), &on_mid.id, status, &page)
                .await
                .unwrap();
            assert_eq!(listed.items.len(), n, "{engine:?} {status:?}");
        }
        drop(conn);

        let mut tx = s.begin().await.unwrap();
        assert!(
            webhooks::delete(&mut tx, &acct("acct_a"), Scope::Mid(&mid), &on_mid.id)
                .await
                .unwrap()
        );
        commit(tx).await.unwrap();
        let mut conn = s.reader().await.unwrap();
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1)
                  + (SELECT COUNT(*) FROM webhook_attempts WHERE delivery_id = $2)",
        )
        .bind(&on_mid.id)
        .bind(&ids[0])
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(
            left, 0,
            "{engine:?}: deliveries and attempts outlived their webhook"
        );
        drop(conn);
        f.close().await;
    }
}
