//! A direct stream storing results and offsets together in the transactional (redb)
//! store keeps exactly-once results through broker faults and application crashes:
//! leaders move, Fetch and ListOffsets fail with retriable errors, a broker goes down
//! and comes back, and the application twice "crashes" after reading a batch but before
//! committing it, restarting from the store's offsets. At the end the stored sum and
//! offsets are exactly those of the produced records (librdkafka's mock cluster).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::store::redb::redb::{ReadableDatabase, ReadableTable, TableDefinition};
use ferrokafka_streaming::store::{commit_batch, RedbStore, TransactionalStore};
use ferrokafka_streaming::{
    Assign, Batch, DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, RateLimits, StreamConfig,
    StreamingError, TopicPartition,
};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

const SUMS: TableDefinition<&str, i64> = TableDefinition::new("sums");
const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 300;
const GROUP: &str = "faults";

fn store_err(e: impl std::fmt::Display) -> StreamingError {
    StreamingError::store(e.to_string())
}

async fn start(bootstrap: &str, topic: &str, store: &RedbStore) -> DirectStream {
    let params = KafkaParams::new([
        ("bootstrap.servers", bootstrap),
        ("group.id", GROUP),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("fetch.max.wait.ms", "100"),
        ("request.timeout.ms", "3000"),
        ("retry.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "200"),
    ])
    .unwrap();
    let from = store.load_offsets(GROUP).await.unwrap();
    let parts: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
    let cfg = StreamConfig {
        batch_interval: Duration::from_millis(100),
        rate: RateLimits { max_rate_per_partition: 200.0, ..Default::default() }, // 20 per partition per batch
        ..Default::default()
    };
    DirectStream::create(Assign::new(parts, params, from).unwrap(), PreferConsistent, cfg).await.unwrap()
}

/// Retries what the application would retry: retriable errors, a bounded number of times.
async fn retrying<T, F: std::future::Future<Output = Result<T, StreamingError>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let mut attempts = 0;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_retriable() && attempts < 20 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: {e} (after {attempts} retries)"),
        }
    }
}

/// The sum of a batch's values (each record's value is its own number).
async fn sum_of(batch: &Batch) -> Result<i64, StreamingError> {
    let parts = batch
        .foreach_partition(|mut p| async move {
            let mut sum = 0i64;
            while let Some(r) = p.records.next().await {
                let r = r?;
                let v = r.value.as_deref().unwrap_or_default();
                sum += std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
            }
            Ok(sum)
        })
        .await?;
    Ok(parts.iter().sum())
}

fn stored_sum(store: &RedbStore) -> i64 {
    let read = store.database().begin_read().unwrap();
    match read.open_table(SUMS) {
        Ok(t) => t.get("sum").unwrap().map_or(0, |v| v.value()),
        Err(_) => 0,
    }
}

#[test]
fn exactly_once_in_the_store_through_broker_faults_and_crashes() {
    let mut mock = MockCluster::start(3);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("faults");
    mock.must(&format!("topic {topic} {PARTITIONS} 3"));
    let dir = std::env::temp_dir().join(unique_topic("faults-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = RedbStore::open(dir.join("store.redb")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let expected: i64 = rt.block_on(async {
        let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b.as_str())]).unwrap()).await.unwrap();
        let mut fs = Vec::new();
        let mut sum = 0;
        for i in 0..PER_PARTITION {
            for part in 0..PARTITIONS {
                let v = i * 10 + i64::from(part);
                sum += v;
                fs.push(p.send(ProducerRecord::new(topic.as_str(), v.to_string()).partition(part)).await.unwrap());
            }
        }
        for f in fs {
            f.await.unwrap();
        }
        p.close().await;
        sum
    });

    // The faults, by batch number (counted across restarts). Error codes: 6 = not leader,
    // 5 = leader not available, 3 = unknown topic or partition, 7 = request timed out.
    // Broker 2 goes down only once it leads nothing (the mock does not move leaders).
    let faults: BTreeMap<usize, Vec<String>> = BTreeMap::from([
        (1, vec![format!("leader {topic} 0 2"), "error Fetch 6 3".into()]),
        (3, vec!["error ListOffsets 5 2".into()]),
        (5, vec![format!("leader {topic} 1 3"), format!("leader {topic} 2 1"), "error Fetch 3 2".into()]),
        (7, vec![format!("leader {topic} 0 3"), "down 2".into()]),
        (9, vec!["up 2".into(), "error Fetch 7 2".into()]),
        (11, vec![format!("leader {topic} 0 2"), format!("leader {topic} 1 1")]),
    ]);
    let crashes = [4usize, 8];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut batch_no = 0usize;
    let mut restarts = 0;
    'run: loop {
        let mut stream = rt.block_on(start(&b, &topic, &store));
        loop {
            assert!(
                Instant::now() < deadline,
                "not done within 120 s: stored sum {} of {expected}",
                stored_sum(&store)
            );
            let offsets = rt.block_on(store.load_offsets(GROUP)).unwrap();
            if (0..PARTITIONS).all(|p| offsets.get(&TopicPartition::new(topic.as_str(), p)) == Some(&PER_PARTITION)) {
                break 'run;
            }
            batch_no += 1;
            for cmd in faults.get(&batch_no).into_iter().flatten() {
                mock.must(cmd);
            }
            let batch = rt.block_on(async {
                let mut attempts = 0;
                loop {
                    match stream.next_batch().await {
                        Ok(b) => break b,
                        Err(e) if e.is_retriable() && attempts < 20 => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("next_batch: {e:?} (after {attempts} retries)"),
                    }
                }
            });
            let started = Instant::now();
            let sum = rt.block_on(retrying("batch", || sum_of(&batch)));
            if crashes.contains(&batch_no) {
                // Crash after reading, before committing: the stream is dropped, nothing stored.
                restarts += 1;
                drop(stream);
                continue 'run;
            }
            rt.block_on(commit_batch(&store, GROUP, batch.offset_ranges(), async |txn| {
                let mut table = txn.redb().open_table(SUMS).map_err(store_err)?;
                let before = table.get("sum").map_err(store_err)?.map_or(0, |v| v.value());
                table.insert("sum", before + sum).map_err(store_err)?;
                Ok(())
            }))
            .unwrap();
            stream.complete(&batch, started.elapsed()).unwrap();
        }
    }
    assert_eq!(restarts, 2);
    assert!(batch_no > 11, "every fault was injected before the end ({batch_no} batches)");
    assert_eq!(stored_sum(&store), expected, "every record counted exactly once");
    let _ = std::fs::remove_dir_all(&dir);
}
