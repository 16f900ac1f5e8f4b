//! `isolation.level=read_committed` end to end over the network, on a log written by
//! hand: a stub broker serves a partition as a Kafka broker stores and answers it
//! (aborted, committed and still-open transactions, their markers,
//! `last_stable_offset` below the high watermark, the aborted list only for
//! read_committed fetches), and the consumer must read each isolation level correctly.
//! Records our own transactional producer wrote are read back in transactions.rs (on
//! the fake cluster, tansu and the mocks; what each keeps is in DESIGN.md's broker
//! quirks), and the mock run with a real COMMIT marker is in streaming_compacted.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_protocol::records::{ControlMarker, NewRecord, RecordBatchBuilder};
use ferrokafka_protocol::Compression;
use ferrokafka_tests::fake::{api_versions, metadata, FakeCluster, Request};
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ProducerId};

const TOPIC: &str = "txn";
/// The first offset of the transaction still open: nothing from here is stable.
const LAST_STABLE: i64 = 10;
const HIGH_WATERMARK: i64 = 12;

/// The partition's log, batch by batch: (base offset, last offset, bytes).
fn log() -> Vec<(i64, i64, Bytes)> {
    let batch = |base: i64, producer: Option<i64>, values: &[&str]| {
        let mut b = RecordBatchBuilder::new(Compression::None).base_offset(base);
        if let Some(id) = producer {
            b = b.producer(id, 0, 0, true);
        }
        for v in values {
            b.push(&NewRecord { key: None, value: Some(v.as_bytes()), headers: &[], timestamp: 1_700_000_000_000 })
                .unwrap();
        }
        let mut out = BytesMut::new();
        b.finish(&mut out).unwrap();
        (base, base + values.len() as i64 - 1, out.freeze())
    };
    let marker = |offset: i64, producer: i64, marker: ControlMarker| {
        let mut out = BytesMut::new();
        RecordBatchBuilder::control(&mut out, offset, producer, 0, marker, 1_700_000_000_000).unwrap();
        (offset, offset, out.freeze())
    };
    vec![
        batch(0, None, &["plain-0", "plain-1"]),
        batch(2, Some(7), &["aborted-2", "aborted-3", "aborted-4"]),
        marker(5, 7, ControlMarker::Abort),
        batch(6, Some(8), &["committed-6", "committed-7"]),
        marker(8, 8, ControlMarker::Commit),
        batch(9, None, &["plain-9"]),
        batch(10, Some(9), &["open-10", "open-11"]),
    ]
}

/// Answers as a broker holding [`log`] in `TOPIC`/0 does.
fn answer(req: &Request) -> Option<Vec<u8>> {
    Some(match req.api {
        ApiKey::ApiVersions => {
            api_versions(req, &[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12), (ApiKey::Fetch, 4, 11)])
        }
        ApiKey::Metadata => metadata(req, &[(TOPIC, 1)]),
        ApiKey::Fetch => {
            let fetch: FetchRequest = req.decode();
            let committed = fetch.isolation_level == 1;
            let mut topics = Vec::new();
            for t in &fetch.topics {
                let mut partitions = Vec::new();
                for p in &t.partitions {
                    // A broker serves whole batches from the one holding the fetch offset, up
                    // to the high watermark, or to the last stable offset for read_committed;
                    // and lists the aborted transactions in that range only for read_committed.
                    let end = if committed { LAST_STABLE } else { HIGH_WATERMARK };
                    let mut records = BytesMut::new();
                    for (base, last, bytes) in log() {
                        if last >= p.fetch_offset && base < end {
                            records.extend_from_slice(&bytes);
                        }
                    }
                    let aborted = (committed && p.fetch_offset <= 5).then(|| {
                        vec![AbortedTransaction::default().with_producer_id(ProducerId(7)).with_first_offset(2)]
                    });
                    partitions.push(
                        PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_high_watermark(HIGH_WATERMARK)
                            .with_last_stable_offset(LAST_STABLE)
                            .with_log_start_offset(0)
                            .with_aborted_transactions(aborted.or(committed.then(Vec::new)))
                            .with_records(Some(records.freeze())),
                    );
                }
                topics.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions));
            }
            if topics.iter().all(|t| t.partitions.iter().all(|p| p.records.as_ref().is_none_or(|r| r.is_empty()))) {
                // Nothing to return: wait as a broker does (bounded), not in a tight loop.
                std::thread::sleep(Duration::from_millis(u64::try_from(fetch.max_wait_ms).unwrap_or(0).min(100)));
            }
            req.reply(&FetchResponse::default().with_responses(topics))
        }
        _ => return None,
    })
}

