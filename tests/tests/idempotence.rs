//! The idempotent producer (`enable.idempotence=true`).
//!
//! The brokers here cannot show that a resend is deduplicated: librdkafka 2.0.2's mock
//! validates sequences only for transactional producers, and tansu 0.6 cannot be made
//! to lose an answer or refuse a request. So a stub broker does what a Kafka
//! broker does with them (append the expected sequence, answer an already stored one
//! with DUPLICATE_SEQUENCE_NUMBER, refuse a gap with OUT_OF_ORDER_SEQUENCE_NUMBER) while
//! failing requests and losing answers; the mock checks the producer id and gapless
//! sequences land in real batches across leader moves; tansu gets a round trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::{Api, ClientError};
use ferrokafka_protocol::records::{DecodeOptions, RecordSet};
use ferrokafka_tests::fake::{api_versions, metadata, FakeCluster, Request};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::raw::RawConnection;
use ferrokafka_tests::tansu::Tansu;
use ferrokafka_tests::unique_topic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId};

const PRODUCER_ID: i64 = 4242;
const APIS: &[(ApiKey, i16, i16)] =
    &[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12), (ApiKey::Produce, 3, 9), (ApiKey::InitProducerId, 0, 4)];
const EPOCH: i16 = 3;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// An idempotent producer's config for `bootstrap`, plus `extra`.
fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut pairs = vec![("bootstrap.servers", bootstrap), ("enable.idempotence", "true")];
    pairs.extend_from_slice(extra);
    ClientConfig::from_pairs(pairs).unwrap()
}

/// A partition as a broker keeps it for one idempotent producer.
#[derive(Default)]
struct Partition {
    values: Vec<String>,
    next_sequence: i32,
    /// (base sequence, base offset) of the stored batches.
    batches: Vec<(i32, i64)>,
}

#[derive(Default)]
struct Broker {
    partitions: BTreeMap<i32, Partition>,
    produce_requests: usize,
    duplicates: usize,
    out_of_order: usize,
    init_calls: usize,
    /// Answers to lose: of the next request that stores a batch.
    armed: usize,
    lost: usize,
}

/// Produce request numbers (1-based) answered NOT_LEADER_OR_FOLLOWER without storing.
const REFUSED: [usize; 2] = [3, 11];
/// After these requests, the answer to the next request that stores a batch is lost
/// (the connection drops after storing).
const LOSE_AFTER: [usize; 2] = [5, 13];

fn produce(broker: &Mutex<Broker>, req: &Request) -> Option<Vec<u8>> {
    let produce: ProduceRequest = req.decode();
    let mut b = broker.lock().unwrap();
    b.produce_requests += 1;
    let n = b.produce_requests;
    let mut stored = false;
    let mut topics = Vec::new();
    for t in &produce.topic_data {
        let mut answers = Vec::new();
        for p in &t.partition_data {
            let records = p.records.clone().unwrap_or_default();
            let batch = RecordSet::new(records, DecodeOptions::default()).next().unwrap().unwrap();
            assert_eq!((batch.producer_id, batch.producer_epoch), (PRODUCER_ID, EPOCH), "batch stamped with the id");
            let count = batch.records().count() as i32;
            let (code, offset) = if REFUSED.contains(&n) {
                (6, -1)
            } else {
                let part = b.partitions.entry(p.index).or_default();
                if batch.base_sequence == part.next_sequence {
                    let offset = part.values.len() as i64;
                    part.batches.push((batch.base_sequence, offset));
                    for r in batch.records() {
                        part.values.push(String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap());
                    }
                    part.next_sequence += count;
                    stored = true;
                    (0, offset)
                } else if let Some(&(_, offset)) =
                    part.batches.iter().rev().take(5).find(|(seq, _)| *seq == batch.base_sequence)
                {
                    b.duplicates += 1;
                    (46, offset)
                } else {
                    b.out_of_order += 1;
                    (45, -1)
                }
            };
            answers.push(
                PartitionProduceResponse::default().with_index(p.index).with_error_code(code).with_base_offset(offset),
            );
        }
        topics.push(TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(answers));
    }
    if LOSE_AFTER.contains(&n) {
        b.armed += 1;
    }
    if stored && b.armed > 0 {
        b.armed -= 1;
        b.lost += 1;
        return None;
    }
    Some(req.reply(&ProduceResponse::default().with_responses(topics)))
}

