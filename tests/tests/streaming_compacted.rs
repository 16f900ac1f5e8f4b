//! Compacted-looking partitions on a real broker (KafkaRDDSuite's compacted-topic cases):
//! we produce a batch whose offsets have gaps, as log compaction leaves them, to the
//! librdkafka mock cluster, which stores the records' offset deltas as written (it moves
//! its log end by the record count, 6 here, so the partition's high watermark is 6 and
//! nothing else is appended). Reads of exact ranges then see the gaps: refused with
//! Spark's error when non-consecutive offsets are not allowed, and never a record outside
//! the range when they are — including ranges that start, end or lie inside a gap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::BytesMut;
use ferrokafka_protocol::records::{DecodeOptions, NewRecord, RecordBatchBuilder, RecordSet};
use ferrokafka_protocol::Compression;
use ferrokafka_streaming::cache::{CacheConfig, ReadOptions};
use ferrokafka_streaming::{
    create_batch, Assign, DirectStream, ExecutorPool, HasOffsetRanges, KafkaParams, OffsetRange, PreferConsistent,
    StreamConfig, StreamingError, TopicPartition,
};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::raw::RawConnection;
use ferrokafka_tests::unique_topic;

/// Offsets left after "compaction".
const GAPPY: [i32; 6] = [0, 1, 3, 4, 7, 9];

fn batch(deltas: &[i32], codec: Compression) -> bytes::Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    for d in deltas {
        let v = format!("v{d}");
        b.push_at(*d, &NewRecord { key: Some(b"k"), value: Some(v.as_bytes()), headers: &[], timestamp: 1 }).unwrap();
    }
    let mut out = BytesMut::new();
    b.finish(&mut out).unwrap();
    out.freeze()
}

fn params(bootstrap: &str) -> KafkaParams {
    KafkaParams::new([
        ("bootstrap.servers", bootstrap),
        ("group.id", unique_topic("compacted").as_str()),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap()
}

#[test]
fn ranges_over_offset_gaps() {
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("compacted");
    mock.create_topic(&topic, 1);
    let mut raw = RawConnection::connect(&b).unwrap();
    raw.negotiate().unwrap();
    assert_eq!(raw.produce(&topic, 0, batch(&GAPPY, Compression::Lz4)).unwrap(), 0);
    // The broker kept the gaps (otherwise this test would prove nothing).
    let (hw, data) = raw.fetch(&topic, 0, 0).unwrap();
    assert_eq!(hw, 6);
    let stored: Vec<i64> = RecordSet::new(data, DecodeOptions::default())
        .flat_map(|b| b.unwrap().records().map(|r| r.unwrap().offset).collect::<Vec<_>>())
        .collect();
    assert_eq!(stored, [0, 1, 3, 4, 7, 9], "the mock rewrote the offsets");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let p = params(&b);
        let pool = |allow: bool| {
            let read = ReadOptions {
                allow_non_consecutive: allow,
                poll_timeout: Duration::from_secs(5),
                ..Default::default()
            };
            ExecutorPool::new(&p, ExecutorPool::local_executors(2), CacheConfig::default(), read)
        };
        let (strict, lenient) = (pool(false).await.unwrap(), pool(true).await.unwrap());
        let range = |from, until| OffsetRange::new(topic.as_str(), 0, from, until).unwrap();
        let read = |from: i64, until: i64| {
            let batch = create_batch(vec![range(from, until)], &PreferConsistent, lenient.clone()).unwrap();
            async move {
                let parts = batch.collect().await.unwrap();
                let offsets: Vec<i64> = parts[0].records.iter().map(|r| r.offset).collect();
                let values: Vec<String> = parts[0]
                    .records
                    .iter()
                    .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
                    .collect();
                (offsets, values, batch.count().await.unwrap())
            }
        };

        // Not allowed: Spark's error names the offset it expected and the one it got.
        let err = create_batch(vec![range(0, 6)], &PreferConsistent, strict).unwrap().collect().await.unwrap_err();
        assert!(matches!(err, StreamingError::NonConsecutive { expected: 2, got: 3, .. }), "{err}");
        assert!(err.to_string().contains("allow_non_consecutive_offsets"), "{err}");

        // Allowed: exactly the records inside each range, wherever the range starts and ends.
        let (offsets, values, count) = read(0, 6).await;
        assert_eq!(offsets, [0, 1, 3, 4], "nothing at or past the range's end (7, 9)");
        assert_eq!(values, ["v0", "v1", "v3", "v4"]);
        assert_eq!(count, 4, "count reads when offsets may be non-consecutive");
        assert_eq!(read(2, 4).await.0, [3], "starts in a gap");
        assert_eq!(read(4, 6).await.0, [4], "ends in a gap");
        assert_eq!(read(2, 3).await.0, Vec::<i64>::new(), "entirely inside a gap");
        assert_eq!(read(1, 2).await.0, [1]);

        // A direct stream over the partition: one batch, the whole range, 4 records.
        let parts = [TopicPartition::new(topic.as_str(), 0)];
        let strategy = Assign::new(parts, params(&b), Default::default()).unwrap();
        let mut cfg = StreamConfig { batch_interval: Duration::from_millis(100), ..Default::default() };
        cfg.read.allow_non_consecutive = true;
        let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await.unwrap();
        let batch = stream.next_batch().await.unwrap();
        assert_eq!(batch.offset_ranges(), [range(0, 6)]);
        let got = batch.foreach_partition(|p| async move { Ok(p.records.count().await?) }).await.unwrap();
        assert_eq!(got, [4]);
        stream.stop(true).await.unwrap();
    });
}

