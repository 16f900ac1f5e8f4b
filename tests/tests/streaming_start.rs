//! The direct stream's first batch and its reads, on librdkafka's mock cluster:
//! starting offsets fixed at `create` for every strategy, patterns that match whole
//! topic names, ranges past the log end failing fast with the log's real bounds, and
//! a batch much larger than the memory budget read within it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::time::Duration;

use futures_core::Stream;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use ferrokafka_streaming::cache::{CacheConfig, ReadOptions};
use ferrokafka_streaming::{
    create_batch, Assign, ConsumerStrategy, Deserialized, DirectStream, ExecutorPool, HasOffsetRanges, KafkaParams,
    OffsetRange, PreferConsistent, StopMode, StreamConfig, StreamingError, Subscribe, TopicPartition,
};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn params(bootstrap: &str, extra: &[(&str, &str)]) -> KafkaParams {
    let group = unique_topic("g");
    let mut v = vec![
        ("bootstrap.servers", bootstrap),
        ("group.id", group.as_str()),
        ("fetch.max.wait.ms", "100"),
        ("enable.auto.commit", "false"),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer"),
    ];
    v.extend_from_slice(extra);
    KafkaParams::new(v.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned()))).unwrap()
}

fn fast() -> StreamConfig {
    StreamConfig { batch_interval: Duration::from_millis(200), ..Default::default() }
}

/// Produces `values` to partition 0 of `topic`.
async fn produce(bootstrap: &str, topic: &str, values: impl IntoIterator<Item = String>) {
    let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", bootstrap)]).unwrap()).await.unwrap();
    let mut fs = Vec::new();
    for v in values {
        fs.push(p.send(ProducerRecord::new(topic, v).partition(0)).await.unwrap());
    }
    for f in fs {
        f.await.unwrap();
    }
    p.close().await;
}

/// Reads batches until `want` values arrived, then one more batch that must add none.
async fn read_values(stream: &mut DirectStream, want: usize) -> (Vec<String>, BTreeSet<String>) {
    let (mut values, mut topics) = (Vec::new(), BTreeSet::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut extra = 0;
    while values.len() < want || extra < 1 {
        assert!(tokio::time::Instant::now() < deadline, "only {values:?} of {want} records in 60 s");
        if values.len() >= want {
            extra += 1;
        }
        // Through the futures `Stream` of batches (each item is a `next_batch`).
        let mut batches = stream.batches();
        let batch = std::future::poll_fn(|cx| Pin::new(&mut batches).poll_next(cx)).await.unwrap().unwrap();
        topics.extend(batch.offset_ranges().iter().filter(|r| r.count() > 0).map(|r| r.topic.to_string()));
        // Values as kafkaParams' value.deserializer (StringDeserializer) makes them.
        let parts = batch
            .foreach_partition(|mut p| async move {
                let mut out = Vec::new();
                while let Some(r) = p.records.next().await {
                    match p.deserializers.value(&r?)? {
                        Deserialized::String(s) => out.push(s),
                        other => panic!("StringDeserializer gave {other:?}"),
                    }
                }
                Ok(out)
            })
            .await
            .unwrap();
        values.extend(parts.into_iter().flatten());
    }
    (values, topics)
}

/// `auto.offset.reset=latest` is resolved when the stream is created (Spark fixes the
/// starting offsets when the stream starts): records produced between `create` and
/// the first batch are read, for every strategy.
#[test]
fn records_produced_between_create_and_the_first_batch_are_read() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let rt = runtime();
    for kind in ["subscribe", "pattern", "assign"] {
        let topic = unique_topic(&format!("start-{kind}"));
        mock.create_topic(&topic, 1);
        rt.block_on(async {
            produce(&b, &topic, (0..5).map(|i| format!("before-{i}"))).await;
            let p = params(&b, &[("auto.offset.reset", "latest")]);
            let strategy: Box<dyn ConsumerStrategy> = match kind {
                "subscribe" => Box::new(Subscribe::new([topic.clone()], p, BTreeMap::new()).unwrap()),
                "pattern" => Box::new(Subscribe::pattern(&topic, p, BTreeMap::new()).unwrap()),
                _ => Box::new(Assign::new([TopicPartition::new(topic.as_str(), 0)], p, BTreeMap::new()).unwrap()),
            };
            let mut stream = DirectStream::create(strategy, PreferConsistent, fast()).await.unwrap();
            assert_eq!(
                stream.positions().get(&TopicPartition::new(topic.as_str(), 0)),
                Some(&5),
                "{kind}: fixed at create"
            );
            produce(&b, &topic, (0..3).map(|i| format!("after-{i}"))).await;
            let (values, _) = read_values(&mut stream, 3).await;
            assert_eq!(values, ["after-0", "after-1", "after-2"], "{kind}");
            stream.stop(StopMode::Graceful).await.unwrap();
        });
    }
}

