use std::cell::Cell;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{MAX_KEPT, NAME, register, wal_syncs_on_this_thread};

thread_local! {
    /// Writes this thread's WAL handles made to the platform's file.
    pub(super) static PLATFORM_WRITES: Cell<usize> = const { Cell::new(0) };
}

fn platform_writes() -> usize {
    PLATFORM_WRITES.with(Cell::get)
}

/// A connection as the store opens its writer: this VFS, WAL, no cache spill.
fn writer(path: &Path) -> Connection {
    register().expect("VFS registered");
    let conn = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        NAME,
    )
    .expect("opened");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_spill = OFF;
         PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);",
    )
    .expect("set up");
    conn
}

fn plain(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("opened");
    conn.execute_batch("PRAGMA busy_timeout = 5000")
        .expect("set up");
    conn
}

/// Inserts `rows` rows of a page each in one transaction, keys from `from`.
fn insert_pages(conn: &Connection, from: i64, rows: i64) {
    let tx = conn.unchecked_transaction().expect("begun");
    for k in from..from + rows {
        tx.execute(
            "INSERT INTO t (k, v) VALUES (?1, zeroblob(3000) || ?2)",
            (k, k.to_string()),
        )
        .expect("inserted");
    }
    tx.commit().expect("committed");
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("counted")
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("checked")
}

#[test]
fn a_commit_of_many_pages_reaches_the_wal_in_one_write() {
    let dir = tempfile::tempdir().expect("dir");
    let conn = writer(&dir.path().join("db"));
    insert_pages(&conn, 0, 1);
    let before = platform_writes();
    insert_pages(&conn, 1, 20);
    // Twenty pages and more, each a header and a page: forty-odd writes without the VFS.
    assert_eq!(platform_writes() - before, 1);
}

#[test]
fn a_committed_transaction_is_in_the_files_when_commit_returns() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db");
    let conn = writer(&path);
    insert_pages(&conn, 0, 50);
    // A copy taken now, with the writer still open and nothing checkpointed, is what a
    // crash would leave.
    let copy = tempfile::tempdir().expect("dir");
    for suffix in ["", "-wal"] {
        std::fs::copy(
            dir.path().join(format!("db{suffix}")),
            copy.path().join(format!("db{suffix}")),
        )
        .expect("copied");
    }
    let recovered = plain(&copy.path().join("db"));
    assert_eq!(count(&recovered), 50);
    assert_eq!(integrity(&recovered), "ok");
    drop(conn);
}

#[test]
fn other_connections_read_each_commit_as_it_returns() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db");
    let conn = writer(&path);
    let reader = plain(&path);
    for round in 0..30 {
        insert_pages(&conn, round * 7, 7);
        assert_eq!(count(&reader), (round + 1) * 7);
    }
}

#[test]
fn a_one_page_commit_after_another_writers_is_read_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db");
    let conn = writer(&path);
    let other = plain(&path);
    insert_pages(&conn, 0, 3);
    for round in 1..30 {
        // The other connection's frames end the WAL elsewhere than this one's last write.
        insert_pages(&other, round * 1000, 2);
        for value in [1u8, 2] {
            conn.execute("UPDATE t SET v = ?1 WHERE k = 0", [[value]])
                .expect("updated");
            let v: Vec<u8> = other
                .query_row("SELECT v FROM t WHERE k = 0", [], |r| r.get(0))
                .expect("read");
            assert_eq!(v, [value], "round {round}");
        }
    }
}

#[test]
fn a_transaction_larger_than_one_write_is_written_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db");
    let conn = writer(&path);
    // Several times the platform's largest write, and more than the kept buffer's bound.
    let rows = 3 * i64::try_from(MAX_KEPT).expect("fits") / 4096;
    insert_pages(&conn, 0, rows);
    let reader = plain(&path);
    assert_eq!(count(&reader), rows);
    assert_eq!(integrity(&reader), "ok");
}

#[test]
fn writers_with_and_without_the_vfs_take_turns_on_one_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db");
    let conn = writer(&path);
    let other = plain(&path);
    for round in 0..20 {
        insert_pages(&conn, round * 100, 5);
        insert_pages(&other, round * 100 + 50, 3);
        // A rolled-back transaction leaves nothing for a later write to put back.
        conn.execute_batch("BEGIN; INSERT INTO t (k, v) VALUES (-1, x'00'); ROLLBACK;")
            .expect("rolled back");
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpointed");
    insert_pages(&conn, 10_000, 4);
    assert_eq!(count(&other), 20 * 8 + 4);
    assert_eq!(integrity(&other), "ok");
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn a_commit_syncs_the_wal_before_it_returns_in_full_mode_and_never_in_normal_mode() {
    let dir = tempfile::tempdir().expect("dir");
    let conn = writer(&dir.path().join("db"));
    // The first commit writes the WAL's header, which SQLite syncs in either mode.
    insert_pages(&conn, 0, 1);
    let before = wal_syncs_on_this_thread();
    for round in 1..10 {
        insert_pages(&conn, round * 10, 3);
    }
    assert_eq!(wal_syncs_on_this_thread(), before, "synchronous = NORMAL");
    conn.execute_batch("PRAGMA synchronous = FULL")
        .expect("set");
    for round in 10..20 {
        let before = wal_syncs_on_this_thread();
        insert_pages(&conn, round * 10, 3);
        assert_eq!(
            wal_syncs_on_this_thread() - before,
            1,
            "synchronous = FULL, round {round}"
        );
    }
}

/// The contract's reason: a transaction larger than the page cache but within the kept
/// bound, rolled back, then another writer's commit where its frames would have gone, then
/// one of this connection. A spilled frame kept in memory would overwrite the other
/// writer's frames then.
#[test]
fn a_rolled_back_transaction_larger_than_the_cache_leaves_nothing_to_write_later() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("db");
    let conn = writer(&path);
    let other = plain(&path);
    insert_pages(&conn, 0, 2000);
    let cache: i64 = conn
        .query_row("PRAGMA cache_size", [], |r| r.get(0))
        .expect("read");
    // About 4 MB of pages: twice the default cache (-2000 KiB), half the kept bound.
    assert_eq!(cache, -2000);
    for round in 0..4 {
        conn.execute_batch("BEGIN").expect("begun");
        conn.execute(
            "UPDATE t SET v = zeroblob(3001) || ?1 WHERE k < 1000",
            [round],
        )
        .expect("updated");
        conn.execute_batch("ROLLBACK").expect("rolled back");
        insert_pages(&other, 10_000 + round * 10, 3);
        insert_pages(&conn, 20_000 + round * 10, 3);
        assert_eq!(integrity(&other), "ok", "round {round}");
        assert_eq!(count(&other), 2000 + (round + 1) * 6, "round {round}");
    }
}

#[test]
fn registering_twice_is_harmless() {
    register().expect("first");
    register().expect("second");
    assert_eq!(super::C_NAME.to_str(), Ok(NAME));
}