/// Transaction markers on a real broker: a transactional batch, its COMMIT marker (a
/// control batch the mock stores as written), then plain records. The marker takes an
/// offset that no reader returns: strict reads across it fail with Spark's error, lenient
/// ones skip it, and a range whose tail holds only the marker ends cleanly instead of
/// waiting for a record that will never come (the case Spark's KafkaRDD mishandled).
#[test]
fn ranges_over_transaction_markers() {
    use ferrokafka_protocol::records::ControlMarker;
    let mut mock = MockCluster::start(1);
    let b = mock.bootstrap().to_owned();
    let topic = unique_topic("markers");
    mock.create_topic(&topic, 1);
    let mut raw = RawConnection::connect(&b).unwrap();
    raw.negotiate().unwrap();
    let mut txn = RecordBatchBuilder::new(Compression::None).producer(7, 0, 0, true);
    for v in ["t0", "t1", "t2"] {
        txn.push(&NewRecord { key: None, value: Some(v.as_bytes()), headers: &[], timestamp: 1 }).unwrap();
    }
    let mut out = BytesMut::new();
    txn.finish(&mut out).unwrap();
    assert_eq!(raw.produce(&topic, 0, out.freeze()).unwrap(), 0);
    let mut marker = BytesMut::new();
    RecordBatchBuilder::control(&mut marker, 0, 7, 0, ControlMarker::Commit, 1).unwrap();
    assert_eq!(raw.produce(&topic, 0, marker.freeze()).unwrap(), 3);
    assert_eq!(raw.produce(&topic, 0, batch(&[0, 1], Compression::None)).unwrap(), 4);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let p = KafkaParams::new([
            ("bootstrap.servers", b.as_str()),
            ("group.id", unique_topic("markers").as_str()),
            ("isolation.level", "read_committed"),
        ])
        .unwrap();
        let pool = |allow: bool| {
            let read = ReadOptions {
                allow_non_consecutive: allow,
                poll_timeout: Duration::from_secs(5),
                ..Default::default()
            };
            ExecutorPool::new(&p, ExecutorPool::local_executors(1), CacheConfig::default(), read)
        };
        let (strict, lenient) = (pool(false).await.unwrap(), pool(true).await.unwrap());
        let range = |from, until| OffsetRange::new(topic.as_str(), 0, from, until).unwrap();
        let offsets = |parts: Vec<ferrokafka_streaming::CollectedPartition>| -> Vec<i64> {
            parts[0].records.iter().map(|r| r.offset).collect()
        };
        let read = |from: i64, until: i64| {
            let batch = create_batch(vec![range(from, until)], &PreferConsistent, lenient.clone()).unwrap();
            async move { offsets(batch.collect().await.unwrap()) }
        };
        let err = create_batch(vec![range(0, 6)], &PreferConsistent, strict.clone()).unwrap().collect().await;
        assert!(matches!(err, Err(StreamingError::NonConsecutive { expected: 3, got: 4, .. })), "{err:?}");
        let before = create_batch(vec![range(0, 3)], &PreferConsistent, strict).unwrap().collect().await.unwrap();
        assert_eq!(offsets(before), [0, 1, 2], "a range that stops before the marker is consecutive");
        assert_eq!(read(0, 6).await, [0, 1, 2, 4, 5]);
        assert_eq!(read(0, 4).await, [0, 1, 2], "the range's tail is only the marker: it ends cleanly");
        assert_eq!(read(3, 4).await, Vec::<i64>::new(), "a range holding only the marker");
        assert_eq!(read(3, 6).await, [4, 5]);
    });
}