/// A pattern subscribes a topic only when it matches the whole name (Java's
/// `Pattern.matcher(topic).matches()`): `…pat\d` takes `…pat9`, not `x…pat9` or `…pat10`.
#[test]
fn patterns_match_whole_topic_names() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let prefix = unique_topic("anchor");
    let (pat9, xpat9, pat10) = (format!("{prefix}-pat9"), format!("x{prefix}-pat9"), format!("{prefix}-pat10"));
    for t in [&pat9, &xpat9, &pat10] {
        mock.create_topic(t, 1);
    }
    runtime().block_on(async {
        for t in [&pat9, &xpat9, &pat10] {
            produce(&b, t, (0..2).map(|i| format!("{t}/{i}"))).await;
        }
        let p = params(&b, &[("auto.offset.reset", "earliest")]);
        let strategy = Subscribe::pattern(&format!("{prefix}-pat\\d"), p, BTreeMap::new()).unwrap();
        let mut stream = DirectStream::create(strategy, PreferConsistent, fast()).await.unwrap();
        let (values, topics) = read_values(&mut stream, 2).await;
        assert_eq!(topics, BTreeSet::from([pat9.clone()]), "only {pat9} matches");
        assert_eq!(values, [format!("{pat9}/0"), format!("{pat9}/1")]);
        stream.stop(StopMode::Graceful).await.unwrap();
    });
}

/// A range past the log end fails once the reader caught up with the log and it did
/// not grow (2 s), not after Spark's 120 s poll timeout; the error names the log's
/// real bounds.
#[test]
fn a_range_past_the_log_end_fails_fast_with_the_real_bounds() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("past-end");
    mock.create_topic(&topic, 1);
    runtime().block_on(async {
        produce(&b, &topic, (0..10).map(|i| i.to_string())).await;
        let read = ReadOptions::default();
        assert_eq!(read.poll_timeout, Duration::from_secs(120));
        let p = params(&b, &[]);
        let pool = ExecutorPool::new(&p, ExecutorPool::local_executors(1), CacheConfig::default(), read).await.unwrap();
        let batch =
            create_batch(vec![OffsetRange::new(topic.as_str(), 0, 5, 15).unwrap()], &PreferConsistent, pool).unwrap();
        let err = tokio::time::timeout(Duration::from_secs(30), batch.collect())
            .await
            .expect("failed within 30 s, far below the 120 s poll timeout")
            .unwrap_err();
        match &err {
            StreamingError::Client(ClientError::RangeUnavailable {
                from: 5,
                until: 15,
                log_start,
                high_watermark,
                ..
            }) => {
                assert_eq!((*log_start, *high_watermark), (0, 10), "{err}");
            }
            other => panic!("expected RangeUnavailable, got {other}"),
        }
        assert!(err.to_string().contains("the log holds 0..10"), "{err}");
    });
}

