//! The direct stream on real brokers: Spark's DirectKafkaStreamSuite, KafkaRDDSuite
//! and KafkaDataConsumerSuite behaviours, in Rust.
//!
//! On librdkafka's mock cluster: tansu 0.6 answers ListOffsets(latest) with the last
//! batch's base offset + 1 instead of the log end offset, so a stream would never see
//! more than the first record of each producer batch there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_streaming::cache::{CacheConfig, ReadOptions};
use ferrokafka_streaming::{
    create_batch, Assign, Batch, DirectStream, ExecutorPool, HasOffsetRanges, KafkaParams, OffsetRange, PreferBrokers,
    PreferConsistent, RateLimits, StreamConfig, StreamingError, Subscribe, TopicPartition,
};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn params(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> KafkaParams {
    let mut v = vec![
        ("bootstrap.servers".to_owned(), bootstrap.to_owned()),
        ("group.id".to_owned(), group.to_owned()),
        ("fetch.max.wait.ms".to_owned(), "100".to_owned()),
        ("enable.auto.commit".to_owned(), "false".to_owned()),
        ("session.timeout.ms".to_owned(), "6000".to_owned()),
        ("heartbeat.interval.ms".to_owned(), "500".to_owned()),
    ];
    v.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    KafkaParams::new(v).unwrap()
}

fn fast(cfg_dir: Option<std::path::PathBuf>) -> StreamConfig {
    StreamConfig { batch_interval: Duration::from_millis(300), checkpoint_dir: cfg_dir, ..Default::default() }
}

/// Produces `n` records `"{topic}-{p}-{i}"` to each partition; returns the count.
async fn produce(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> usize {
    let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap)]).unwrap()).await.unwrap();
    let mut fs = Vec::new();
    for i in 0..n {
        for part in 0..partitions {
            fs.push(p.send(ProducerRecord::new(topic, format!("{topic}-{part}-{i}")).partition(part)).await.unwrap());
        }
    }
    for f in fs {
        f.await.unwrap();
    }
    p.close().await;
    n * partitions as usize
}

/// Checks the HasOffsetRanges contract on a read batch and returns its values.
async fn read_checked(batch: &Batch) -> Vec<String> {
    let parts = batch.collect().await.unwrap();
    let mut values = Vec::new();
    for p in parts {
        assert_eq!(&p.range, &batch.offset_ranges()[p.index], "partition i reads range i");
        let offsets: Vec<i64> = p.records.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (p.range.from_offset..p.range.until_offset).collect::<Vec<_>>(),
            "exactly the range {}",
            p.range
        );
        values.extend(p.records.iter().map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()));
    }
    values
}

/// Runs batches until `want` records were read; returns the values and the batches' ranges.
async fn run_until(stream: &mut DirectStream, want: usize) -> (Vec<String>, Vec<Vec<OffsetRange>>) {
    let (mut values, mut all_ranges) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while values.len() < want {
        assert!(tokio::time::Instant::now() < deadline, "only {} of {want} records in 60 s", values.len());
        let batch = stream.next_batch().await.unwrap();
        if std::env::var_os("FK_DEBUG").is_some() {
            eprintln!("batch {:?}", batch.offset_ranges());
        }
        values.extend(read_checked(&batch).await);
        all_ranges.push(batch.offset_ranges().to_vec());
        stream.complete(&batch, Duration::from_millis(10)).unwrap();
    }
    (values, all_ranges)
}

/// Consecutive batches' ranges chain: each starts where the previous one ended.
fn assert_chained(batches: &[Vec<OffsetRange>]) {
    let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for ranges in batches {
        for r in ranges {
            if let Some(n) = next.get(&r.topic_partition()) {
                assert_eq!(r.from_offset, *n, "{r} follows the previous batch");
            }
            next.insert(r.topic_partition(), r.until_offset);
        }
    }
}

