//! The client core against real brokers: produce/consume round trips for every
//! codec, offset reset policies, exact-range reads, leader moves, brokers going
//! down and up, request timeouts, and the Java-compatible partitioner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::{Consumer, StreamRecord};
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{partition_for_key, Producer, ProducerRecord};
use ferrokafka_client::range::RangeReader;
use ferrokafka_client::{admin, ClientError};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![("bootstrap.servers", bootstrap), ("fetch.max.wait.ms", "100"), ("linger.ms", "5")];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Produces `n` keyed records to every partition of `topic`; returns what each partition got, in order.
async fn produce(producer: &Producer, topic: &str, partitions: i32, n: usize) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut futures = Vec::new();
    for i in 0..n {
        for p in 0..partitions {
            let value = format!("{topic}-p{p}-v{i}");
            let rec = ProducerRecord::new(topic, value.clone()).key(format!("k{i}")).partition(p);
            futures.push((value, producer.send(rec).await.unwrap()));
        }
    }
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (value, f) in futures {
        let md = tokio::time::timeout(Duration::from_secs(60), f).await.expect("delivery within 60 s").unwrap();
        out.entry(md.partition).or_default().push((md.offset, value));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Polls until `want` records arrived (bounded), returning them per partition.
async fn consume(consumer: &mut Consumer, want: usize) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while got < want {
        assert!(tokio::time::Instant::now() < deadline, "only {got} of {want} records within 90 s");
        let records = consumer.poll(Duration::from_millis(500)).await.unwrap();
        for r in &records {
            let r = r.unwrap();
            let v = String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap();
            out.entry(r.topic_partition.partition).or_default().push((r.record.offset, v));
            got += 1;
        }
    }
    out
}

struct BrokerAddr(String);

impl BrokerAddr {
    fn addr(&self) -> &str {
        &self.0
    }
}

fn assign_all(consumer: &Consumer, topic: &str, partitions: i32) {
    consumer.assign((0..partitions).map(|p| TopicPartition::new(topic, p)));
}

#[test]
fn tansu_round_trip_every_codec() {
    let broker = Tansu::start();
    runtime().block_on(async {
        for codec in CODECS {
            let cfg = config(broker.addr(), &[("compression.type", codec), ("auto.offset.reset", "earliest")]);
            let producer = Producer::new(cfg.clone()).await.unwrap();
            let topic = unique_topic(&format!("client-{codec}"));
            admin::create_topic(producer.cluster(), &topic, 3, 1).await.unwrap();
            let sent = produce(&producer, &topic, 3, 200).await;
            producer.close().await;
            let mut consumer = Consumer::new(cfg).await.unwrap();
            assign_all(&consumer, &topic, 3);
            let got = consume(&mut consumer, 600).await;
            assert_eq!(got, sent, "{codec}: consumed exactly what was produced, in order");
        }
    });
}

#[test]
fn mock_cluster_round_trip_with_leader_moves_and_broker_restart() {
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("moves");
    mock.create_topic(&topic, 4);
    for p in 0..4 {
        mock.must(&format!("leader {topic} {p} {}", p % 3 + 1));
    }
    let rt = runtime();
    let cfg = config(mock.bootstrap(), &[("auto.offset.reset", "earliest"), ("reconnect.backoff.max.ms", "200")]);
    let (producer, mut consumer) =
        rt.block_on(async { (Producer::new(cfg.clone()).await.unwrap(), Consumer::new(cfg).await.unwrap()) });
    let first = rt.block_on(produce(&producer, &topic, 4, 300));
    rt.block_on(async { assign_all(&consumer, &topic, 4) });
    let mut got = rt.block_on(consume(&mut consumer, 300));
    // Move every leader and take broker 1 down for a while, as the consumer goes on.
    for p in 0..4 {
        mock.must(&format!("leader {topic} {p} {}", (p + 1) % 3 + 1));
    }
    mock.must("down 1");
    // While broker 1 is down (for 1.5 s), produce more: batches for partitions it
    // leads are retried until it is back. Then read everything.
    let second = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            mock.must("up 1");
        });
        rt.block_on(produce(&producer, &topic, 4, 100))
    });
    // The first consume may have returned more than 300 records (whole polls).
    let already: usize = got.values().map(Vec::len).sum();
    let rest = rt.block_on(consume(&mut consumer, 4 * 300 + 4 * 100 - already));
    for (p, v) in rest {
        got.entry(p).or_default().extend(v);
    }
    let mut want = first;
    for (p, v) in second {
        want.entry(p).or_default().extend(v);
    }
    assert_eq!(got, want, "no record lost or duplicated across leader moves and a broker restart");
}

