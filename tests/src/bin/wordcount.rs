//! The main job: the Rust form of Spark's `DirectKafkaWordCount`, with
//! exactly-once results in the embedded (redb) store across a restart.
//!
//! It starts a local broker (librdkafka's mock cluster), produces lines of text,
//! runs a direct stream that counts words per batch, and stores each batch's counts
//! and offsets in one redb transaction. Half way it "crashes" (drops the stream after
//! a batch was read but before it was committed), restarts from the offsets in the
//! store, and at the end checks that every produced word was counted exactly once.
//!
//! Run: `scripts/demo.sh`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::store::redb::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use ferrokafka_streaming::store::{commit_batch, RedbStore, TransactionalStore};
use ferrokafka_streaming::{
    Assign, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, RateLimits, StreamConfig, StreamingError,
    TopicPartition,
};
use ferrokafka_tests::mock::MockCluster;

const WORDS: TableDefinition<&str, u64> = TableDefinition::new("word_counts");
const TOPIC: &str = "sentences";
const PARTITIONS: i32 = 3;
const GROUP: &str = "wordcount";
const VOCABULARY: [&str; 8] = ["kafka", "spark", "rust", "stream", "batch", "offset", "range", "exactly"];

fn store_err(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::store(e.to_string())
}

/// Produces `lines` sentences; returns how many times each word was written.
async fn produce(bootstrap: &str, lines: usize) -> Result<BTreeMap<String, u64>, Box<dyn std::error::Error>> {
    let producer =
        Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap), ("linger.ms", "20")])?).await?;
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending = Vec::new();
    for i in 0..lines {
        let words: Vec<&str> = (0..1 + i % 5).map(|j| VOCABULARY[(i * 3 + j * 5) % VOCABULARY.len()]).collect();
        for w in &words {
            *expected.entry((*w).to_owned()).or_default() += 1;
        }
        let line = words.join(" ");
        pending.push(producer.send(ProducerRecord::new(TOPIC, line).key(format!("line-{i}"))).await?);
    }
    for p in pending {
        p.await?;
    }
    producer.close().await;
    Ok(expected)
}

/// Starts a stream at the offsets the store holds (Spark's "your own data store" pattern).
async fn start(bootstrap: &str, store: &RedbStore) -> Result<DirectStream, StreamingError> {
    let params = KafkaParams::new([
        ("bootstrap.servers", bootstrap),
        ("group.id", GROUP),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("fetch.max.wait.ms", "100"),
    ])?;
    let from_offsets = store.load_offsets(GROUP).await?;
    let partitions: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(TOPIC, p)).collect();
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(500),
        rate: RateLimits { max_rate_per_partition: 200.0, ..Default::default() },
        ..Default::default()
    };
    DirectStream::create(Assign::new(partitions, params, from_offsets)?, PreferConsistent, cfg).await
}

/// Runs one batch: counts words per partition on the executors, then stores the
/// counts and the offsets in one transaction. Returns the records it counted.
async fn run_batch(stream: &mut DirectStream, store: &RedbStore, commit: bool) -> Result<u64, StreamingError> {
    let batch = stream.next_batch().await?;
    let started = Instant::now();
    let per_partition = batch
        .foreach_partition(|mut p| async move {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            p.records
                .for_each_view(|r| {
                    let text = String::from_utf8_lossy(r.value().unwrap_or_default());
                    for w in text.split_whitespace() {
                        match counts.get_mut(w) {
                            Some(n) => *n += 1,
                            None => {
                                counts.insert(w.to_owned(), 1);
                            }
                        }
                    }
                })
                .await?;
            Ok(counts)
        })
        .await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in per_partition {
        for (w, n) in c {
            *counts.entry(w).or_default() += n;
        }
    }
    let records = batch.record_count_hint() as u64;
    println!("-------------------------------------------");
    println!("batch at {} ms: {records} records", batch.time_ms);
    for r in batch.offset_ranges() {
        println!("  {r}");
    }
    println!("  counts: {}", counts.iter().map(|(w, n)| format!("{w}={n}")).collect::<Vec<_>>().join(" "));
    if !commit {
        println!("  (simulated crash: this batch's results and offsets are not committed)");
        return Ok(0);
    }
    commit_batch(store, GROUP, batch.offset_ranges(), async |txn| {
        let mut table = txn.redb().open_table(WORDS).map_err(store_err)?;
        for (w, n) in &counts {
            let before = table.get(w.as_str()).map_err(store_err)?.map_or(0, |v| v.value());
            table.insert(w.as_str(), before + n).map_err(store_err)?;
        }
        Ok(())
    })
    .await?;
    stream.complete(&batch, started.elapsed())?;
    Ok(records)
}

fn stored_counts(store: &RedbStore) -> Result<BTreeMap<String, u64>, StreamingError> {
    let read = store.database().begin_read().map_err(store_err)?;
    let table = match read.open_table(WORDS) {
        Ok(t) => t,
        Err(_) => return Ok(BTreeMap::new()),
    };
    let mut out = BTreeMap::new();
    for entry in table.iter().map_err(store_err)? {
        let (k, v) = entry.map_err(store_err)?;
        out.insert(k.value().to_owned(), v.value());
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut mock = MockCluster::try_start(1).map_err(|e| format!("local broker: {e}"))?;
    mock.command(&format!("topic {TOPIC} {PARTITIONS} 1")).map_err(|e| format!("create topic: {e}"))?;
    let bootstrap = mock.bootstrap().to_owned();
    println!("local broker (librdkafka mock cluster) on {bootstrap}; topic {TOPIC} with {PARTITIONS} partitions");
    let dir = std::env::temp_dir().join(format!("ferrokafka-wordcount-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = RedbStore::open(dir.join("wordcount.redb"))?;

    let expected = produce(&bootstrap, 3000).await?;
    let total_words: u64 = expected.values().sum();
    println!("produced 3000 lines ({total_words} words)");

    let mut stream = start(&bootstrap, &store).await?;
    let mut counted = 0u64;
    for _ in 0..3 {
        counted += run_batch(&mut stream, &store, true).await?;
    }
    run_batch(&mut stream, &store, false).await?;
    drop(stream);
    println!("=== restart: resuming from the offsets in the store {:?}", store.load_offsets(GROUP).await?);
    let mut stream = start(&bootstrap, &store).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while counted < 3000 {
        if Instant::now() > deadline {
            return Err("the stream did not catch up within 120 s".into());
        }
        counted += run_batch(&mut stream, &store, true).await?;
    }
    stream.stop(true).await?;
    let stored = stored_counts(&store)?;
    println!("===========================================");
    println!(
        "word counts in the store: {}",
        stored.iter().map(|(w, n)| format!("{w}={n}")).collect::<Vec<_>>().join(" ")
    );
    let _ = std::fs::remove_dir_all(&dir);
    if stored == expected {
        println!(
            "exactly-once check: OK ({total_words} words produced, {} counted, across a crash and restart)",
            stored.values().sum::<u64>()
        );
        Ok(())
    } else {
        Err(format!("exactly-once check FAILED: expected {expected:?}, stored {stored:?}").into())
    }
}