#[test]
fn resends_keep_order_and_the_broker_drops_duplicates() {
    let topic = "idem";
    let broker = Arc::new(Mutex::new(Broker::default()));
    let state = broker.clone();
    let stub = FakeCluster::answering(move |req| match req.api {
        ApiKey::ApiVersions => Some(api_versions(req, APIS)),
        ApiKey::Metadata => Some(metadata(req, &[(topic, 2)])),
        ApiKey::InitProducerId => {
            state.lock().unwrap().init_calls += 1;
            Some(req.reply(
                &InitProducerIdResponse::default().with_producer_id(ProducerId(PRODUCER_ID)).with_producer_epoch(EPOCH),
            ))
        }
        ApiKey::Produce => produce(&state, req),
        _ => None,
    });
    let rt = runtime();
    let reported = rt.block_on(async {
        let cfg = config(
            &stub.addr(),
            &[
                ("linger.ms", "1"),
                ("batch.size", "300"),
                ("retry.backoff.ms", "10"),
                ("reconnect.backoff.ms", "10"),
                ("request.timeout.ms", "5000"),
            ],
        );
        let producer = Producer::new(cfg).await.unwrap();
        let mut futures = Vec::new();
        for i in 0..400 {
            let p = i % 2;
            let value = format!("p{p}-{i:04}");
            futures.push((
                p,
                value.clone(),
                producer.send(ProducerRecord::new(topic, value).partition(p)).await.unwrap(),
            ));
        }
        let mut reported = Vec::new();
        for (p, value, f) in futures {
            let md = tokio::time::timeout(Duration::from_secs(60), f).await.expect("delivered").unwrap();
            assert_eq!(md.partition, p);
            reported.push((p, value, md.offset));
        }
        producer.close().await;
        reported
    });
    let b = broker.lock().unwrap();
    let summary = format!(
        "{} Produce requests, {} answers lost, {} duplicates, {} out of order",
        b.produce_requests, b.lost, b.duplicates, b.out_of_order
    );
    assert_eq!(b.init_calls, 1);
    for p in 0..2 {
        let want: Vec<String> = (0..400).filter(|i| i % 2 == p).map(|i| format!("p{p}-{i:04}")).collect();
        assert_eq!(b.partitions[&p].values, want, "partition {p}: every record once, in order ({summary})");
    }
    for (p, value, offset) in reported {
        assert_eq!(b.partitions[&p].values[offset as usize], value, "reported offset of {value}");
    }
    assert_eq!(b.lost, LOSE_AFTER.len(), "{summary}");
    assert!(b.duplicates >= b.lost, "batches whose answer was lost were resent and recognized: {summary}");
    // Requests pipelined behind a refused one (several batches of a partition in
    // flight) are refused as out of order, then resent after it.
    assert!(b.out_of_order > 0, "{summary}");
}

/// The same, eight at a time, three rounds. Stressing the test above this way found
/// a resend that went out with newer batches, failed again while they were stored, and
/// was then refused out of order for ever (beyond the broker's five-batch window); the
/// producer now resends one batch per request until one is acknowledged. Before that
/// fix, about one run in twenty stalled under contention. A second stall, about one
/// run in a hundred (5 in 600): the late acknowledgement of a batch sent before the
/// failed one ended the resends early (`queue.rs`,
/// `only_the_resent_batch_or_a_later_one_ends_the_resends`); after the fix, 0 in 400.
#[test]
fn resends_keep_order_under_contention() {
    for _ in 0..3 {
        let runs: Vec<_> =
            (0..8).map(|_| std::thread::spawn(resends_keep_order_and_the_broker_drops_duplicates)).collect();
        for r in runs {
            r.join().expect("every run delivers everything once, in order");
        }
    }
}