#[test]
fn request_timeout_poisons_the_connection_and_the_consumer_recovers() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("timeout");
    mock.create_topic(&topic, 1);
    let rt = runtime();
    let cfg = config(mock.bootstrap(), &[("auto.offset.reset", "earliest"), ("request.timeout.ms", "1000")]);
    rt.block_on(async {
        let producer = Producer::new(cfg.clone()).await.unwrap();
        let sent = produce(&producer, &topic, 1, 50).await;
        let cluster = producer.cluster().clone();
        mock.must("rtt 1 2500");
        let err = admin::list_offsets(
            &cluster,
            &[TopicPartition::new(topic.as_str(), 0)],
            admin::OffsetSpec::Latest,
            cfg.isolation_level(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert!(err.is_retriable());
        mock.must("rtt 1 0");
        let mut consumer = Consumer::new(cfg).await.unwrap();
        assign_all(&consumer, &topic, 1);
        assert_eq!(consume(&mut consumer, 50).await, sent);
    });
}

/// On the mock: tansu 0.6 answers a fetch past the log end with an empty
/// response instead of OFFSET_OUT_OF_RANGE.
#[test]
fn offset_reset_policies_and_positions() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("reset");
    mock.create_topic(&topic, 1);
    let bootstrap = mock.bootstrap().to_owned();
    let broker = BrokerAddr(bootstrap);
    runtime().block_on(async {
        let base = config(broker.addr(), &[]);
        let producer = Producer::new(base.clone()).await.unwrap();
        produce(&producer, &topic, 1, 10).await;
        let tp = TopicPartition::new(topic.as_str(), 0);

        let mut none = Consumer::new(config(broker.addr(), &[("auto.offset.reset", "none")])).await.unwrap();
        none.assign([tp.clone()]);
        match none.poll(Duration::from_secs(10)).await {
            Err(ClientError::NoOffsetForPartition { partition }) => {
                assert_eq!(partition, TopicPartition::new(topic.as_str(), 0))
            }
            other => panic!("expected NoOffsetForPartition, got {other:?}"),
        }
        none.seek(&tp, 1000).unwrap();
        match none.poll(Duration::from_secs(10)).await {
            Err(ClientError::OffsetOutOfRange { offset: 1000, partition }) if partition.partition == 0 => {}
            other => panic!("expected OffsetOutOfRange at 1000, got {other:?}"),
        }
        none.seek(&tp, 7).unwrap();
        let got = consume(&mut none, 3).await;
        assert_eq!(got[&0].iter().map(|r| r.0).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(none.position(&tp), Some(10));
        assert_eq!(none.lag(&tp), Some(0));

        let mut latest = Consumer::new(config(broker.addr(), &[("auto.offset.reset", "latest")])).await.unwrap();
        latest.assign([tp.clone()]);
        // Nothing is delivered while the position is reset to the end (ListOffsets).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while latest.position(&tp).is_none() {
            assert!(std::time::Instant::now() < deadline, "no position after 20 s");
            assert!(latest.poll(Duration::from_millis(200)).await.unwrap().is_empty());
        }
        assert!(latest.poll(Duration::from_millis(200)).await.unwrap().is_empty());
        assert_eq!(latest.position(&tp), Some(10));
        produce(&producer, &topic, 1, 2).await;
        let got = consume(&mut latest, 2).await;
        assert_eq!(got[&0].iter().map(|r| r.0).collect::<Vec<_>>(), [10, 11]);
    });
}

/// On the mock: tansu 0.6 serves fetches only from batch boundaries, so a range
/// starting inside a batch returns nothing there.
#[test]
fn exact_range_reads() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("range");
    mock.create_topic(&topic, 1);
    let broker = BrokerAddr(mock.bootstrap().to_owned());
    runtime().block_on(async {
        let cfg = config(broker.addr(), &[]);
        let producer = Producer::new(cfg.clone()).await.unwrap();
        produce(&producer, &topic, 1, 100).await;
        let cluster = producer.cluster().clone();
        let tp = TopicPartition::new(topic.as_str(), 0);
        for (from, until) in [(0, 100), (10, 11), (37, 64), (99, 100), (50, 50)] {
            let records = RangeReader::new(cluster.clone(), tp.clone(), from, until, Duration::from_secs(30))
                .unwrap()
                .read_all()
                .await
                .unwrap();
            let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, (from..until).collect::<Vec<_>>(), "range {from}..{until}");
            assert!(records.iter().all(|r| r.value.as_deref() == Some(format!("{topic}-p0-v{}", r.offset).as_bytes())));
        }
        let err = RangeReader::new(cluster.clone(), tp.clone(), 90, 150, Duration::from_secs(5))
            .unwrap()
            .read_all()
            .await
            .unwrap_err();
        match err {
            ClientError::RangeUnavailable { from: 90, until: 150, high_watermark: 100, .. } => {}
            other => panic!("expected RangeUnavailable, got {other}"),
        }
        assert!(RangeReader::new(cluster, tp, 5, 4, Duration::from_secs(1)).is_err());
    });
}

