//! The streaming crate's examples (`streaming/examples/`, one per example of Spark's Kafka 0-10
//! guide), each run as its own process against real brokers: librdkafka's mock cluster, a
//! PostgreSQL server, and tansu behind stunnel for TLS. Every test checks what the example
//! printed (and, for the stores, what it stored) against the records the test produced.
//!
//! The example binaries are built once per test process with
//! `cargo build -p ferrokafka-streaming --examples` (a no-op when they are up to date), or
//! taken from `FERROKAFKA_EXAMPLES_DIR` when that is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::store::postgres::tokio_postgres::{self, NoTls};
use ferrokafka_streaming::store::redb::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use ferrokafka_streaming::store::{RedbStore, TransactionalStore};
use ferrokafka_streaming::TopicPartition;
use ferrokafka_tests::fake::FakeCluster;
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::postgres::Postgres;
use ferrokafka_tests::stunnel::{TlsBroker, TlsOptions};
use ferrokafka_tests::testgen::{KeyType, Pki, KEY_PASSWORD, STORE_PASSWORD};
use ferrokafka_tests::{repo_root, unique_topic};

/// Longest an example may run (`timeout`).
const EXAMPLE_TIMEOUT_S: &str = "120";
/// Longest the examples' build may take.
const BUILD_TIMEOUT_S: &str = "1200";

