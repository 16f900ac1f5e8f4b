//! Transactional offset stores (Spark's "your own data store"): the embedded redb store and
//! PostgreSQL on a real server started by each test. No Kafka needed: batches are simulated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferrokafka_streaming::store::postgres::tokio_postgres::{self, Client, NoTls};
use ferrokafka_streaming::store::redb::redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use ferrokafka_streaming::store::{
    commit_batch, PostgresStore, PostgresTransaction, RedbStore, RedbTransaction, StoreTransaction, TransactionalStore,
};
use ferrokafka_streaming::{OffsetRange, Result, StreamingError, TopicPartition};
use ferrokafka_tests::postgres::Postgres;
use ferrokafka_tests::unique_topic;

const GROUP: &str = "exactly-once";
const TOPIC: &str = "events";

fn range(partition: i32, from: i64, until: i64) -> OffsetRange {
    OffsetRange::new(TOPIC, partition, from, until).unwrap()
}

fn offsets(entries: &[(i32, i64)]) -> BTreeMap<TopicPartition, i64> {
    entries.iter().map(|&(p, o)| (TopicPartition::new(TOPIC, p), o)).collect()
}

/// The value of the record at `offset` of `partition` (the simulated results sum them).
fn value(partition: i32, offset: i64) -> i64 {
    (partition as i64 + 1) * 1_000_000 + offset
}

/// What a batch of `ranges` adds to the results: (records, sum of values).
fn batch_results(ranges: &[OffsetRange]) -> (i64, i64) {
    let records = ranges.iter().map(OffsetRange::count).sum();
    let sum = ranges.iter().flat_map(|r| (r.from_offset..r.until_offset).map(|o| value(r.partition, o))).sum();
    (records, sum)
}