#[test]
fn default_partitioner_matches_kafka_python() {
    let keys: Vec<String> = (0..500).map(|i| format!("key-{i}-{}", "x".repeat(i % 13))).collect();
    let script = r#"
import json, sys
from kafka.partitioner.default import DefaultPartitioner
keys = json.load(sys.stdin)
print(json.dumps([[DefaultPartitioner()(k.encode(), list(range(n)), list(range(n))) for n in (1, 3, 12, 100)] for k in keys]))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with kafka-python (scripts/setup.sh installs it)");
    serde_json::to_writer(child.stdin.take().unwrap(), &keys).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kafka-python partitioner failed");
    let theirs: Vec<Vec<i32>> = serde_json::from_slice(&out.stdout).unwrap();
    for (key, want) in keys.iter().zip(theirs) {
        let ours: Vec<i32> = [1, 3, 12, 100].iter().map(|n| partition_for_key(key.as_bytes(), *n)).collect();
        assert_eq!(ours, want, "{key}");
    }
}

#[test]
fn producer_reports_unknown_partition_and_sticky_spreads_null_keys() {
    let broker = Tansu::start();
    runtime().block_on(async {
        let cfg = config(broker.addr(), &[("batch.size", "200"), ("auto.offset.reset", "earliest")]);
        let producer = Producer::new(cfg.clone()).await.unwrap();
        let topic = unique_topic("sticky");
        admin::create_topic(producer.cluster(), &topic, 4, 1).await.unwrap();
        let err = producer.send(ProducerRecord::new(topic.as_str(), "x").partition(9)).await.unwrap_err();
        assert!(matches!(err, ClientError::UnknownTopicOrPartition { partition: Some(9), .. }), "{err}");
        let mut futures = Vec::new();
        for i in 0..200 {
            futures.push(
                producer
                    .send(ProducerRecord {
                        topic: topic.clone(),
                        value: Some(Bytes::from(format!("v{i:04}"))),
                        ..Default::default()
                    })
                    .await
                    .unwrap(),
            );
        }
        let mut used = std::collections::BTreeSet::new();
        for f in futures {
            used.insert(f.await.unwrap().partition);
        }
        assert!(used.len() > 1, "null keys stick to one partition per batch, then move: used {used:?}");
    });
}

/// `Consumer::stream`: the same records as `poll`, in order per partition, as a
/// `futures` Stream; a partition's error is one item and the stream goes on.
#[test]
fn consumer_as_a_stream_of_records() {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stream");
    mock.create_topic(&topic, 3);
    let broker = BrokerAddr(mock.bootstrap().to_owned());
    runtime().block_on(async {
        let producer = Producer::new(config(broker.addr(), &[])).await.unwrap();
        let produced = produce(&producer, &topic, 3, 200).await;
        let mut consumer = Consumer::new(config(broker.addr(), &[("auto.offset.reset", "earliest")])).await.unwrap();
        assign_all(&consumer, &topic, 3);
        let mut got: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
        {
            let mut stream = consumer.stream();
            fn is_a_stream<S: futures_core::Stream<Item = ferrokafka_client::Result<StreamRecord>>>(_: &S) {}
            is_a_stream(&stream);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
            while got.values().map(Vec::len).sum::<usize>() < 600 {
                let next = tokio::time::timeout_at(deadline, stream.next()).await.expect("600 records within 90 s");
                let r = next.expect("the stream goes on").unwrap();
                let v = String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap();
                got.entry(r.topic_partition.partition).or_default().push((r.record.offset, v));
            }
        }
        assert_eq!(got, produced, "every record once, in order per partition");

        // An error is an item: a position past the end with auto.offset.reset=none.
        let mut none = Consumer::new(config(broker.addr(), &[("auto.offset.reset", "none")])).await.unwrap();
        let tp = TopicPartition::new(topic.as_str(), 1);
        none.assign([tp.clone()]);
        none.seek(&tp, 5000).unwrap();
        let mut stream = none.stream();
        let first = tokio::time::timeout(Duration::from_secs(30), stream.next()).await.expect("an item");
        assert!(matches!(first, Some(Err(ClientError::OffsetOutOfRange { offset: 5000, .. }))), "{first:?}");
    });
}