/// The directory holding the built examples.
fn examples_dir() -> &'static PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("FERROKAFKA_EXAMPLES_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        let target = if target.is_relative() { repo_root().join(target) } else { target };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let started = Instant::now();
        let mut build = Command::new("timeout");
        build.args([BUILD_TIMEOUT_S, &cargo, "build", "-q", "-p", "ferrokafka-streaming", "--examples"]);
        // Without the variables cargo set for this test (CARGO_PKG_*, CARGO_MANIFEST_*, …): they
        // would change the fingerprints of the shared crates, and the next plain build (or this
        // one) would rebuild them.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_", "CARGO_TARGET_TMPDIR"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                build.env_remove(&*key);
            }
        }
        let out = build
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {cargo}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo build -p ferrokafka-streaming --examples failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!("examples built (or up to date) in {:.1?}", started.elapsed());
        Ok(target.join("debug").join("examples"))
    });
    match built {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// What an example printed, and whether it succeeded.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs example `name` with `env`, bounded by `timeout`.
fn try_run(name: &str, env: &[(&str, &str)]) -> Run {
    let bin = examples_dir().join(name);
    assert!(bin.is_file(), "{} is not built", bin.display());
    let started = Instant::now();
    let out = Command::new("timeout")
        .arg(EXAMPLE_TIMEOUT_S)
        .arg(&bin)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    eprintln!("example {name} ran in {:.1?} ({})", started.elapsed(), out.status);
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs example `name`, which must succeed; returns its standard output.
fn run(name: &str, env: &[(&str, &str)]) -> String {
    let r = try_run(name, env);
    assert!(r.ok, "example {name} failed\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r.stdout
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The value the test produces at position `i` of `partition` (its offset there, when the
/// partition was empty).
fn value(topic: &str, partition: i32, i: usize) -> String {
    format!("{topic}-{partition}-{i}")
}

/// Produces records `from..until` (values from [`value`], keys `k{i}`) to each partition.
/// `one_by_one` waits for each delivery before the next send (one record per producer batch).
async fn produce(cfg: ClientConfig, topic: &str, partitions: i32, from: usize, until: usize, one_by_one: bool) {
    let p = Producer::new(cfg).await.unwrap();
    let mut pending = Vec::new();
    for i in from..until {
        for part in 0..partitions {
            let record = ProducerRecord::new(topic, value(topic, part, i)).key(format!("k{i}")).partition(part);
            let delivery = p.send(record).await.unwrap();
            if one_by_one {
                tokio::time::timeout(Duration::from_secs(30), delivery).await.unwrap().unwrap();
            } else {
                pending.push(delivery);
            }
        }
    }
    for d in pending {
        tokio::time::timeout(Duration::from_secs(30), d).await.unwrap().unwrap();
    }
    p.close().await;
}

fn plain(bootstrap: &str) -> ClientConfig {
    ClientConfig::from_pairs([("bootstrap.servers", bootstrap)]).unwrap()
}

/// The values `from..until` of every partition, sorted.
fn values(topic: &str, partitions: i32, from: usize, until: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..partitions).flat_map(|p| (from..until).map(move |i| value(topic, p, i))).collect();
    v.sort();
    v
}

/// A range line: `topic: T partition: P offsets: F to U count: C`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Range {
    topic: String,
    partition: i32,
    from: i64,
    until: i64,
}

fn parse_range(line: &str) -> Option<Range> {
    let f: Vec<&str> = line.split_whitespace().collect();
    match f[..] {
        ["topic:", topic, "partition:", p, "offsets:", from, "to", until, "count:", count] => {
            let r = Range {
                topic: topic.to_owned(),
                partition: p.parse().ok()?,
                from: from.parse().ok()?,
                until: until.parse().ok()?,
            };
            assert_eq!(count.parse::<i64>().ok()?, r.until - r.from, "count of {line}");
            Some(r)
        }
        _ => None,
    }
}

/// One printed batch: its `batch time: T records: N` line and the range lines after it.
#[derive(Debug)]
struct PrintedBatch {
    time: i64,
    records: i64,
    ranges: Vec<Range>,
}

fn batches(out: &str) -> Vec<PrintedBatch> {
    let mut v: Vec<PrintedBatch> = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("batch time: ") {
            let (time, records) = rest.split_once(" records: ").expect(line);
            v.push(PrintedBatch { time: time.parse().unwrap(), records: records.parse().unwrap(), ranges: Vec::new() });
        } else if let Some(r) = parse_range(line) {
            v.last_mut().expect("a range line before any batch line").ranges.push(r);
        }
    }
    for b in &v {
        assert_eq!(b.records, b.ranges.iter().map(|r| r.until - r.from).sum::<i64>(), "records of {b:?}");
    }
    v
}

/// Checks that the ranges chain (each starts where the previous one of its partition ended),
/// and returns per partition the first `from` and the last `until`.
fn chained<'a>(ranges: impl IntoIterator<Item = &'a Range>) -> BTreeMap<(String, i32), (i64, i64)> {
    let mut span: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for r in ranges {
        assert!(r.from <= r.until, "{r:?}");
        let key = (r.topic.clone(), r.partition);
        match span.get_mut(&key) {
            Some((_, until)) => {
                assert_eq!(r.from, *until, "{r:?} follows the previous range of its partition");
                *until = r.until;
            }
            None => {
                span.insert(key, (r.from, r.until));
            }
        }
    }
    span
}

fn spans(entries: &[(&str, i32, i64, i64)]) -> BTreeMap<(String, i32), (i64, i64)> {
    entries.iter().map(|&(t, p, f, u)| ((t.to_owned(), p), (f, u))).collect()
}

/// The `(key,value)` lines' values, sorted.
fn printed_values(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix('(')?.strip_suffix(')')?.split_once(',').map(|(_, v)| v.to_owned()))
        .collect();
    v.sort();
    v
}

/// Environment every stream example gets: short batches, a bound on their number. (Where a
/// test appends a variable again, the later value wins.)
fn stream_env<'a>(bootstrap: &'a str, topics: &'a str, group: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("FERROKAFKA_BOOTSTRAP", bootstrap),
        ("FERROKAFKA_TOPICS", topics),
        ("FERROKAFKA_GROUP", group),
        ("FERROKAFKA_OFFSET_RESET", "earliest"),
        ("FERROKAFKA_BATCH_INTERVAL_MS", "200"),
        ("FERROKAFKA_BATCHES", "30"),
    ]
}

