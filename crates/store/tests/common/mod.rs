//! The store fixture shared by the conformance suites: a migrated store on a fresh database
//! of each engine (SQLite always, PostgreSQL when `AMI_TEST_DATABASE_URL` names a server).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ami_core::id::new_id_at;
use ami_store::{Durability, Engine, OpenOptions, Store, accounts, commit, mids, numbers};

pub const NOW: i64 = 1_800_000_000_000;

/// A migrated store on a fresh database; the temp dir lives as long as the store.
pub struct Fixture {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// SQLite always; PostgreSQL too when the environment names a server. Under `CI=true` a
/// missing PostgreSQL fails the test instead of leaving half of it unrun.
pub fn engines() -> Vec<Engine> {
    let mut e = vec![Engine::Sqlite];
    if std::env::var("AMI_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        e.push(Engine::Postgres);
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the PostgreSQL half of this test needs AMI_TEST_DATABASE_URL (CI must set it)"
        );
    }
    e
}

/// A new, empty PostgreSQL database on the server of `AMI_TEST_DATABASE_URL`.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let base = std::env::var("AMI_TEST_DATABASE_URL").unwrap();
    let (server, base_db) = base.rsplit_once('/').expect("a database name in the url");
    let base_db = base_db.split('?').next().unwrap();
    let name = format!(
        "{base_db}_s_{}",
        ami_core::id::new_id("x").trim_start_matches("x_")
    );
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{server}/{name}")
}

pub async fn open(url: &str) -> Store {
    open_with(url, Durability::default()).await
}

pub async fn open_with(url: &str, durability: Durability) -> Store {
    Store::open(
        url,
        &OpenOptions {
            allow_insecure_permissions: false,
            max_connections: 32,
            durability,
        },
    )
    .await
    .unwrap()
}

pub async fn fixture(engine: Engine) -> Fixture {
    fixture_with(engine, Durability::default()).await
}

pub async fn fixture_with(engine: Engine, durability: Durability) -> Fixture {
    let (url, dir) = match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (
                format!("sqlite://{}/ami.db", dir.path().display()),
                Some(dir),
            )
        }
        Engine::Postgres => (fresh_pg_database().await, None),
    };
    let store = open_with(&url, durability).await;
    assert!(
        !store.migrate().await.unwrap().is_empty(),
        "{engine:?}: a fresh database gets the schema"
    );
    Fixture {
        store,
        url,
        _dir: dir,
    }
}

impl Fixture {
    /// Closes the store and drops its PostgreSQL database: a run leaves no database behind.
    pub async fn close(self) {
        self.store.close().await;
        if self.store.engine() == Engine::Postgres {
            drop_pg_database(&self.url).await;
        }
    }
}

/// Drops a database [`fresh_pg_database`] made.
pub async fn drop_pg_database(url: &str) {
    use sqlx::Connection;
    let name = url.rsplit_once('/').map(|(_, db)| db.to_owned());
    let base = std::env::var("AMI_TEST_DATABASE_URL").unwrap();
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        name.unwrap()
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

pub async fn new_account(store: &Store, id: &str) {
    let mut tx = store.begin().await.unwrap();
    let hash = ami_core::secret::hash(id);
    let a = accounts::NewAccount {
        id,
        name: id,
        billing_email: None,
        key_hash: &hash,
        key_prefix: "amik_live_0000",
        now: NOW,
    };
    accounts::insert(&mut tx, &a).await.unwrap();
    commit(tx).await.unwrap();
}

/// A MID of `account` holding `phone` (the account must exist).
pub async fn seed_mid(store: &Store, engine: Engine, account: &str, phone: &str) -> String {
    let mut tx = store.begin().await.unwrap();
    numbers::insert_many(&mut tx, "ES", &[phone.to_owned()], NOW)
        .await
        .unwrap();
    let mid_id = new_id_at("mid", NOW);
    let number = numbers::allocate(&mut tx, engine, "ES", &mid_id, NOW)
        .await
        .unwrap()
        .unwrap();
    let mid = mids::Mid {
        id: mid_id.clone(),
        account_id: account.into(),
        sim_request_id: None,
        contract_id: None,
        number_id: number.id,
        phone_number: number.phone_number,
        country: "ES".into(),
        capabilities: r#"["sms","voice"]"#.into(),
        status: "active".into(),
        inbound_sip_uri: None,
        limits: "{}".into(),
        created_at: NOW,
        updated_at: NOW,
        released_at: None,
    };
    mids::insert(&mut tx, &mid).await.unwrap();
    commit(tx).await.unwrap();
    mid_id
}

/// An account id as authentication would make it: these tests stand where `auth.rs` does.
#[allow(dead_code, clippy::disallowed_methods)]
pub fn acct(id: &str) -> ami_store::AccountId {
    ami_tenant::mint::account_id(id)
}

/// The proof the server's own work holds, for the functions of `ami_store::system`.
#[allow(dead_code, clippy::disallowed_methods)]
pub fn system() -> ami_store::System {
    ami_tenant::mint::system()
}