#[test]
fn mock_cluster_receives_the_producer_id_and_gapless_sequences_across_leader_moves() {
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("idem");
    mock.create_topic(&topic, 4);
    let rt = runtime();
    rt.block_on(async {
        let cfg = config(mock.bootstrap(), &[("linger.ms", "2"), ("batch.size", "500")]);
        let producer = Producer::new(cfg).await.unwrap();
        let mut futures = Vec::new();
        for i in 0..800 {
            if i == 400 {
                for p in 0..4 {
                    mock.must(&format!("leader {topic} {p} {}", (p + 1) % 3 + 1));
                }
            }
            let rec = ProducerRecord::new(topic.as_str(), format!("v{i:04}")).partition(i % 4);
            futures.push(producer.send(rec).await.unwrap());
        }
        for f in futures {
            tokio::time::timeout(Duration::from_secs(60), f).await.expect("delivered").unwrap();
        }
        producer.close().await;
    });
    let mut ids = HashSet::new();
    for p in 0..4 {
        let leader = (p + 1) % 3 + 1;
        let mut raw = RawConnection::connect(mock.broker(leader as usize)).unwrap();
        let (mut offset, mut next_sequence, mut values) = (0, 0, Vec::new());
        loop {
            let (hw, data) = raw.fetch(&topic, p, offset).unwrap();
            for batch in RecordSet::new(data, DecodeOptions::default()) {
                let batch = batch.unwrap();
                ids.insert((batch.producer_id, batch.producer_epoch));
                assert_eq!(batch.base_sequence, next_sequence, "partition {p} at offset {}", batch.base_offset);
                for r in batch.records() {
                    let r = r.unwrap();
                    values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                    offset = r.offset + 1;
                    next_sequence += 1;
                }
            }
            if offset >= hw {
                break;
            }
        }
        let want: Vec<String> = (0..800).filter(|i| i % 4 == p).map(|i| format!("v{i:04}")).collect();
        assert_eq!(values, want, "partition {p}");
    }
    assert_eq!(ids.len(), 1, "one producer id and epoch: {ids:?}");
    assert!(ids.iter().all(|(id, _)| *id >= 0), "{ids:?}");
}

#[test]
fn tansu_round_trip() {
    let broker = Tansu::start();
    let topic = unique_topic("idem");
    let rt = runtime();
    rt.block_on(async {
        let cfg = config(broker.addr(), &[("batch.size", "400"), ("auto.offset.reset", "earliest")]);
        let producer = Producer::new(cfg.clone()).await.unwrap();
        ferrokafka_client::admin::create_topic(producer.cluster(), &topic, 2, 1).await.unwrap();
        let mut futures = Vec::new();
        for i in 0..300 {
            futures.push(
                producer.send(ProducerRecord::new(topic.as_str(), format!("v{i:03}")).partition(i % 2)).await.unwrap(),
            );
        }
        for f in futures {
            tokio::time::timeout(Duration::from_secs(60), f).await.expect("delivered").unwrap();
        }
        producer.close().await;
        let mut consumer = Consumer::new(cfg).await.unwrap();
        consumer.assign((0..2).map(|p| TopicPartition::new(topic.as_str(), p)));
        let mut got: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while got.values().map(Vec::len).sum::<usize>() < 300 {
            assert!(tokio::time::Instant::now() < deadline, "only {got:?}");
            for r in &consumer.poll(Duration::from_millis(200)).await.unwrap() {
                let r = r.unwrap();
                let v = String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap();
                got.entry(r.topic_partition.partition).or_default().push(v);
            }
        }
        for p in 0..2 {
            let want: Vec<String> = (0..300).filter(|i| i % 2 == p).map(|i| format!("v{i:03}")).collect();
            assert_eq!(got[&p], want, "partition {p}");
        }
    });
}

#[test]
fn without_a_producer_id_every_record_fails_clearly() {
    let stub = FakeCluster::answering(|req| match req.api {
        ApiKey::ApiVersions => Some(api_versions(req, APIS)),
        ApiKey::Metadata => Some(metadata(req, &[("idem", 1)])),
        // CLUSTER_AUTHORIZATION_FAILED: no IdempotentWrite permission.
        ApiKey::InitProducerId => Some(req.reply(&InitProducerIdResponse::default().with_error_code(31))),
        _ => None,
    });
    let rt = runtime();
    rt.block_on(async {
        let cfg = config(&stub.addr(), &[]);
        let producer = Producer::new(cfg).await.unwrap();
        let first = producer.send(ProducerRecord::new("idem", "x")).await;
        let err = match first {
            Ok(delivery) => tokio::time::timeout(Duration::from_secs(30), delivery).await.expect("settled").unwrap_err(),
            Err(e) => e,
        };
        assert!(
            matches!(&err, ClientError::ProducerFatal { partition: None, cause, .. }
                if matches!(**cause, ClientError::Broker { api: Api::INIT_PRODUCER_ID, error, .. } if error.name() == "CLUSTER_AUTHORIZATION_FAILED")),
            "{err}"
        );
        let again = producer.send(ProducerRecord::new("idem", "y")).await.unwrap_err();
        assert!(matches!(again, ClientError::ProducerFatal { .. }), "{again}");
        producer.close().await;
    });
    assert!(stub.requests_of(ApiKey::Produce).is_empty(), "nothing is sent without a producer id");
}