/// A store under test, with the application's results (a record counter and a sum).
trait Case {
    type S: TransactionalStore;
    fn store(&self) -> &Self::S;
    /// Adds to the results inside `txn`.
    async fn add(txn: &mut <Self::S as TransactionalStore>::Txn<'_>, records: i64, sum: i64) -> Result<()>;
    /// The committed results, read outside of any batch.
    async fn results(&self) -> (i64, i64);
    /// Drops the store and opens it again (redb: the file; PostgreSQL: a new connection).
    async fn reopen(&mut self);
}

// ---------- redb ----------

const REDB_RESULTS: TableDefinition<&str, i64> = TableDefinition::new("results");

struct RedbCase {
    store: Option<RedbStore>,
    path: PathBuf,
}

impl RedbCase {
    fn new() -> RedbCase {
        let path = std::env::temp_dir().join(format!("{}.redb", unique_topic("ferrokafka-store")));
        RedbCase { store: Some(RedbStore::open(&path).unwrap()), path }
    }
}

impl Drop for RedbCase {
    fn drop(&mut self) {
        self.store = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

fn redb_err(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::store(e.to_string())
}

impl Case for RedbCase {
    type S = RedbStore;
    fn store(&self) -> &RedbStore {
        self.store.as_ref().unwrap()
    }
    async fn add(txn: &mut <RedbStore as TransactionalStore>::Txn<'_>, records: i64, sum: i64) -> Result<()> {
        let mut table = txn.redb().open_table(REDB_RESULTS).map_err(redb_err)?;
        for (key, add) in [("records", records), ("sum", sum)] {
            let old = table.get(key).map_err(redb_err)?.map(|v| v.value()).unwrap_or(0);
            table.insert(key, old + add).map_err(redb_err)?;
        }
        Ok(())
    }
    async fn results(&self) -> (i64, i64) {
        let read = self.store().database().begin_read().unwrap();
        let table = match read.open_table(REDB_RESULTS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return (0, 0),
            Err(e) => panic!("{e}"),
        };
        let get = |k: &str| table.get(k).unwrap().map(|v| v.value()).unwrap_or(0);
        (get("records"), get("sum"))
    }
    async fn reopen(&mut self) {
        self.store = None;
        self.store = Some(RedbStore::open(&self.path).unwrap());
    }
}

// ---------- PostgreSQL ----------

struct PgCase {
    store: Option<PostgresStore>,
    /// A separate connection, to read what is committed.
    reader: Client,
    server: Postgres,
}

async fn pg_client(server: &Postgres) -> Client {
    let (client, connection) = tokio_postgres::connect(&server.connection_string(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

impl PgCase {
    async fn new() -> PgCase {
        let server = Postgres::start();
        let reader = pg_client(&server).await;
        reader
            .batch_execute("CREATE TABLE results (name TEXT PRIMARY KEY, value BIGINT NOT NULL)")
            .await
            .unwrap_or_else(|e| panic!("{e:?}; log:\n{}", server.log_tail()));
        let store = PostgresStore::connect(&server.connection_string()).await.unwrap();
        PgCase { store: Some(store), reader, server }
    }
}

impl Case for PgCase {
    type S = PostgresStore;
    fn store(&self) -> &PostgresStore {
        self.store.as_ref().unwrap()
    }
    async fn add(txn: &mut <PostgresStore as TransactionalStore>::Txn<'_>, records: i64, sum: i64) -> Result<()> {
        txn.sql()
            .execute(
                "INSERT INTO results VALUES ('records', $1), ('sum', $2) \
                 ON CONFLICT (name) DO UPDATE SET value = results.value + EXCLUDED.value",
                &[&records, &sum],
            )
            .await
            .map_err(|e| StreamingError::store(format!("{e:?}")))?;
        Ok(())
    }
    async fn results(&self) -> (i64, i64) {
        let rows = self.reader.query("SELECT name, value FROM results", &[]).await.unwrap();
        let get = |k: &str| rows.iter().find(|r| r.get::<_, &str>(0) == k).map(|r| r.get::<_, i64>(1)).unwrap_or(0);
        (get("records"), get("sum"))
    }
    async fn reopen(&mut self) {
        self.store = None;
        self.store = Some(PostgresStore::connect(&self.server.connection_string()).await.unwrap());
    }
}

// ---------- the contract, for both stores ----------

fn assert_mismatch(e: &StreamingError, partition: i32, stored: Option<i64>, from: i64) {
    match e {
        StreamingError::OffsetMismatch { topic, partition: p, stored: s, from: f } => {
            assert_eq!((topic.as_str(), *p, *s, *f), (TOPIC, partition, stored, from), "{e}");
        }
        other => panic!("expected OffsetMismatch, got {other:?}"),
    }
    assert!(!e.is_retriable());
}

/// Results written, then offsets advanced, then commit (Spark's order); `Err` leaves it rolled back.
async fn results_then_offsets<C: Case>(case: &C, ranges: &[OffsetRange]) -> Result<()> {
    let mut txn = case.store().begin().await?;
    let (records, sum) = batch_results(ranges);
    C::add(&mut txn, records, sum).await?;
    txn.advance_offsets(GROUP, ranges).await?;
    txn.commit().await
}

async fn contract<C: Case>(case: &mut C) {
    // Empty store.
    assert!(case.store().load_offsets(GROUP).await.unwrap().is_empty());
    assert_eq!(case.results().await, (0, 0));

    // First batch: nothing stored, any start is accepted.
    let first = [range(0, 100, 110), range(1, 0, 5)];
    results_then_offsets(case, &first).await.unwrap();
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), offsets(&[(0, 110), (1, 5)]));
    let after_first = batch_results(&first);
    assert_eq!(case.results().await, after_first);

    // The same batch again: refused, its results not visible.
    let e = results_then_offsets(case, &first).await.unwrap_err();
    assert_mismatch(&e, 0, Some(110), 100);
    assert_eq!(case.results().await, after_first);
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), offsets(&[(0, 110), (1, 5)]));

    // A skipped range (starts beyond the stored offset): refused, although partition 0 is fine.
    let e = results_then_offsets(case, &[range(0, 110, 120), range(1, 6, 9)]).await.unwrap_err();
    assert_mismatch(&e, 1, Some(5), 6);
    assert_eq!(case.results().await, after_first);
    // And one that goes back.
    let e = results_then_offsets(case, &[range(1, 4, 9)]).await.unwrap_err();
    assert_mismatch(&e, 1, Some(5), 4);

    // A commit after a refused advance fails too (the transaction is aborted).
    let mut txn = case.store().begin().await.unwrap();
    C::add(&mut txn, 1, 1).await.unwrap();
    let e = txn.advance_offsets(GROUP, &[range(0, 0, 1)]).await.unwrap_err();
    assert_mismatch(&e, 0, Some(110), 0);
    let e = txn.commit().await.unwrap_err();
    assert_mismatch(&e, 0, Some(110), 0);
    assert_eq!(case.results().await, after_first);

    // Crash before commit: neither results nor offsets change.
    let second = [range(0, 110, 130), range(1, 5, 5), range(2, 0, 3)];
    {
        let mut txn = case.store().begin().await.unwrap();
        txn.advance_offsets(GROUP, &second).await.unwrap();
        let (records, sum) = batch_results(&second);
        C::add(&mut txn, records, sum).await.unwrap();
        // Dropped here.
    }
    assert_eq!(case.results().await, after_first);
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), offsets(&[(0, 110), (1, 5)]));