#[test]
fn subscribe_multiple_topics_from_earliest_and_latest() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    let (t1, t2) = (unique_topic("s1"), unique_topic("s2"));
    mock.create_topic(&t1, 2);
    mock.create_topic(&t2, 1);
    rt.block_on(async {
        let n = produce(&b, &t1, 2, 30).await + produce(&b, &t2, 1, 20).await;
        let p = params(&b, &unique_topic("g"), &[("auto.offset.reset", "earliest")]);
        let strategy = Subscribe::new([t1.clone(), t2.clone()], p, BTreeMap::new()).unwrap();
        let mut stream = DirectStream::create(strategy, PreferConsistent, fast(None)).await.unwrap();
        let (values, ranges) = run_until(&mut stream, n).await;
        assert_eq!(values.len(), n);
        assert_eq!(values.iter().collect::<BTreeSet<_>>().len(), n, "no duplicates");
        assert_chained(&ranges);
        // More data arrives while running.
        produce(&b, &t2, 1, 5).await;
        let (more, _) = run_until(&mut stream, 5).await;
        // Each produce() call numbers its records from 0.
        assert_eq!(more, (0..5).map(|i| format!("{t2}-0-{i}")).collect::<Vec<_>>());
        stream.stop(true).await.unwrap();

        // latest: a new group starts at the end and sees only what comes after.
        let p = params(&b, &unique_topic("g"), &[("auto.offset.reset", "latest")]);
        let strategy = Subscribe::new([t2.clone()], p, BTreeMap::new()).unwrap();
        let mut stream = DirectStream::create(strategy, PreferConsistent, fast(None)).await.unwrap();
        let first = stream.next_batch().await.unwrap();
        assert_eq!(first.record_count_hint(), 0, "latest: nothing old");
        produce(&b, &t2, 1, 3).await;
        let (new, _) = run_until(&mut stream, 3).await;
        assert_eq!(new, (0..3).map(|i| format!("{t2}-0-{i}")).collect::<Vec<_>>());
        stream.stop(true).await.unwrap();
    });
}

#[test]
fn pattern_subscribe_and_assign_with_offsets() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    let prefix = unique_topic("pat");
    for t in ["a", "b"] {
        mock.create_topic(&format!("{prefix}-{t}"), 1);
    }
    rt.block_on(async {
        let n = produce(&b, &format!("{prefix}-a"), 1, 10).await + produce(&b, &format!("{prefix}-b"), 1, 10).await;
        let p = params(&b, &unique_topic("g"), &[("auto.offset.reset", "earliest")]);
        let strategy = Subscribe::pattern(&format!("^{prefix}-.*"), p, BTreeMap::new()).unwrap();
        let mut stream = DirectStream::create(strategy, PreferConsistent, fast(None)).await.unwrap();
        let (values, _) = run_until(&mut stream, n).await;
        assert_eq!(values.len(), n);
        stream.stop(true).await.unwrap();

        // Assign with explicit starting offsets (they win over auto.offset.reset).
        let tp = TopicPartition::new(format!("{prefix}-a"), 0);
        let p = params(&b, &unique_topic("g"), &[("auto.offset.reset", "earliest")]);
        let strategy = Assign::new([tp.clone()], p, BTreeMap::from([(tp, 7)])).unwrap();
        let mut stream = DirectStream::create(strategy, PreferConsistent, fast(None)).await.unwrap();
        let (values, ranges) = run_until(&mut stream, 3).await;
        assert_eq!(ranges[0][0].from_offset, 7);
        assert_eq!(values, (7..10).map(|i| format!("{prefix}-a-0-{i}")).collect::<Vec<_>>());
        stream.stop(true).await.unwrap();
    });
}

/// Checkpoints: a batch generated but not completed is re-run after a restart,
/// and the sum over all completed batches is exact.
#[test]
fn checkpoint_recovery_is_exactly_once() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    let topic = unique_topic("cp");
    mock.create_topic(&topic, 2);
    let dir = std::env::temp_dir().join(unique_topic("ferrokafka-cp"));
    let group = unique_topic("g");
    rt.block_on(async {
        let n = produce(&b, &topic, 2, 40).await;
        let make = || async {
            let p = params(&b, &group, &[("auto.offset.reset", "earliest")]);
            let strategy = Subscribe::new([topic.clone()], p, BTreeMap::new()).unwrap();
            let cfg = StreamConfig {
                rate: RateLimits { max_rate_per_partition: 10.0, ..Default::default() },
                ..fast(Some(dir.clone()))
            };
            DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap()
        };
        let mut seen = Vec::new();
        let mut stream = make().await;
        // Complete three batches, then "crash" after generating a fourth.
        for _ in 0..3 {
            let batch = stream.next_batch().await.unwrap();
            seen.extend(read_checked(&batch).await);
            stream.complete(&batch, Duration::from_millis(5)).unwrap();
        }
        let lost = stream.next_batch().await.unwrap();
        let lost_ranges = lost.offset_ranges().to_vec();
        drop(lost);
        drop(stream);
        let mut stream = make().await;
        let replayed = stream.next_batch().await.unwrap();
        assert_eq!(replayed.offset_ranges(), &lost_ranges[..], "the unfinished batch is re-run unchanged");
        seen.extend(read_checked(&replayed).await);
        stream.complete(&replayed, Duration::from_millis(5)).unwrap();
        let (rest, _) = run_until(&mut stream, n - seen.len()).await;
        seen.extend(rest);
        assert_eq!(seen.len(), n);
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), n, "every record exactly once");
        stream.stop(true).await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// commit_async: queued, committed at the next batch; a graceful stop flushes it; a