#[test]
fn direct_stream_example() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let (t1, t2) = (unique_topic("ex-a"), unique_topic("ex-b"));
    mock.create_topic(&t1, 2);
    mock.create_topic(&t2, 1);
    runtime().block_on(async {
        produce(plain(&b), &t1, 2, 0, 30, false).await;
        produce(plain(&b), &t2, 1, 0, 20, false).await;
    });
    let topics = format!("{t1},{t2}");
    let group = unique_topic("g");
    let out = run("direct_stream", &stream_env(&b, &topics, &group));
    let printed = batches(&out);
    let all: Vec<&Range> = printed.iter().flat_map(|b| &b.ranges).collect();
    assert_eq!(chained(all), spans(&[(&t1, 0, 0, 30), (&t1, 1, 0, 30), (&t2, 0, 0, 20)]), "{out}");
    let mut want = values(&t1, 2, 0, 30);
    want.extend(values(&t2, 1, 0, 20));
    want.sort();
    assert_eq!(printed_values(&out), want, "every record exactly once:\n{out}");
    assert!(out.contains("(k0,"), "keys are printed: {out}");
    assert!(out.lines().any(|l| l == "total records: 80"), "{out}");
}

#[test]
fn batch_read_example() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("ex-rdd");
    mock.create_topic(&topic, 2);
    runtime().block_on(produce(plain(&b), &topic, 2, 0, 100, false));
    let group = unique_topic("g");
    let ranges = format!("{topic}:0:0:100,{topic}:1:10:20");
    let env = [("FERROKAFKA_BOOTSTRAP", b.as_str()), ("FERROKAFKA_GROUP", &group), ("FERROKAFKA_TAKE", "103")];
    let out = run("batch_read", &[&env[..], &[("FERROKAFKA_RANGES", &ranges)]].concat());
    let printed: Vec<Range> = out.lines().filter_map(parse_range).collect();
    let r = |p, from, until| Range { topic: topic.clone(), partition: p, from, until };
    assert_eq!(printed, [r(0, 0, 100), r(1, 10, 20)], "{out}");
    assert!(out.lines().any(|l| l == "count: 110"), "{out}");
    assert!(out.lines().any(|l| l == "is_empty: false"), "{out}");
    let took: Vec<String> = out.lines().filter_map(|l| l.strip_prefix("take: ").map(str::to_owned)).collect();
    let mut want: Vec<String> = (0..100).map(|i| format!("offset: {i} value: {}", value(&topic, 0, i))).collect();
    want.extend((10..13).map(|i| format!("offset: {i} value: {}", value(&topic, 1, i))));
    assert_eq!(took, want, "take(103) reads partition 0, then the start of partition 1");

    // An empty range: nothing to read.
    let empty = format!("{topic}:1:5:5");
    let out = run("batch_read", &[&env[..], &[("FERROKAFKA_RANGES", &empty)]].concat());
    assert!(out.lines().any(|l| l == "count: 0") && out.lines().any(|l| l == "is_empty: true"), "{out}");
    assert!(!out.contains("take: "), "{out}");
    // A range past the end of the log fails the read, with the reason.
    // (count and is_empty do not read; take reads the whole range, waiting poll.ms for the rest.)
    let past = format!("{topic}:0:90:150");
    let fail = [("FERROKAFKA_RANGES", past.as_str()), ("FERROKAFKA_TAKE", "100"), ("FERROKAFKA_POLL_MS", "2000")];
    let r = try_run("batch_read", &[&env[..], &fail[..]].concat());
    let reason = "RangeUnavailable { partition: TopicPartition { topic: \"".to_owned()
        + &topic
        + "\", partition: 0 }, from: 90, until: 150";
    assert!(!r.ok && r.stderr.contains(&reason), "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
}

#[test]
fn offset_ranges_example() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("ex-offsets");
    mock.create_topic(&topic, 3);
    runtime().block_on(produce(plain(&b), &topic, 3, 0, 20, false));
    let group = unique_topic("g");
    let out = run("offset_ranges", &stream_env(&b, &topic, &group));
    // The guide's line per partition: `topic partition fromOffset untilOffset`.
    let (mut ranges, mut batch_ranges, mut batch_counts) = (Vec::new(), 0i64, Vec::new());
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(n) = line.strip_prefix("batch records: ") {
            batch_counts.push((n.parse::<i64>().unwrap(), batch_ranges));
            batch_ranges = 0;
        } else if let [t, p, from, until] = f[..] {
            assert_eq!(t, topic, "{line}");
            let r = Range {
                topic: t.to_owned(),
                partition: p.parse().unwrap(),
                from: from.parse().unwrap(),
                until: until.parse().unwrap(),
            };
            batch_ranges += r.until - r.from;
            ranges.push(r);
        }
    }
    assert_eq!(chained(&ranges), spans(&[(&topic, 0, 0, 20), (&topic, 1, 0, 20), (&topic, 2, 0, 20)]), "{out}");
    assert!(batch_counts.len() >= 2, "a batch with the records, then an idle one: {out}");
    for (read, spanned) in &batch_counts {
        assert_eq!(read, spanned, "each partition read exactly its range:\n{out}");
    }
    assert_eq!(batch_counts.iter().map(|(n, _)| n).sum::<i64>(), 60, "{out}");
}