    // The retry commits (offsets first this time, through commit_batch), results and offsets together.
    let (records, sum) = batch_results(&second);
    let got = commit_batch(case.store(), GROUP, &second, async |txn| {
        C::add(txn, records, sum).await?;
        Ok(records)
    })
    .await
    .unwrap();
    assert_eq!(got, 23);
    let after_second = (after_first.0 + records, after_first.1 + sum);
    assert_eq!(case.results().await, after_second);
    let want = offsets(&[(0, 130), (1, 5), (2, 3)]);
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), want);
    // Groups are separate.
    assert!(case.store().load_offsets("another-group").await.unwrap().is_empty());

    // commit_batch refuses a repeat before running the writer.
    let e = commit_batch(case.store(), GROUP, &second, async |_txn| -> Result<()> { panic!("results written") })
        .await
        .unwrap_err();
    assert_mismatch(&e, 0, Some(130), 110);

    // Reopened, the store sees the committed state.
    case.reopen().await;
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), want);
    assert_eq!(case.results().await, after_second);
    results_then_offsets(case, &[range(2, 3, 4)]).await.unwrap();
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), offsets(&[(0, 130), (1, 5), (2, 4)]));
}

#[tokio::test]
async fn redb_contract() {
    contract(&mut RedbCase::new()).await;
}

#[tokio::test]
async fn postgres_contract() {
    contract(&mut PgCase::new().await).await;
}

// ---------- exactly once under failures ----------

/// xorshift64*: deterministic, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default, Debug)]
struct Tally {
    committed: u32,
    crashes: u32,
    lost_acks: u32,
    replays: u32,
    skips: u32,
}