/// What a consumer read and where it ended.
struct Read {
    /// (offset, value) of every record returned.
    got: Vec<(i64, String)>,
    position: Option<i64>,
    lag: Option<i64>,
    /// Lag after seeking back to the last stable offset.
    lag_at_last_stable: Option<i64>,
    high_watermark: i64,
}

/// Reads with `isolation`: every record the consumer returns within a bounded time,
/// then its position and lag.
fn read(stub: &FakeCluster, isolation: &str, want: usize) -> Read {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", stub.addr().as_str()),
            ("isolation.level", isolation),
            ("fetch.max.wait.ms", "50"),
        ])
        .unwrap();
        let mut consumer = Consumer::new(cfg).await.unwrap();
        let tp = TopicPartition::new(TOPIC, 0);
        consumer.assign([tp.clone()]);
        consumer.seek(&tp, 0).unwrap();
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        // Read what is expected, then a few more polls: anything past it is a failure.
        let mut extra_polls = 0;
        while extra_polls < 5 {
            assert!(tokio::time::Instant::now() < deadline, "{isolation}: only {got:?} within 20 s");
            let records = consumer.poll(Duration::from_millis(100)).await.unwrap();
            for r in &records {
                let r = r.unwrap();
                let v = String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap();
                got.push((r.record.offset, v));
            }
            if got.len() >= want {
                extra_polls += 1;
            }
        }
        let (position, lag, high_watermark) = (consumer.position(&tp), consumer.lag(&tp), consumer.high_watermark(&tp));
        consumer.seek(&tp, LAST_STABLE).unwrap();
        let lag_at_last_stable = consumer.lag(&tp);
        consumer.close().await;
        Read { got, position, lag, lag_at_last_stable, high_watermark }
    })
}

#[test]
fn read_committed_skips_aborted_data_and_markers_and_stops_at_the_last_stable_offset() {
    let stub = FakeCluster::answering(answer);
    let r = read(&stub, "read_committed", 5);
    let want = [(0, "plain-0"), (1, "plain-1"), (6, "committed-6"), (7, "committed-7"), (9, "plain-9")];
    assert_eq!(r.got, want.map(|(o, v)| (o, v.to_owned())));
    assert_eq!(r.position, Some(LAST_STABLE), "waits at the first offset of the open transaction");
    assert_eq!(r.high_watermark, HIGH_WATERMARK);
    assert_eq!(r.lag, Some(0), "read_committed lag counts to the last stable offset");
    assert_eq!(r.lag_at_last_stable, Some(0));
    assert!(stub.requests_of(ApiKey::Fetch).iter().any(|r| r.version == 11), "{:?}", stub.requests());
}

#[test]
fn read_uncommitted_returns_every_data_record_but_never_a_marker() {
    let stub = FakeCluster::answering(answer);
    let r = read(&stub, "read_uncommitted", 10);
    let want = [
        (0, "plain-0"),
        (1, "plain-1"),
        (2, "aborted-2"),
        (3, "aborted-3"),
        (4, "aborted-4"),
        (6, "committed-6"),
        (7, "committed-7"),
        (9, "plain-9"),
        (10, "open-10"),
        (11, "open-11"),
    ];
    assert_eq!(r.got, want.map(|(o, v)| (o, v.to_owned())));
    assert_eq!(r.position, Some(HIGH_WATERMARK));
    assert_eq!(r.lag, Some(0));
    assert_eq!(
        r.lag_at_last_stable,
        Some(HIGH_WATERMARK - LAST_STABLE),
        "read_uncommitted lag counts to the high watermark"
    );
}