/// A batch holding many times the memory budget is read within it: the pool's peak
/// reservation stays at or below the budget while every record arrives exactly once.
#[test]
fn a_batch_larger_than_the_budget_is_read_within_it() {
    const PARTITIONS: i32 = 4;
    const PER_PARTITION: usize = 3000; // 1 KiB values: about 12 MiB in all
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("budget");
    mock.create_topic(&topic, PARTITIONS as u32);
    runtime().block_on(async {
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", b.as_str()), ("batch.size", "16384")]).unwrap();
        let p = Producer::new(cfg).await.unwrap();
        let mut fs = Vec::new();
        for i in 0..PER_PARTITION {
            for part in 0..PARTITIONS {
                let v = format!("{part}:{i}:{}", "x".repeat(1000));
                fs.push(p.send(ProducerRecord::new(topic.as_str(), v).partition(part)).await.unwrap());
            }
        }
        for f in fs {
            f.await.unwrap();
        }
        p.close().await;
        // Two chunks of 128 KiB for four partitions on two executors: reads wait for room.
        let budget = 256 << 10;
        let read = ReadOptions { memory_budget: budget, ..Default::default() };
        let params = params(&b, &[("max.partition.fetch.bytes", "131072")]);
        let pool =
            ExecutorPool::new(&params, ExecutorPool::local_executors(2), CacheConfig::default(), read).await.unwrap();
        let ranges =
            (0..PARTITIONS).map(|p| OffsetRange::new(topic.as_str(), p, 0, PER_PARTITION as i64).unwrap()).collect();
        let batch = create_batch(ranges, &PreferConsistent, pool.clone()).unwrap();
        let counts = batch
            .foreach_partition(|mut p| async move {
                let (mut n, mut bytes) = (0i64, 0usize);
                while let Some(r) = p.records.next().await {
                    let r = r?;
                    assert_eq!(r.offset, p.range.from_offset + n, "in order, each once");
                    bytes += r.value.map_or(0, |v| v.len());
                    n += 1;
                }
                Ok((n, bytes))
            })
            .await
            .unwrap();
        let total_bytes: usize = counts.iter().map(|(_, b)| b).sum();
        assert!(counts.iter().all(|(n, _)| *n == PER_PARTITION as i64), "{counts:?}");
        assert!(total_bytes > 10 * budget, "the batch ({total_bytes} bytes) is many times the budget");
        // Again on the calling task, with a closure that borrows a local (not Send).
        let seen = std::cell::RefCell::new(BTreeMap::<i32, Vec<i64>>::new());
        batch
            .foreach_partition_local(|mut p| {
                let seen = &seen;
                async move {
                    while let Some(r) = p.records.next().await {
                        seen.borrow_mut().entry(p.range.partition).or_default().push(r?.offset);
                    }
                    Ok(())
                }
            })
            .await
            .unwrap();
        for (p, offsets) in seen.into_inner() {
            assert_eq!(offsets, (0..PER_PARTITION as i64).collect::<Vec<_>>(), "partition {p}");
        }
        let peak = pool.budget().peak();
        assert!(peak <= budget, "peak reservation {peak} within the budget {budget}");
        assert!(peak > 0);
    });
}

/// The poll timeout counts the broker's silence, not the reader's pace: user code
/// slower than `poll_timeout` between records still reads the whole range, and no
/// queued record is dropped.
#[test]
fn a_slow_reader_does_not_time_out() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("slow-reader");
    mock.create_topic(&topic, 1);
    runtime().block_on(async {
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", b.as_str()), ("batch.size", "1024")]).unwrap();
        let p = Producer::new(cfg).await.unwrap();
        let mut fs = Vec::new();
        for i in 0..40 {
            fs.push(p.send(ProducerRecord::new(topic.as_str(), format!("{i}:{}", "y".repeat(300)))).await.unwrap());
        }
        for f in fs {
            f.await.unwrap();
        }
        let cluster = p.cluster().clone();
        let tp = ferrokafka_client::metadata::TopicPartition::new(topic.as_str(), 0);
        let poll = Duration::from_millis(500);
        let mut reader = ferrokafka_client::range::RangeReader::new(cluster, tp, 0, 40, poll).unwrap();
        let mut offsets = Vec::new();
        while let Some(r) = reader.next().await {
            offsets.push(r.unwrap().offset);
            if offsets.len() % 10 == 1 {
                tokio::time::sleep(poll * 2).await; // slower than the poll timeout
            }
        }
        assert_eq!(offsets, (0..40).collect::<Vec<_>>());
        p.close().await;
    });
}