/// new stream of the same group starts from the committed offsets.
#[test]
fn commit_async_and_restart_from_committed_offsets() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    let topic = unique_topic("commit");
    mock.create_topic(&topic, 1);
    let group = unique_topic("g");
    rt.block_on(async {
        produce(&b, &topic, 1, 20).await;
        let p = params(&b, &group, &[("auto.offset.reset", "earliest")]);
        let mut stream = DirectStream::create(
            Subscribe::new([topic.clone()], p.clone(), BTreeMap::new()).unwrap(),
            PreferConsistent,
            fast(None),
        )
        .await
        .unwrap();
        let (values, ranges) = run_until(&mut stream, 20).await;
        assert_eq!(values.len(), 20);
        let (tx, rx) = std::sync::mpsc::channel();
        let flat: Vec<OffsetRange> = ranges.into_iter().flatten().collect();
        stream.commit_queue().commit_async_with(&flat, move |offsets, result| {
            let _ = tx.send((offsets.clone(), result));
        });
        stream.stop(true).await.unwrap();
        let (offsets, result) =
            rx.recv_timeout(Duration::from_secs(5)).expect("the graceful stop ran the commit callback");
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(offsets.values().copied().collect::<Vec<_>>(), [20]);
        produce(&b, &topic, 1, 5).await;
        let mut stream = DirectStream::create(
            Subscribe::new([topic.clone()], p, BTreeMap::new()).unwrap(),
            PreferConsistent,
            fast(None),
        )
        .await
        .unwrap();
        let (values, ranges) = run_until(&mut stream, 5).await;
        assert_eq!(ranges[0][0].from_offset, 20, "starts at the committed offset");
        assert_eq!(
            values,
            (0..5).map(|i| format!("{topic}-0-{i}")).collect::<Vec<_>>(),
            "only the records after the commit"
        );
        stream.stop(true).await.unwrap();
    });
}

/// maxRatePerPartition caps every batch range; without it one batch takes all.
#[test]
fn rate_limit_caps_batches() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    let topic = unique_topic("rate");
    mock.create_topic(&topic, 2);
    rt.block_on(async {
        let n = produce(&b, &topic, 2, 50).await;
        let p = params(&b, &unique_topic("g"), &[("auto.offset.reset", "earliest")]);
        let cfg = StreamConfig {
            batch_interval: Duration::from_millis(500),
            rate: RateLimits { max_rate_per_partition: 20.0, ..Default::default() },
            ..Default::default()
        };
        let mut stream =
            DirectStream::create(Subscribe::new([topic.clone()], p, BTreeMap::new()).unwrap(), PreferConsistent, cfg)
                .await
                .unwrap();
        let (values, ranges) = run_until(&mut stream, n).await;
        assert_eq!(values.len(), n);
        for r in ranges.iter().flatten() {
            assert!(r.count() <= 10, "20 records/s × 0.5 s caps a range at 10: {r}");
        }
        assert!(ranges.len() >= 5);
        stream.stop(true).await.unwrap();
    });
}

/// Batch reads of explicit ranges (Spark's KafkaRDDSuite), on the mock so ranges
/// may start inside a producer batch.
#[test]
fn batch_reads_of_explicit_ranges() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("rdd");
    mock.create_topic(&topic, 2);
    let rt = runtime();
    rt.block_on(async {
        produce(&b, &topic, 2, 100).await;
        let p = params(&b, &unique_topic("g"), &[]);
        // A read past the end waits poll_timeout for the records (Spark's
        // spark.streaming.kafka.consumer.poll.ms, 120 s by default) before failing.
        let read = ReadOptions { poll_timeout: Duration::from_secs(3), ..ReadOptions::default() };
        let pool = ExecutorPool::new(&p, ExecutorPool::local_executors(3), CacheConfig::default(), read).await.unwrap();
        let ranges = vec![
            OffsetRange::new(topic.as_str(), 0, 0, 100).unwrap(),
            OffsetRange::new(topic.as_str(), 1, 10, 20).unwrap(),
        ];
        let batch = create_batch(ranges.clone(), &PreferConsistent, pool.clone()).unwrap();
        assert_eq!(batch.count().await.unwrap(), 110);
        assert!(!batch.is_empty().await.unwrap());
        let values = read_checked(&batch).await;
        assert_eq!(values.len(), 110);
        let first5 = batch.take(5).await.unwrap();
        assert_eq!(first5.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let across = batch.take(103).await.unwrap();
        assert_eq!(across.len(), 103);
        assert_eq!(across[100].offset, 10, "take continues in the next partition");
        // Empty ranges read nothing.
        let empty =
            create_batch(vec![OffsetRange::new(topic.as_str(), 0, 5, 5).unwrap()], &PreferConsistent, pool.clone())
                .unwrap();
        assert!(empty.is_empty().await.unwrap());
        assert!(empty.collect().await.unwrap()[0].records.is_empty());
        // Past the end of the log: a clear error.
        let past =
            create_batch(vec![OffsetRange::new(topic.as_str(), 0, 90, 150).unwrap()], &PreferConsistent, pool.clone())
                .unwrap();
        let err = past.collect().await.unwrap_err();
        assert!(err.to_string().contains("not available"), "{err}");
        // PreferBrokers has no driver consumer to ask for leaders.
        assert!(matches!(
            create_batch(ranges, &PreferBrokers, pool).unwrap_err(),
            StreamingError::NotForBatchReads { .. }
        ));
    });
}