/// 50 committed batches over 3 partitions whose logs grow, with injected failures: crashes
/// before commit (the stream restarts from the stored offsets), commits whose acknowledgement is
/// lost (the batch is retried and refused), replays of old batches and skipped ranges. The
/// results must count every record exactly once.
async fn exactly_once<C: Case>(case: &mut C, seed: u64) -> Tally {
    const PARTITIONS: i32 = 3;
    let mut rng = Rng(seed);
    let mut log_end = [0i64; PARTITIONS as usize];
    let mut tally = Tally::default();
    let mut history: Vec<Vec<OffsetRange>> = Vec::new();
    // Where the stream starts: the store (empty: from the beginning of each partition).
    let load = async |case: &C| {
        let stored = case.store().load_offsets(GROUP).await.unwrap();
        (0..PARTITIONS).map(|p| stored.get(&TopicPartition::new(TOPIC, p)).copied().unwrap_or(0)).collect::<Vec<i64>>()
    };
    let mut position = load(case).await;
    let mut attempts = 0;
    while tally.committed < 50 {
        attempts += 1;
        assert!(attempts < 1000, "seed {seed}: no progress: {tally:?}");
        for end in log_end.iter_mut() {
            *end += rng.below(15) as i64;
        }
        // At most 10 records per partition per batch (a rate limit).
        let ranges: Vec<OffsetRange> = (0..PARTITIONS)
            .map(|p| {
                let from = position[p as usize];
                range(p, from, log_end[p as usize].min(from + rng.below(11) as i64))
            })
            .collect();
        let (records, sum) = batch_results(&ranges);
        let fate = rng.below(100);
        if fate < 5 && !history.is_empty() {
            // A replay of an old batch: refused unless all its ranges were empty.
            let old = history[rng.below(history.len() as u64) as usize].clone();
            let (r, s) = batch_results(&old);
            match commit_batch(case.store(), GROUP, &old, async |txn| C::add(txn, r, s).await).await {
                Err(StreamingError::OffsetMismatch { .. }) => {}
                Err(e) => panic!("seed {seed}: replay: {e}"),
                // Only a batch of empty ranges, right after it committed, can be repeated.
                Ok(()) => assert_eq!(r, 0, "seed {seed}: a replayed batch was committed"),
            }
            tally.replays += 1;
            continue;
        }
        if fate < 10 && !history.is_empty() {
            // A range that skips records (every partition has a stored offset by now).
            let mut skipped = ranges.clone();
            let r = &mut skipped[rng.below(PARTITIONS as u64) as usize];
            r.from_offset += 1;
            r.until_offset += 1;
            let e = results_then_offsets(case, &skipped).await.unwrap_err();
            assert!(matches!(e, StreamingError::OffsetMismatch { .. }), "seed {seed}: skip: {e}");
            tally.skips += 1;
            continue;
        }
        let mut txn = case.store().begin().await.unwrap();
        if fate < 40 {
            // Write order varies; a crash at any point before commit loses the whole batch.
            C::add(&mut txn, records, sum).await.unwrap();
            txn.advance_offsets(GROUP, &ranges).await.unwrap();
            drop(txn);
            tally.crashes += 1;
            if rng.below(2) == 0 {
                case.reopen().await;
            }
            position = load(case).await;
            continue;
        }
        txn.advance_offsets(GROUP, &ranges).await.unwrap();
        C::add(&mut txn, records, sum).await.unwrap();
        txn.commit().await.unwrap();
        tally.committed += 1;
        history.push(ranges.clone());
        if fate < 50 {
            // The commit's acknowledgement was lost: the batch is retried and must be refused
            // (or be a no-op when all its ranges are empty); the stream then restarts.
            tally.lost_acks += 1;
            match commit_batch(case.store(), GROUP, &ranges, async |txn| C::add(txn, records, sum).await).await {
                Err(StreamingError::OffsetMismatch { stored, from, .. }) => assert_ne!(stored, Some(from)),
                Err(e) => panic!("seed {seed}: retry: {e}"),
                Ok(()) => assert_eq!(records, 0, "seed {seed}: a non-empty batch was committed twice"),
            }
            position = load(case).await;
        } else {
            for r in &ranges {
                position[r.partition as usize] = r.until_offset;
            }
        }
    }
    // Exactly once: the results are those of the records below the stored offsets.
    let stored = case.store().load_offsets(GROUP).await.unwrap();
    let consumed: Vec<OffsetRange> = stored.iter().map(|(tp, &o)| range(tp.partition, 0, o)).collect();
    let expected = batch_results(&consumed);
    assert!(expected.0 > 0, "seed {seed}: nothing consumed");
    assert_eq!(case.results().await, expected, "seed {seed}: {tally:?}");
    for (p, end) in log_end.iter().enumerate() {
        assert!(stored[&TopicPartition::new(TOPIC, p as i32)] <= *end);
    }
    tally
}

