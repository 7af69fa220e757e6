//! The direct writer, and the VFS that keeps a transaction's WAL frames in memory until its
//! commit frame (`crates/sqlite-wal`), against process death.
//!
//! A child process (this test, run again with `CHILD` set) writes through the store's real
//! paths: direct transactions of every size, including ones past the VFS's flush threshold;
//! pooled ones between them; rolled-back ones; checkpoints by the store's own task and
//! explicit RESTART and TRUNCATE ones that restart the WAL. Readers on the direct and the
//! pooled read connections check every snapshot they see while it runs. The child prints a
//! commit's sequence number only once `commit()` has returned. The parent kills it with
//! SIGKILL after a random delay, opens the file and checks it: intact, every acknowledged
//! commit there and whole, nothing else there in part. Then the next child carries on from
//! the file the last one left.
//!
//! Each run prints its seed; `AMI_TORTURE_SEED=<seed>` replays the transactions and the
//! kill delays (where a kill lands among the transactions still depends on the machine).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ami_store::{Arg, Db, Durability, OpenOptions, Store, WriteTx, commit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Set in the child: what it writes, and where.
const CHILD: &str = "AMI_TORTURE_CHILD";
const SEED: &str = "AMI_TORTURE_SEED";

/// Transactions whose items stay; each transaction deletes the items of the one this far
/// behind it, so the file stays small however long the run.
const KEEP: i64 = 64;
/// A big transaction rewrites every ballast row, a 4 KiB page each (a row of more than half
/// a page has one to itself): well past the VFS's flush threshold.
const BALLAST_ROWS: i64 = 2_400;
const BALLAST_BODY: i64 = 4_000;
const _: () = assert!(BALLAST_BODY > 4096 / 2);
const _: () = assert!(BALLAST_ROWS * 4096 > ami_sqlite_wal::MAX_KEPT as i64);
/// A child the parent never killed stops on its own.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);
/// A child's reader that sees a partial transaction exits with this.
const VIOLATION: i32 = 3;

#[test]
fn acknowledged_commits_survive_sigkill_in_normal_mode() {
    torture(
        "acknowledged_commits_survive_sigkill_in_normal_mode",
        Durability::Normal,
        32,
    );
}

#[test]
fn acknowledged_commits_survive_sigkill_in_full_mode() {
    torture(
        "acknowledged_commits_survive_sigkill_in_full_mode",
        Durability::Full,
        8,
    );
}