#[test]
fn checkpoint_example_resumes_and_reruns_the_unfinished_batch() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("ex-cp");
    mock.create_topic(&topic, 2);
    let rt = runtime();
    rt.block_on(produce(plain(&b), &topic, 2, 0, 30, false));
    let group = unique_topic("g");
    let dir = std::env::temp_dir().join(unique_topic("ferrokafka-example-cp"));
    let dir_s = dir.to_str().unwrap().to_owned();
    // 20 records/s per partition and 0.5 s batches: 10 records per partition and batch.
    let mut env = stream_env(&b, &topic, &group);
    env.extend([
        ("FERROKAFKA_CHECKPOINT_DIR", dir_s.as_str()),
        ("FERROKAFKA_MAX_RATE", "20"),
        ("FERROKAFKA_BATCH_INTERVAL_MS", "500"),
    ]);

    // Run 1: batch 1 completes, batch 2 fails before its output.
    let out1 = run("checkpoint", &[&env[..], &[("FERROKAFKA_FAIL_AT", "2")]].concat());
    let done1 = batches(&out1);
    assert_eq!(done1.len(), 1, "{out1}");
    assert_eq!(chained(&done1[0].ranges), spans(&[(&topic, 0, 0, 10), (&topic, 1, 0, 10)]), "{out1}");
    let failed: i64 = out1
        .lines()
        .find_map(|l| l.strip_prefix("failed batch time: "))
        .unwrap_or_else(|| panic!("no failed batch: {out1}"))
        .parse()
        .unwrap();

    // Run 2: the failed batch first, unchanged (same time, ranges 10..20), then the rest.
    let out2 = run("checkpoint", &env);
    let done2 = batches(&out2);
    assert_eq!(done2[0].time, failed, "the unfinished batch is re-run first:\n{out2}");
    assert_eq!(chained(&done2[0].ranges), spans(&[(&topic, 0, 10, 20), (&topic, 1, 10, 20)]), "{out2}");
    let all: Vec<&Range> = done1.iter().chain(&done2).flat_map(|b| &b.ranges).collect();
    assert_eq!(chained(all), spans(&[(&topic, 0, 0, 30), (&topic, 1, 0, 30)]), "{out1}\n{out2}");
    assert_eq!(done1.iter().chain(&done2).map(|b| b.records).sum::<i64>(), 60);

    // Run 3: new records only, from the checkpointed positions.
    rt.block_on(produce(plain(&b), &topic, 2, 30, 35, false));
    let out3 = run("checkpoint", &env);
    let done3 = batches(&out3);
    let all: Vec<&Range> = done3.iter().flat_map(|b| &b.ranges).collect();
    assert_eq!(chained(all), spans(&[(&topic, 0, 30, 35), (&topic, 1, 30, 35)]), "{out3}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn commit_async_example_restarts_from_committed_offsets() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("ex-commit");
    mock.create_topic(&topic, 2);
    let rt = runtime();
    rt.block_on(produce(plain(&b), &topic, 2, 0, 15, false));
    let group = unique_topic("g");
    let env = stream_env(&b, &topic, &group);
    let committed = |out: &str| -> BTreeMap<i32, i64> {
        out.lines()
            .filter_map(|l| l.strip_prefix("committed: "))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f[0], topic, "{l}");
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect()
    };

    let out1 = run("commit_async", &env);
    assert_eq!(
        chained(batches(&out1).iter().flat_map(|b| &b.ranges)),
        spans(&[(&topic, 0, 0, 15), (&topic, 1, 0, 15)]),
        "{out1}"
    );
    assert_eq!(committed(&out1), BTreeMap::from([(0, 15), (1, 15)]), "the graceful stop committed:\n{out1}");

    // Run 2 with auto.offset.reset=none: only the committed offsets can say where to start.
    rt.block_on(produce(plain(&b), &topic, 2, 15, 20, false));
    let out2 = run("commit_async", &[&env[..], &[("FERROKAFKA_OFFSET_RESET", "none")]].concat());
    let printed = batches(&out2);
    let all: Vec<&Range> = printed.iter().flat_map(|b| &b.ranges).collect();
    assert_eq!(chained(all), spans(&[(&topic, 0, 15, 20), (&topic, 1, 15, 20)]), "{out2}");
    assert_eq!(printed.iter().map(|b| b.records).sum::<i64>(), 10, "{out2}");
    assert_eq!(committed(&out2), BTreeMap::from([(0, 20), (1, 20)]), "{out2}");
}