/// The consumer cache: reuse, a second concurrent user gets a private consumer, a
/// retry invalidates, eviction only removes idle consumers (KafkaDataConsumerSuite).
#[test]
fn consumer_cache_rules() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("cache");
    mock.create_topic(&topic, 3);
    let rt = runtime();
    rt.block_on(async {
        produce(&b, &topic, 3, 20).await;
        let exec = ExecutorPool::local_executors(1);
        let e0 = exec[0].clone();
        let cache_cfg = CacheConfig { enabled: true, max_capacity: 2 };
        let pool =
            ExecutorPool::new(&params(&b, "g", &[]), exec.clone(), cache_cfg, ReadOptions::default()).await.unwrap();
        let range = |p, from, until| OffsetRange::new(topic.as_str(), p, from, until).unwrap();
        let offsets = |rs: Vec<ferrokafka_streaming::Record>| rs.iter().map(|r| r.offset).collect::<Vec<_>>();
        let r = pool.read(&e0, &range(0, 0, 10)).await.unwrap();
        assert_eq!(offsets(r), (0..10).collect::<Vec<_>>());
        let cache = pool.cache(&e0).unwrap().clone();
        assert_eq!(cache.size(), 1);
        let kept = cache.buffered_bytes();
        assert!(kept > 0, "the rest of the fetched chunk (offsets 10..20) is kept for the next batch");
        assert_eq!(pool.budget().used(), kept, "idle entries hold only their leftover, within the budget");
        // Idle: nothing is fetched between batches (more data arrives, nothing grows).
        produce(&b, &topic, 3, 5).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!((cache.buffered_bytes(), pool.budget().used()), (kept, kept), "no prefetch while idle");
        // The next range continues from the leftover: it is served with the broker down.
        mock.must("down 1");
        let r = pool.read(&e0, &range(0, 10, 20)).await.unwrap();
        assert_eq!(offsets(r), (10..20).collect::<Vec<_>>(), "served from the cached leftover");
        mock.must("up 1");
        // A re-read of an earlier range does not start from the leftover past it.
        let r = pool.read(&e0, &range(0, 3, 8)).await.unwrap();
        assert_eq!(offsets(r), (3..8).collect::<Vec<_>>());
        // Capacity 2: the least recently used entry goes.
        for p in [1, 2] {
            assert_eq!(pool.read(&e0, &range(p, 0, 5)).await.unwrap().len(), 5);
        }
        assert_eq!(cache.size(), 2, "LRU within max_capacity");
        assert!(pool.budget().used() <= pool.budget().limit());
        // Disabled cache: nothing kept, nothing held.
        let off = CacheConfig { enabled: false, max_capacity: 64 };
        let pool2 = ExecutorPool::new(&params(&b, "g", &[]), exec, off, ReadOptions::default()).await.unwrap();
        assert_eq!(pool2.read(&e0, &range(0, 0, 10)).await.unwrap().len(), 10);
        assert_eq!((pool2.cache(&e0).unwrap().size(), pool2.budget().used()), (0, 0));
    });
}

/// Two streams with the same group.id: the first one's partitions are revoked and
/// its next batch fails with a clear error.
#[test]
fn revoked_partitions_fail_the_stream() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    let topic = unique_topic("revoke");
    mock.create_topic(&topic, 2);
    let group = unique_topic("g");
    rt.block_on(async {
        let p = params(&b, &group, &[("auto.offset.reset", "earliest"), ("partition.assignment.strategy", "range")]);
        let mut s1 = DirectStream::create(
            Subscribe::new([topic.clone()], p.clone(), BTreeMap::new()).unwrap(),
            PreferConsistent,
            fast(None),
        )
        .await
        .unwrap();
        s1.next_batch().await.unwrap();
        let second = tokio::spawn(async move {
            DirectStream::create(
                Subscribe::new([topic.clone()], p, BTreeMap::new()).unwrap(),
                PreferConsistent,
                fast(None),
            )
            .await
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let err = loop {
            match s1.next_batch().await {
                Err(e) => break e,
                Ok(_) => assert!(tokio::time::Instant::now() < deadline, "no revocation within 30 s"),
            }
        };
        assert!(matches!(err, StreamingError::Revoked { .. }), "{err}");
        let s2 = second.await.unwrap().unwrap();
        s2.stop(false).await.unwrap();
    });
}