fn torture(test_name: &str, durability: Durability, kills: usize) {
    if let Ok(spec) = std::env::var(CHILD) {
        child::run(&spec);
        return;
    }
    let seed = std::env::var(SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test_name}: seed {seed}; replay with {SEED}={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("torture.db");
    let mut known = Known::default();
    let mut seen = Seen::default();
    // At least `kills` children; more while some path was not yet crossed (the kill
    // moments are random), up to four times as many.
    let mut rounds = 0;
    while rounds < kills || (!seen.covered() && rounds < kills * 4) {
        let round = rounds;
        rounds += 1;
        let context = format!("{test_name}, seed {seed}, round {round}");
        // Every fourth child starts with one step of each kind (a big commit, an explicit
        // checkpoint, a rollback that would have spilled, a pooled commit where its frames
        // went, a direct commit after it) and is killed only after them.
        let prelude = round % 4 == 0;
        let mut child = Child(
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
                .env(
                    CHILD,
                    child::spec(&db, durability, rng.r#gen::<u64>(), prelude),
                )
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.path().join("child.err")).unwrap())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let forward = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut output = Vec::new();
        let stderr = dir.path().join("child.err");
        let wait_for = |lines: &mpsc::Receiver<String>, output: &mut Vec<String>, words| {
            if let Err(e) = wait_for(lines, output, words) {
                panic!(
                    "{context}: no line \"{words}\" from the child ({e}); its last lines: {:?}; \
                     its stderr:\n{}",
                    &output[output.len().saturating_sub(20)..],
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
        };
        // Some children die while they open the store and recover the file.
        let early = !prelude && rng.gen_ratio(1, 8);
        let delay = if early {
            Duration::from_millis(rng.gen_range(0..80))
        } else {
            wait_for(&lines, &mut output, "ready *");
            if prelude {
                for words in ["prelude done", "read direct", "read pooled"] {
                    wait_for(&lines, &mut output, words);
                }
            }
            Duration::from_millis(rng.gen_range(0..400))
        };
        std::thread::sleep(delay);
        child.0.kill().unwrap();
        let status = child.0.wait().unwrap();
        forward.join().unwrap();
        output.extend(lines.try_iter());
        if status.signal() != Some(9) {
            panic!(
                "{context}: the child ended by itself ({status}); its stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        let acks = seen.count(&output);
        known = verify(&db, &known, &acks, &context);
        seen.wal_restarts(&db);
    }
    eprintln!("{test_name}: {seen:?}");
    let summary = format!("{test_name}, seed {seed}: {seen:?}");
    assert!(seen.covered(), "a path was never crossed: {summary}");
}

/// Waits until the child has printed a line of `words` (`*` stands for any one word),
/// keeping every line read.
fn wait_for(
    lines: &mpsc::Receiver<String>,
    output: &mut Vec<String>,
    words: &str,
) -> Result<(), mpsc::RecvTimeoutError> {
    let matches = |line: &String| {
        let (mut got, mut want) = (line.split(' '), words.split(' '));
        loop {
            match (got.next(), want.next()) {
                (None, None) => return true,
                (Some(_), Some("*")) => {}
                (Some(g), Some(w)) if g == w => {}
                _ => return false,
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !output.iter().any(matches) {
        let left = deadline.saturating_duration_since(Instant::now());
        output.push(lines.recv_timeout(left)?);
    }
    Ok(())
}

/// A child process, killed if the test fails while it runs.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the children reported over a run, to show that every path was taken.
#[derive(Debug, Default)]
struct Seen {
    direct: usize,
    pooled: usize,
    big: usize,
    rollbacks: usize,
    checkpoints: usize,
    direct_reads: usize,
    pooled_reads: usize,
    /// The least and the greatest checkpoint sequence seen in the WAL's header.
    wal_sequence: Option<(u32, u32)>,
}

impl Seen {
    /// Counts a child's lines; returns its acknowledged commits, in order.
    fn count(&mut self, output: &[String]) -> Vec<(i64, String)> {
        let mut acks = Vec::new();
        for line in output {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["ack", seq, kind] => {
                    match *kind {
                        "direct" => self.direct += 1,
                        "pooled" => self.pooled += 1,
                        "big" => self.big += 1,
                        other => panic!("unknown kind {other}"),
                    }
                    acks.push((seq.parse().unwrap(), (*kind).to_owned()));
                }
                ["rollback", _] => self.rollbacks += 1,
                ["checkpoint", ..] => self.checkpoints += 1,
                ["read", "direct"] => self.direct_reads += 1,
                ["read", "pooled"] => self.pooled_reads += 1,
                _ => {}
            }
        }
        acks
    }

    fn wal_restarts(&mut self, db: &Path) {
        let Ok(wal) = std::fs::read(wal_path(db)) else {
            return;
        };
        // An empty WAL (just truncated) has no header yet.
        if let Some(bytes) = wal.get(12..16) {
            let sequence = u32::from_be_bytes(bytes.try_into().unwrap());
            let (least, most) = self.wal_sequence.unwrap_or((sequence, sequence));
            self.wal_sequence = Some((least.min(sequence), most.max(sequence)));
        }
    }

    fn restarts(&self) -> u32 {
        self.wal_sequence.map_or(0, |(least, most)| most - least)
    }

    /// Every kind of write and read ran, and the WAL restarted at least once.
    fn covered(&self) -> bool {
        self.direct > 0
            && self.pooled > 0
            && self.big > 0
            && self.rollbacks > 0
            && self.checkpoints > 0
            && self.direct_reads > 0
            && self.pooled_reads > 0
            && self.restarts() > 0
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// What the file held at the last check.
#[derive(Debug, Clone)]
struct Known {
    /// The greatest sequence number committed.
    last: i64,
}

impl Default for Known {
    fn default() -> Self {
        Known { last: -1 }
    }
}

/// A committed transaction's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    seq: i64,
    rows: i64,
    size: i64,
    big: bool,
}

fn verify(db: &Path, known: &Known, acks: &[(i64, String)], at: &str) -> Known {
    let conn = rusqlite::Connection::open(db).unwrap();
    // Leaves the WAL as the killed child left it, for the next child to recover.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    let integrity: Vec<String> = all(&conn, "PRAGMA integrity_check", at, |r| r.get(0));
    assert_eq!(integrity, ["ok"], "{at}: integrity_check");
    let tables: Vec<i64> = all(
        &conn,
        "SELECT count(*) FROM sqlite_schema WHERE name = 'commits'",
        at,
        |r| r.get(0),
    );
    if tables == [0] {
        assert_eq!(known.last, -1, "{at}: the tables are gone");
        assert!(acks.is_empty(), "{at}: acknowledged commits without tables");
        return known.clone();
    }

    let records: Vec<Record> = all(
        &conn,
        "SELECT seq, rows, size, big FROM commits ORDER BY seq",
        at,
        |r| {
            Ok(Record {
                seq: r.get(0)?,
                rows: r.get(1)?,
                size: r.get(2)?,
                big: r.get(3)?,
            })
        },
    );
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.seq, i as i64, "{at}: a gap in the commits");
    }
    let last = records.len() as i64 - 1;

    // Every acknowledged commit, in order, from where the child started.
    for (i, (seq, _)) in acks.iter().enumerate() {
        assert_eq!(
            *seq,
            known.last + 1 + i as i64,
            "{at}: acknowledgements {acks:?}"
        );
    }
    let acknowledged = acks.last().map_or(known.last, |(seq, _)| *seq);
    assert!(
        last >= acknowledged,
        "{at}: commit {acknowledged} was acknowledged, the file ends at {last}"
    );
    // Beyond them, at most the one transaction under way when the child died.
    assert!(
        last <= acknowledged + 1,
        "{at}: the file ends at {last}, {acknowledged} was the last acknowledged"
    );
    for (seq, kind) in acks {
        let record = records[*seq as usize];
        assert_eq!(record.big, kind == "big", "{at}: commit {seq} ({kind})");
    }

    // The items of the last KEEP commits, each whole; none of any other.
    let items: Vec<(i64, i64, String)> = all(
        &conn,
        "SELECT seq, part, body FROM items ORDER BY seq, part",
        at,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    let mut expected = Vec::new();
    for record in records.iter().filter(|r| r.seq > last - KEEP) {
        for part in 0..record.rows {
            expected.push((record.seq, part, body(record.seq, part, record.size)));
        }
    }
    if items != expected {
        let first = items
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(items.len().min(expected.len()));
        panic!(
            "{at}: {} item rows where {} were committed; first difference at {first}: \
             {:?} where {:?} was expected",
            items.len(),
            expected.len(),
            items.get(first).map(|(s, p, b)| (s, p, b.len())),
            expected.get(first).map(|(s, p, b)| (s, p, b.len())),
        );
    }

    // The ballast is the last big commit's, every row of it.
    let big = records.iter().rev().find(|r| r.big).map_or(-1, |r| r.seq);
    let ballast: Vec<(i64, i64, String)> = all(
        &conn,
        "SELECT slot, seq, body FROM ballast ORDER BY slot",
        at,
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    assert_eq!(ballast.len() as i64, BALLAST_ROWS, "{at}: ballast rows");
    for (slot, (at_slot, seq, text)) in ballast.iter().enumerate() {
        let slot = slot as i64;
        assert_eq!(
            (*at_slot, *seq),
            (slot, big),
            "{at}: ballast row {slot} after big commit {big}"
        );
        assert!(
            *text == body(big, slot, BALLAST_BODY),
            "{at}: ballast row {slot}'s body is not big commit {big}'s"
        );
    }
    Known { last }
}

/// Every row of `sql`; a failure names the round and the query.
fn all<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    at: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    conn.prepare(sql)
        .and_then(|mut stmt| stmt.query_map([], row)?.collect())
        .unwrap_or_else(|e| panic!("{at}: {sql}: {e}"))
}

/// An item's or a ballast row's text: its transaction, its place, then a letter of theirs.
fn body(seq: i64, part: i64, size: i64) -> String {
    let mut text = format!("{seq}.{part}.");
    let fill = char::from(b'a' + (seq + part).rem_euclid(26) as u8);
    let size = usize::try_from(size).unwrap();
    while text.len() < size {
        text.push(fill);
    }
    text
}

mod child {
    //! The writing side: the store's real connections, killed at any moment.

    use super::*;

    pub fn spec(db: &Path, durability: Durability, seed: u64, prelude: bool) -> String {
        let mode = match durability {
            Durability::Normal => "normal",
            Durability::Full => "full",
        };
        format!("{mode} {seed} {prelude} {}", db.display())
    }

    pub fn run(spec: &str) {
        let mut words = spec.splitn(4, ' ');
        let durability = match words.next() {
            Some("full") => Durability::Full,
            _ => Durability::Normal,
        };
        let seed: u64 = words.next().unwrap().parse().unwrap();
        let prelude: bool = words.next().unwrap().parse().unwrap();
        let db = PathBuf::from(words.next().unwrap());
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap()
            .block_on(write(&db, durability, seed, prelude));
    }

    enum Kind {
        Direct,
        Pooled,
        Big,
        /// Rolled back after rewriting this many ballast rows. Past the page cache (about
        /// 500 rows) and within the VFS's flush threshold (about 2 000), a connection that
        /// spilled its cache would keep frames in memory for a later write.
        Rollback {
            ballast: i64,
        },
        Checkpoint(&'static str),
    }

    struct Plan {
        kind: Kind,
        rows: i64,
        size: i64,
    }

    fn random(rng: &mut StdRng) -> Plan {
        let (rows, size) = if rng.gen_ratio(1, 20) {
            // Some hundreds of KB: several of the platform's largest writes.
            (rng.gen_range(100..=300), rng.gen_range(2_000..=3_500))
        } else {
            (rng.gen_range(1..=40), rng.gen_range(10..=1_500))
        };
        let kind = match rng.gen_range(0..100) {
            0..=2 => Kind::Big,
            3 => Kind::Rollback {
                ballast: BALLAST_ROWS,
            },
            4..=11 => Kind::Rollback {
                ballast: rng.gen_range(500..=1_900),
            },
            12..=13 => Kind::Rollback { ballast: 0 },
            14..=21 => Kind::Pooled,
            22 => Kind::Checkpoint(if rng.r#gen() { "RESTART" } else { "TRUNCATE" }),
            _ => Kind::Direct,
        };
        Plan { kind, rows, size }
    }

    /// What follows a step: after a rollback, a pooled commit, whose frames go where the
    /// rolled-back transaction's would have; the direct commit after it is the write that
    /// would put back anything the VFS still kept.
    fn follow_up(plan: &Plan) -> Option<Plan> {
        matches!(plan.kind, Kind::Rollback { ballast } if ballast > 0).then_some(Plan {
            kind: Kind::Pooled,
            rows: 3,
            size: 100,
        })
    }

    fn prelude() -> Vec<Plan> {
        let plan = |kind| Plan {
            kind,
            rows: 5,
            size: 100,
        };
        let mut plans = vec![
            plan(Kind::Big),
            plan(Kind::Checkpoint("RESTART")),
            plan(Kind::Direct),
        ];
        // Each rollback is followed by a pooled commit (`follow_up`), then a direct one.
        for ballast in [600, 1_000, 1_400] {
            plans.push(plan(Kind::Rollback { ballast }));
            plans.push(plan(Kind::Direct));
        }
        plans
    }

    async fn write(db: &Path, durability: Durability, seed: u64, mut prelude: bool) {
        let options = OpenOptions {
            durability,
            ..OpenOptions::default()
        };
        let store = Store::open(&format!("sqlite://{}", db.display()), &options)
            .await
            .unwrap();
        set_up(&store).await;
        let mut seq = next_seq(&store).await;
        // On a line of its own: the test harness ends its own line only when the test does.
        println!("\nready {seq}");
        for which in ["direct", "direct", "pooled"] {
            tokio::spawn(read(store.clone(), which));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut plans = if prelude {
            super::child::prelude()
        } else {
            Vec::new()
        };
        plans.reverse();
        let deadline = Instant::now() + CHILD_LIFETIME;
        while Instant::now() < deadline {
            if prelude && plans.is_empty() {
                println!("prelude done");
                prelude = false;
            }
            let plan = plans.pop().unwrap_or_else(|| random(&mut rng));
            plans.extend(follow_up(&plan));
            match plan.kind {
                Kind::Direct | Kind::Big => {
                    let big = matches!(plan.kind, Kind::Big);
                    let mut tx = store.begin_write().await.unwrap();
                    assert!(matches!(tx, WriteTx::Direct(_)), "the direct writer");
                    let ballast = if big { BALLAST_ROWS } else { 0 };
                    transaction(tx.db(), seq, &plan, ballast).await;
                    tx.commit().await.unwrap();
                    println!("ack {seq} {}", if big { "big" } else { "direct" });
                    seq += 1;
                }
                Kind::Pooled => {
                    let mut tx = store.begin().await.unwrap();
                    transaction(Db::from(&mut tx), seq, &plan, 0).await;
                    commit(tx).await.unwrap();
                    println!("ack {seq} pooled");
                    seq += 1;
                }
                Kind::Rollback { ballast } => {
                    // The next commit takes the same number: what this one wrote must be gone.
                    let mut tx = store.begin_write().await.unwrap();
                    transaction(tx.db(), seq, &plan, ballast).await;
                    drop(tx);
                    println!("rollback {seq}");
                }
                Kind::Checkpoint(mode) => {
                    let mut conn = store.reader().await.unwrap();
                    let (busy, _, _): (i64, i64, i64) =
                        sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
                            .fetch_one(&mut *conn)
                            .await
                            .unwrap();
                    println!("checkpoint {mode} {busy}");
                }
            }
        }
        eprintln!("the child was not killed within {CHILD_LIFETIME:?}");
        std::process::exit(1);
    }

    async fn set_up(store: &Store) {
        let mut tx = store.begin_write().await.unwrap();
        let mut db = tx.db();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS commits (seq INTEGER PRIMARY KEY, rows INTEGER NOT NULL,
             size INTEGER NOT NULL, big INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS items (seq INTEGER NOT NULL, part INTEGER NOT NULL,
             body TEXT NOT NULL, PRIMARY KEY (seq, part))",
            "CREATE TABLE IF NOT EXISTS ballast (slot INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
             body TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ballast_seq ON ballast (seq)",
        ] {
            db.execute(ddl, &[]).await.unwrap();
        }
        let rows: i64 = db
            .fetch_one("SELECT count(*) FROM ballast", &[])
            .await
            .unwrap()
            .get(0)
            .unwrap();
        if rows == 0 {
            for slot in 0..BALLAST_ROWS {
                db.execute(
                    "INSERT INTO ballast (slot, seq, body) VALUES ($1, -1, $2)",
                    &[
                        Arg::from(slot),
                        Arg::Text(Some(body(-1, slot, BALLAST_BODY))),
                    ],
                )
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }

    async fn next_seq(store: &Store) -> i64 {
        let mut read = store.read_conn().await.unwrap();
        read.db()
            .fetch_one("SELECT coalesce(max(seq), -1) + 1 FROM commits", &[])
            .await
            .unwrap()
            .get(0)
            .unwrap()
    }

    /// Commit `seq`'s writes: its record, its items, the items of the commit KEEP behind
    /// removed, and the first `ballast` ballast rows (a big commit rewrites them all).
    async fn transaction(mut db: Db<'_>, seq: i64, plan: &Plan, ballast: i64) {
        let big = ballast == BALLAST_ROWS;
        db.execute(
            "INSERT INTO commits (seq, rows, size, big) VALUES ($1, $2, $3, $4)",
            &[
                Arg::from(seq),
                Arg::from(plan.rows),
                Arg::from(plan.size),
                Arg::from(i64::from(big)),
            ],
        )
        .await
        .unwrap();
        for part in 0..plan.rows {
            db.execute(
                "INSERT INTO items (seq, part, body) VALUES ($1, $2, $3)",
                &[
                    Arg::from(seq),
                    Arg::from(part),
                    Arg::Text(Some(body(seq, part, plan.size))),
                ],
            )
            .await
            .unwrap();
        }
        db.execute("DELETE FROM items WHERE seq = $1", &[Arg::from(seq - KEEP)])
            .await
            .unwrap();
        for slot in 0..ballast {
            db.execute(
                "UPDATE ballast SET seq = $1, body = $2 WHERE slot = $3",
                &[
                    Arg::from(seq),
                    Arg::Text(Some(body(seq, slot, BALLAST_BODY))),
                    Arg::from(slot),
                ],
            )
            .await
            .unwrap();
        }
    }

    /// One statement is one snapshot: what a reader sees of the commits, the items and the
    /// ballast at one moment.
    const SNAPSHOT: &str = "WITH last AS (SELECT coalesce(max(seq), -1) AS seq FROM commits)
        SELECT
          (SELECT count(*) FROM commits),
          (SELECT coalesce(min(seq), 0) FROM commits),
          (SELECT seq FROM last),
          (SELECT count(*) FROM commits c, last
            WHERE c.seq > last.seq - $1
              AND c.rows <> (SELECT count(*) FROM items i WHERE i.seq = c.seq)),
          (SELECT count(*) FROM items i, last
            WHERE i.seq <= last.seq - $1
               OR NOT EXISTS (SELECT 1 FROM commits c WHERE c.seq = i.seq)),
          (SELECT count(*) FROM items i JOIN commits c ON c.seq = i.seq
            WHERE length(i.body) <> c.size),
          (SELECT count(*) FROM ballast),
          (SELECT count(DISTINCT seq) FROM ballast),
          (SELECT min(seq) FROM ballast),
          (SELECT coalesce(max(seq), -1) FROM commits WHERE big = 1)";

    async fn read(store: Store, which: &'static str) {
        let mut checks = 0u64;
        loop {
            let row = if which == "direct" {
                let mut conn = store.read_conn().await.unwrap();
                assert!(matches!(conn, ami_store::ReadConn::Direct(_)));
                conn.db().fetch_one(SNAPSHOT, &[Arg::from(KEEP)]).await
            } else {
                let mut conn = store.reader().await.unwrap();
                Db::from(&mut conn)
                    .fetch_one(SNAPSHOT, &[Arg::from(KEEP)])
                    .await
            }
            .unwrap();
            let v: Vec<i64> = (0..10).map(|i| row.get(i).unwrap()).collect();
            let [
                count,
                first,
                last,
                partial,
                stray,
                torn,
                ballast,
                versions,
                ballast_seq,
                big,
            ] = v[..]
            else {
                unreachable!()
            };
            let whole = count == last - first + 1
                && (count == 0 || first == 0)
                && partial == 0
                && stray == 0
                && torn == 0
                && ballast == BALLAST_ROWS
                && versions == 1
                && ballast_seq == big;
            if !whole {
                eprintln!(
                    "the {which} reader saw a partial transaction: commits {count} \
                     ({first}..={last}), {partial} incomplete, {stray} stray items, \
                     {torn} items of the wrong size, ballast {ballast} rows of {versions} \
                     commits (least {ballast_seq}, last big commit {big})"
                );
                std::process::exit(VIOLATION);
            }
            checks += 1;
            if checks % 20 == 1 {
                println!("read {which}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