#[tokio::test]
async fn redb_exactly_once_under_failures() {
    for seed in [1, 0x5eed, 0xdead_beef] {
        let tally = exactly_once(&mut RedbCase::new(), seed).await;
        assert!(tally.crashes > 0 && tally.lost_acks > 0 && tally.replays + tally.skips > 0, "{tally:?}");
    }
}

#[tokio::test]
async fn postgres_exactly_once_under_failures() {
    let mut case = PgCase::new().await;
    let tally = exactly_once(&mut case, 42).await;
    assert!(tally.crashes > 0 && tally.lost_acks > 0 && tally.replays + tally.skips > 0, "{tally:?}");
}

// ---------- concurrent writers ----------

type AddFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Adds one record (of value 1) to the results.
fn redb_add_one(txn: &mut RedbTransaction) -> AddFuture<'_> {
    Box::pin(RedbCase::add(txn, 1, 1))
}

/// Adds one record (of value 1) to the results.
fn pg_add_one(txn: &mut PostgresTransaction) -> AddFuture<'_> {
    Box::pin(PgCase::add(txn, 1, 1))
}

/// One attempt per store at the same batch, each holding its transaction a moment before
/// committing; returns how many committed. The others must have seen OffsetMismatch.
async fn race<S, F>(stores: Vec<Arc<S>>, ranges: Vec<OffsetRange>, add: F) -> usize
where
    S: TransactionalStore + 'static,
    F: for<'a> Fn(&'a mut S::Txn<'_>) -> AddFuture<'a> + Send + Sync + Copy + 'static,
{
    let mut tasks = Vec::new();
    for store in stores {
        let ranges = ranges.clone();
        tasks.push(tokio::spawn(async move {
            let mut txn = store.begin().await?;
            txn.advance_offsets(GROUP, &ranges).await?;
            add(&mut txn).await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            txn.commit().await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StreamingError::OffsetMismatch { .. }) => {}
            Err(e) => panic!("a losing writer must see OffsetMismatch, got {e:?}"),
        }
    }
    won
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_concurrent_writers_exactly_one_wins() {
    let case = RedbCase::new();
    let store = Arc::new(case.store().clone());
    // First batch (nothing stored) and a later one.
    for (i, ranges) in [vec![range(0, 0, 10)], vec![range(0, 10, 20), range(1, 0, 4)]].into_iter().enumerate() {
        let won = race(vec![store.clone(); 6], ranges, redb_add_one).await;
        assert_eq!(won, 1, "batch {i}");
        assert_eq!(case.results().await, (i as i64 + 1, i as i64 + 1));
    }
    assert_eq!(store.load_offsets(GROUP).await.unwrap(), offsets(&[(0, 20), (1, 4)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_writers_exactly_one_wins() {
    let case = PgCase::new().await;
    // Separate connections, as separate processes would have.
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(Arc::new(PostgresStore::connect(&case.server.connection_string()).await.unwrap()));
    }
    for (i, ranges) in [vec![range(0, 0, 10)], vec![range(0, 10, 20), range(1, 0, 4)]].into_iter().enumerate() {
        let won = race(stores.clone(), ranges, pg_add_one).await;
        assert_eq!(won, 1, "batch {i}; log:\n{}", case.server.log_tail());
        assert_eq!(case.results().await, (i as i64 + 1, i as i64 + 1));
    }
    // Repeatedly, with no head start for anyone.
    for round in 0..10i64 {
        let from = 20 + round * 5;
        let won = race(stores.clone(), vec![range(0, from, from + 5)], pg_add_one).await;
        assert_eq!(won, 1, "round {round}");
    }
    assert_eq!(stores[0].load_offsets(GROUP).await.unwrap(), offsets(&[(0, 70), (1, 4)]));
    assert_eq!(case.results().await, (12, 12));
}

/// A transaction dropped without commit releases its row locks promptly: another connection's
/// writer of the same partition is not blocked until this store is used again.
#[tokio::test]
async fn postgres_dropped_transaction_releases_its_locks() {
    let case = PgCase::new().await;
    results_then_offsets(&case, &[range(0, 0, 10)]).await.unwrap();
    let other = PostgresStore::connect(&case.server.connection_string()).await.unwrap();
    {
        let mut txn = case.store().begin().await.unwrap();
        txn.advance_offsets(GROUP, &[range(0, 10, 20)]).await.unwrap();
    }
    let mut txn = tokio::time::timeout(Duration::from_secs(10), async {
        let mut txn = other.begin().await.unwrap();
        txn.advance_offsets(GROUP, &[range(0, 10, 15)]).await.unwrap();
        txn
    })
    .await
    .expect("the dropped transaction still holds the row lock");
    PgCase::add(&mut txn, 5, 0).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(case.store().load_offsets(GROUP).await.unwrap(), offsets(&[(0, 15)]));
    assert_eq!(case.results().await, (15, batch_results(&[range(0, 0, 10)]).1));
    // commit_batch's future is Send: it runs on a spawned task.
    tokio::spawn(async move {
        commit_batch(&other, GROUP, &[range(0, 15, 16)], async |txn| PgCase::add(txn, 1, 0).await).await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(case.results().await.0, 16);
}

/// A failed statement of the application aborts the PostgreSQL transaction: the commit reports
/// it instead of silently rolling back.
#[tokio::test]
async fn postgres_failed_statement_fails_the_commit() {
    let case = PgCase::new().await;
    let mut txn = case.store().begin().await.unwrap();
    txn.advance_offsets(GROUP, &[range(0, 0, 10)]).await.unwrap();
    assert!(txn.sql().execute("INSERT INTO no_such_table VALUES (1)", &[]).await.is_err());
    let e = txn.commit().await.unwrap_err();
    assert!(matches!(&e, StreamingError::Store { .. }) && e.to_string().contains("25P02"), "{e}");
    assert!(e.is_retriable());
    assert!(case.store().load_offsets(GROUP).await.unwrap().is_empty());
    // The store is usable afterwards.
    results_then_offsets(&case, &[range(0, 0, 10)]).await.unwrap();
    assert_eq!(case.results().await, batch_results(&[range(0, 0, 10)]));
}

/// Server errors keep the server's message; bad rows are errors.
#[tokio::test]
async fn postgres_errors_keep_the_cause() {
    let server = Postgres::start();
    let e = PostgresStore::connect(&format!("{} dbname=missing_db", server.connection_string())).await.unwrap_err();
    assert!(
        matches!(&e, StreamingError::Store { .. })
            && e.to_string().contains("missing_db")
            && e.to_string().contains("3D000"),
        "{e}"
    );
    assert!(e.is_retriable());

    let client = pg_client(&server).await;
    // A table of the same name but another shape.
    client
        .batch_execute("CREATE TABLE ferrokafka_offsets (group_id TEXT, topic TEXT, partition TEXT, next_offset TEXT)")
        .await
        .unwrap();
    client.batch_execute("INSERT INTO ferrokafka_offsets VALUES ('g', 't', 'zero', 'x')").await.unwrap();
    let store = PostgresStore::connect(&server.connection_string()).await.unwrap();
    let e = store.load_offsets("g").await.unwrap_err();
    assert!(matches!(&e, StreamingError::Store { .. }) && e.to_string().contains("partition"), "{e}");
    let mut txn = store.begin().await.unwrap();
    let e = txn.advance_offsets("g", &[range(0, 0, 1)]).await.unwrap_err();
    assert!(matches!(e, StreamingError::Store { .. }), "{e}");
    assert!(txn.commit().await.is_err());
}

#[test]
fn postgres_server_starts_and_stops() {
    let server = Postgres::start();
    let port = server.port();
    let dir = server.dir().to_path_buf();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(dir.join("data/PG_VERSION").exists());
    drop(server);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "still listening after drop");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