/// Runs a store example three times: over records 0..20, after 10 more per partition (with
/// `auto.offset.reset=earliest`, so only the stored offsets keep it from re-reading), and with
/// nothing new. Returns the topic, the group and the last output.
fn store_runs(name: &str, extra: &[(&str, &str)]) -> (String, String, String) {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("ex-store");
    mock.create_topic(&topic, 2);
    let (group, out3) = store_runs_on(&b, &topic, name, extra);
    (topic, group, out3)
}

/// Three runs of a store example on the broker at `b`: 20 records per partition, 10
/// more, then nothing new; each run must resume where the store says.
fn store_runs_on(b: &str, topic: &str, name: &str, extra: &[(&str, &str)]) -> (String, String) {
    let (b, topic) = (b.to_owned(), topic.to_owned());
    let rt = runtime();
    rt.block_on(produce(plain(&b), &topic, 2, 0, 20, false));
    let group = unique_topic("g");
    let env = [&stream_env(&b, &topic, &group)[..], extra].concat();
    let out1 = run(name, &env);
    assert_eq!(
        chained(batches(&out1).iter().flat_map(|b| &b.ranges)),
        spans(&[(&topic, 0, 0, 20), (&topic, 1, 0, 20)]),
        "{out1}"
    );
    rt.block_on(produce(plain(&b), &topic, 2, 20, 30, false));
    let out2 = run(name, &env);
    let printed = batches(&out2);
    let all: Vec<&Range> = printed.iter().flat_map(|b| &b.ranges).collect();
    assert_eq!(chained(all), spans(&[(&topic, 0, 20, 30), (&topic, 1, 20, 30)]), "resumes from the store:\n{out2}");
    let out3 = run(name, &[&env[..], &[("FERROKAFKA_BATCHES", "2")]].concat());
    assert!(batches(&out3).iter().all(|b| b.records == 0), "nothing new:\n{out3}");
    (group, out3)
}

/// The `stored: VALUE COUNT` lines.
fn stored_lines(out: &str) -> BTreeMap<String, i64> {
    out.lines()
        .filter_map(|l| l.strip_prefix("stored: "))
        .map(|l| {
            let (v, n) = l.rsplit_once(' ').expect(l);
            (v.to_owned(), n.parse().unwrap())
        })
        .collect()
}

fn once_each(topic: &str) -> BTreeMap<String, i64> {
    values(topic, 2, 0, 30).into_iter().map(|v| (v, 1)).collect()
}

#[test]
fn redb_store_example_counts_every_record_once() {
    let file = std::env::temp_dir().join(format!("{}.redb", unique_topic("ferrokafka-example")));
    let file_s = file.to_str().unwrap().to_owned();
    let (topic, group, out3) = store_runs("redb_store", &[("FERROKAFKA_REDB", &file_s)]);
    // What the example's transactions left in the file.
    const VALUE_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("value_counts");
    let store = RedbStore::open(&file).unwrap();
    let read = store.database().begin_read().unwrap();
    let table = read.open_table(VALUE_COUNTS).unwrap();
    let counts: BTreeMap<String, i64> = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_owned(), v.value() as i64)
        })
        .collect();
    assert_eq!(counts, once_each(&topic), "every record counted exactly once");
    assert_eq!(stored_lines(&out3), counts, "{out3}");
    let offsets = runtime().block_on(store.load_offsets(&group)).unwrap();
    assert_eq!(offsets, BTreeMap::from([(TopicPartition::new(&*topic, 0), 30), (TopicPartition::new(&*topic, 1), 30)]));
    drop((table, read, store));
    let _ = std::fs::remove_file(&file);
}