/// KIP-360: a batch refused for good (MESSAGE_TOO_LARGE) fails its records, and the
/// producer then asks for the next epoch of its id (InitProducerId v3+ with the current
/// id and epoch) and goes on with every sequence restarted at 0, instead of stopping.
#[test]
fn a_batch_failing_for_good_bumps_the_epoch_and_the_producer_goes_on() {
    #[derive(Default)]
    struct Seen {
        /// (producer id, epoch) each InitProducerId asked with.
        inits: Vec<(i64, i16)>,
        /// (epoch, base sequence, records) of each Produce batch.
        batches: Vec<(i16, i32, usize)>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    let stub = FakeCluster::answering(move |req| match req.api {
        ApiKey::ApiVersions => Some(api_versions(req, APIS)),
        ApiKey::Metadata => Some(metadata(req, &[("bump", 1)])),
        ApiKey::InitProducerId => {
            let ask: kafka_protocol::messages::InitProducerIdRequest = req.decode();
            let mut s = log.lock().unwrap();
            s.inits.push((ask.producer_id.0, ask.producer_epoch));
            let epoch = s.inits.len() as i16 - 1;
            Some(
                req.reply(
                    &InitProducerIdResponse::default().with_producer_id(ProducerId(77)).with_producer_epoch(epoch),
                ),
            )
        }
        ApiKey::Produce => {
            let produce: ProduceRequest = req.decode();
            let mut s = log.lock().unwrap();
            let mut topics = Vec::new();
            for t in &produce.topic_data {
                let mut answers = Vec::new();
                for p in &t.partition_data {
                    let batch =
                        RecordSet::new(p.records.clone().unwrap(), DecodeOptions::default()).next().unwrap().unwrap();
                    s.batches.push((batch.producer_epoch, batch.base_sequence, batch.records().count()));
                    // The first batch is refused for good; the rest are stored.
                    let (code, offset) = if s.batches.len() == 1 { (10, -1) } else { (0, s.batches.len() as i64) };
                    answers.push(
                        PartitionProduceResponse::default()
                            .with_index(p.index)
                            .with_error_code(code)
                            .with_base_offset(offset),
                    );
                }
                topics
                    .push(TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(answers));
            }
            Some(req.reply(&ProduceResponse::default().with_responses(topics)))
        }
        _ => None,
    });
    runtime().block_on(async {
        let producer = Producer::new(config(&stub.addr(), &[("linger.ms", "0")])).await.unwrap();
        let first = producer.send(ProducerRecord::new("bump", "too big")).await.unwrap();
        let err = tokio::time::timeout(Duration::from_secs(30), first).await.unwrap().unwrap_err();
        assert_eq!(err.code().map(|c| c.name()), Some("MESSAGE_TOO_LARGE"), "{err}");
        for v in ["after-1", "after-2"] {
            let f = producer.send(ProducerRecord::new("bump", v)).await.unwrap();
            tokio::time::timeout(Duration::from_secs(30), f).await.unwrap().expect("the producer goes on");
        }
        producer.close().await;
    });
    let s = seen.lock().unwrap();
    assert_eq!(s.inits, [(-1, -1), (77, 0)], "the second InitProducerId asks for the next epoch of id 77");
    assert_eq!(s.batches[0], (0, 0, 1), "the refused batch: epoch 0, sequence 0");
    assert_eq!(s.batches[1], (1, 0, 1), "after the bump: epoch 1, sequences restart at 0");
    assert_eq!(s.batches.last().map(|b| (b.0, b.1)), Some((1, 1)), "and go on from there");
}
