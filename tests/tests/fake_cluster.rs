//! The producer and consumer against the in-process fake cluster's own broker, with
//! faults injected per request by its hook: a Produce answered NOT_LEADER_OR_FOLLOWER,
//! a connection closed before a Fetch answer, a delayed answer and a connection that
//! stalls until the request timeout. Nothing is lost or duplicated across them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use ferrokafka_tests::fake::{Action, FakeCluster};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};

const TOPIC: &str = "fake";
const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 200;

fn config(fake: &FakeCluster, extra: &[(&str, &str)]) -> ClientConfig {
    let addr = fake.addr();
    let mut pairs = vec![
        ("bootstrap.servers", addr.as_str()),
        ("enable.idempotence", "false"),
        ("linger.ms", "2"),
        ("fetch.max.wait.ms", "50"),
        ("retry.backoff.ms", "20"),
        ("reconnect.backoff.ms", "20"),
    ];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Produces PER_PARTITION records to each partition; returns the offsets delivered.
async fn produce(fake: &FakeCluster) -> BTreeMap<i32, Vec<i64>> {
    let producer = Producer::new(config(fake, &[("batch.size", "512")])).await.unwrap();
    let mut futures = Vec::new();
    for i in 0..PER_PARTITION {
        for p in 0..PARTITIONS {
            futures.push(producer.send(ProducerRecord::new(TOPIC, format!("p{p}-{i}")).partition(p)).await.unwrap());
        }
    }
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for f in futures {
        let md = tokio::time::timeout(Duration::from_secs(60), f).await.expect("delivered within 60 s").unwrap();
        offsets.entry(md.partition).or_default().push(md.offset);
    }
    producer.close().await;
    offsets
}

/// Reads every partition from 0 until PER_PARTITION records each; returns the values.
async fn consume(fake: &FakeCluster, extra: &[(&str, &str)]) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut consumer = Consumer::new(config(fake, extra)).await.unwrap();
    consumer.assign((0..PARTITIONS).map(|p| TopicPartition::new(TOPIC, p)));
    for p in 0..PARTITIONS {
        consumer.seek(&TopicPartition::new(TOPIC, p), 0).unwrap();
    }
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let want = PER_PARTITION * PARTITIONS as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.values().map(Vec::len).sum::<usize>() < want {
        assert!(tokio::time::Instant::now() < deadline, "not all records within 60 s: {out:?}");
        // A poll may fail while a fault is injected; the next one goes on.
        let Ok(records) = consumer.poll(Duration::from_millis(300)).await else { continue };
        for r in &records {
            let r = r.unwrap();
            let v = String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap();
            out.entry(r.topic_partition.partition).or_default().push((r.record.offset, v));
        }
    }
    consumer.close().await;
    out
}

/// Every partition holds exactly p{p}-0..p{p}-199 at offsets 0..199, in order.
fn assert_exactly_once(read: &BTreeMap<i32, Vec<(i64, String)>>) {
    for p in 0..PARTITIONS {
        let want: Vec<(i64, String)> = (0..PER_PARTITION).map(|i| (i as i64, format!("p{p}-{i}"))).collect();
        assert_eq!(read.get(&p), Some(&want), "partition {p}");
    }
}

/// A Produce answer with `code` for every partition of the request.
fn produce_error(req: &ferrokafka_tests::fake::Request, code: i16) -> Vec<u8> {
    let body: ProduceRequest = req.decode();
    let topics = body
        .topic_data
        .iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| {
                    PartitionProduceResponse::default().with_index(p.index).with_error_code(code).with_base_offset(-1)
                })
                .collect();
            TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(parts)
        })
        .collect();
    req.reply(&ProduceResponse::default().with_responses(topics))
}

#[test]
fn produce_retries_a_rejected_batch_and_consume_survives_dropped_and_slow_answers() {
    let fake = FakeCluster::start();
    fake.create_topic(TOPIC, PARTITIONS);
    let produces = Arc::new(AtomicUsize::new(0));
    let seen = produces.clone();
    // The first two Produce requests are refused as a stale leader's would be.
    fake.hook(move |req| match req.api {
        ApiKey::Produce if seen.fetch_add(1, Ordering::SeqCst) < 2 => Action::Reply(produce_error(req, 6)),
        _ => Action::Pass,
    });
    let rt = runtime();
    let delivered = rt.block_on(produce(&fake));
    assert!(produces.load(Ordering::SeqCst) > 2, "the refused batches were sent again");
    for p in 0..PARTITIONS {
        let want: Vec<i64> = (0..PER_PARTITION as i64).collect();
        let mut got = delivered[&p].clone();
        got.sort_unstable();
        assert_eq!(got, want, "partition {p}: each record delivered once");
        assert_eq!(fake.high_watermark(TOPIC, p), Some(PER_PARTITION as i64), "nothing appended twice");
    }
    assert!(fake.requests_of(ApiKey::Metadata).len() >= 2, "NOT_LEADER_OR_FOLLOWER refreshes metadata");

    // Fetches: the 2nd closes the connection unanswered, the 4th is answered late.
    let fetches = Arc::new(AtomicUsize::new(0));
    let seen = fetches.clone();
    fake.hook(move |req| match req.api {
        ApiKey::Fetch => match seen.fetch_add(1, Ordering::SeqCst) {
            1 => Action::Close,
            3 => Action::Delay(Duration::from_millis(300)),
            _ => Action::Pass,
        },
        _ => Action::Pass,
    });
    let read = rt.block_on(consume(&fake, &[("max.partition.fetch.bytes", "600")]));
    assert_exactly_once(&read);
    assert!(fetches.load(Ordering::SeqCst) > 4, "faults were injected mid-read");
}

#[test]
fn a_stalled_fetch_ends_in_the_request_timeout_and_the_read_goes_on() {
    let fake = FakeCluster::start();
    fake.create_topic(TOPIC, PARTITIONS);
    let rt = runtime();
    rt.block_on(produce(&fake));
    let fetches = Arc::new(AtomicUsize::new(0));
    let seen = fetches.clone();
    fake.hook(move |req| match req.api {
        ApiKey::Fetch if seen.fetch_add(1, Ordering::SeqCst) == 1 => Action::Stall,
        _ => Action::Pass,
    });
    let read = rt.block_on(consume(&fake, &[("max.partition.fetch.bytes", "600"), ("request.timeout.ms", "1000")]));
    assert_exactly_once(&read);
    let connections =
        fake.requests_of(ApiKey::Fetch).iter().map(|r| r.connection).collect::<std::collections::BTreeSet<_>>();
    assert!(connections.len() >= 2, "the stalled connection was replaced: {connections:?}");
}

#[test]
fn unknown_topics_and_partitions_are_refused_as_a_broker_would() {
    let fake = FakeCluster::start();
    fake.create_topic(TOPIC, 1);
    let rt = runtime();
    rt.block_on(async {
        let producer = Producer::new(config(&fake, &[])).await.unwrap();
        let err = producer.send(ProducerRecord::new(TOPIC, "x").partition(5)).await.err();
        assert!(
            matches!(err, Some(ClientError::UnknownTopicOrPartition { ref topic, partition: Some(5) }) if topic == TOPIC),
            "partition 5 of a 1-partition topic is refused: {err:?}"
        );
        let missing = Producer::new(config(&fake, &[])).await.unwrap();
        let err = missing.send(ProducerRecord::new("no-such-topic", "x")).await.err();
        assert!(matches!(err, Some(ClientError::UnknownTopicOrPartition { .. })), "{err:?}");
        producer.close().await;
        missing.close().await;
    });
}