#[test]
fn postgres_store_example_counts_every_record_once() {
    let server = Postgres::start();
    let conn = server.connection_string();
    let (topic, group, out3) = store_runs("postgres_store", &[("FERROKAFKA_POSTGRES", &conn)]);
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
        tokio::spawn(connection);
        let counts: BTreeMap<String, i64> = client
            .query("SELECT value, count FROM value_counts", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
            .collect();
        assert_eq!(counts, once_each(&topic), "every record counted exactly once");
        assert_eq!(stored_lines(&out3), counts, "{out3}");
        let offsets: BTreeMap<i32, i64> = client
            .query(
                "SELECT partition, next_offset FROM ferrokafka_offsets WHERE group_id = $1 AND topic = $2",
                &[&group, &topic],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get::<_, i32>(0), row.get::<_, i64>(1)))
            .collect();
        assert_eq!(offsets, BTreeMap::from([(0, 30), (1, 30)]));
    });
}

/// Kafka as the store: the output records and offsets of each batch in one transaction,
/// on the fake cluster (the test broker that keeps Kafka's transaction index).
#[test]
fn kafka_eos_example_outputs_every_count_once() {
    let fake = FakeCluster::start();
    let topic = unique_topic("ex-eos");
    let output = unique_topic("ex-eos-out");
    fake.create_topic(&topic, 2);
    fake.create_topic(&output, 1);
    let tid = unique_topic("ex-eos-tid");
    let (group, _) = store_runs_on(
        &fake.addr(),
        &topic,
        "kafka_eos",
        &[("FERROKAFKA_OUTPUT", &output), ("FERROKAFKA_TRANSACTIONAL_ID", &tid)],
    );
    let rt = runtime();
    let (counts, offsets) = rt.block_on(async {
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", fake.addr().as_str()),
            ("isolation.level", "read_committed"),
        ])
        .unwrap();
        let mut c = ferrokafka_client::consumer::Consumer::new(cfg.clone()).await.unwrap();
        let tp = TopicPartition::new(&*output, 0);
        c.assign([tp.clone()]);
        c.seek(&tp, 0).unwrap();
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        ferrokafka_tests::read_to_end(&mut c, std::slice::from_ref(&tp), Duration::from_secs(2), |r| {
            let key = String::from_utf8(r.record.key.clone().unwrap().to_vec()).unwrap();
            let n: i64 = std::str::from_utf8(r.record.value.as_deref().unwrap()).unwrap().parse().unwrap();
            *counts.entry(key).or_default() += n;
        })
        .await;
        let cluster = ferrokafka_client::cluster::Cluster::connect(cfg).await.unwrap();
        let tps = [TopicPartition::new(&*topic, 0), TopicPartition::new(&*topic, 1)];
        let offsets = ferrokafka_client::group::admin::stable_committed_offsets(&cluster, &group, &tps).await.unwrap();
        (counts, offsets.into_iter().map(|(tp, o)| (tp, o.offset)).collect::<BTreeMap<_, _>>())
    });
    assert_eq!(counts, once_each(&topic), "every record counted exactly once in the committed output");
    assert_eq!(offsets, BTreeMap::from([(TopicPartition::new(&*topic, 0), 30), (TopicPartition::new(&*topic, 1), 30)]));
}

#[test]
fn ssl_example_reads_over_mutual_tls() {
    const LOCAL: &str = "IP:127.0.0.1,DNS:localhost";
    Pki::remove_stale("examples");
    let pki = Pki::new("examples").unwrap();
    let server = pki.leaf("server", KeyType::Rsa, LOCAL).unwrap();
    // The guide's stores: a JKS truststore and a JKS keystore with its own key password.
    let truststore = pki.truststore("JKS", "kafka.client.truststore.jks").unwrap();
    let keystore = pki.keytool_keystore("client", KeyType::Rsa, "JKS", KEY_PASSWORD, LOCAL).unwrap();
    let broker = TlsBroker::start(&TlsOptions {
        cert: server.chain.clone(),
        key: server.key.clone(),
        client_ca: Some(pki.ca_cert.clone()),
        max_version: None,
    });
    let (truststore, keystore) = (truststore.to_str().unwrap(), keystore.to_str().unwrap());
    let ssl = [
        ("FERROKAFKA_TRUSTSTORE", truststore),
        ("FERROKAFKA_TRUSTSTORE_PASSWORD", STORE_PASSWORD),
        ("FERROKAFKA_KEYSTORE", keystore),
        ("FERROKAFKA_KEYSTORE_PASSWORD", STORE_PASSWORD),
        ("FERROKAFKA_KEY_PASSWORD", KEY_PASSWORD),
    ];
    let cfg = ClientConfig::from_pairs([
        ("bootstrap.servers", broker.addr()),
        ("security.protocol", "SSL"),
        ("ssl.truststore.location", truststore),
        ("ssl.keystore.location", keystore),
        ("ssl.keystore.password", STORE_PASSWORD),
        ("ssl.key.password", KEY_PASSWORD),
    ])
    .unwrap();
    let topic = unique_topic("ex-tls");
    runtime().block_on(async {
        let producer = Producer::new(cfg.clone()).await.unwrap();
        ferrokafka_client::admin::create_topic(producer.cluster(), &topic, 2, 1).await.unwrap();
        producer.close().await;
        // One record per producer batch: tansu answers ListOffsets(latest) with the last
        // batch's base offset + 1.
        produce(cfg, &topic, 2, 0, 10, true).await;
    });
    let group = unique_topic("g");
    let env = [&stream_env(broker.addr(), &topic, &group)[..], &ssl[..]].concat();
    let out = run("ssl", &env);
    let printed = batches(&out);
    let all: Vec<&Range> = printed.iter().flat_map(|b| &b.ranges).collect();
    assert_eq!(chained(all), spans(&[(&topic, 0, 0, 10), (&topic, 1, 0, 10)]), "{out}");
    assert_eq!(printed_values(&out), values(&topic, 2, 0, 10), "every record exactly once, over TLS:\n{out}");

    // Without the client certificate the broker (mutual TLS) refuses the example.
    let r = try_run("ssl", &[&env[..], &[("FERROKAFKA_KEYSTORE", "")]].concat());
    assert!(!r.ok, "a client without certificate was accepted:\n{}", r.stdout);
    // A wrong store password is named, the password itself never printed.
    let r = try_run("ssl", &[&env[..], &[("FERROKAFKA_KEYSTORE_PASSWORD", "not-the-password")]].concat());
    assert!(!r.ok && !r.stderr.contains("not-the-password"), "stderr:\n{}", r.stderr);
    assert!(r.stderr.to_lowercase().contains("password"), "stderr:\n{}", r.stderr);
}

/// `prometheus`: the metrics facade behind a Prometheus endpoint. The example scrapes its
/// own `/metrics` after three batches; the broker series must be there, counted.
#[test]
fn prometheus_example() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("ex-prom");
    mock.create_topic(&topic, 1);
    runtime().block_on(produce(plain(&b), &topic, 1, 0, 20, false));
    let addr = format!("127.0.0.1:{}", ferrokafka_tests::free_port());
    let group = unique_topic("g");
    let env = [
        ("FERROKAFKA_BOOTSTRAP", b.as_str()),
        ("FERROKAFKA_TOPICS", topic.as_str()),
        ("FERROKAFKA_GROUP", group.as_str()),
        ("FERROKAFKA_METRICS_ADDR", addr.as_str()),
        ("FERROKAFKA_BATCHES", "3"),
    ];
    let out = run("prometheus", &env);
    let series = |name: &str| -> f64 {
        out.lines()
            .filter(|l| l.starts_with(&format!("{name}{{broker=\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(out.contains("batch of 20 records"), "{out}");
    for name in [
        "ferrokafka_broker_requests_total",
        "ferrokafka_broker_bytes_received_total",
        "ferrokafka_broker_connects_total",
    ] {
        assert!(series(name) > 0.0, "{name} missing or zero in:\n{out}");
    }
    assert!(out.contains("ferrokafka_broker_rtt_seconds"), "{out}");
}
