//! The producer's memory bound on the mock cluster: `send` waits for room in
//! `buffer.memory`, sends lingering batches at once while it waits, fails with a typed
//! retriable error after `max.block.ms`, and loses nothing it accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn record(topic: &str, i: usize) -> ProducerRecord {
    // 1,000-byte values: with the key and overhead each counts about 1,040 bytes.
    let value = format!("{i:06}{}", "x".repeat(994));
    ProducerRecord::new(topic, value).partition(0)
}

/// A one-broker mock with a one-partition topic, and a producer config with room for
/// three records in `buffer.memory` plus `extra`.
fn setup(extra: &[(&str, &str)]) -> (MockCluster, String, ClientConfig) {
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("bufmem");
    mock.create_topic(&topic, 1);
    let mut pairs = vec![("bootstrap.servers", mock.bootstrap()), ("buffer.memory", "3200")];
    pairs.extend_from_slice(extra);
    let cfg = ClientConfig::from_pairs(pairs).unwrap();
    (mock, topic, cfg)
}

#[test]
fn send_waits_for_room_and_linger_does_not_hold_it_up() {
    // linger.ms far beyond max.block.ms: a send that waited for lingering batches to
    // expire would fail with BufferFull.
    let (_mock, topic, cfg) = setup(&[("linger.ms", "30000"), ("max.block.ms", "10000")]);
    runtime().block_on(async {
        let producer = Producer::new(cfg).await.unwrap();
        let mut futures = Vec::new();
        for i in 0..60 {
            futures.push(producer.send(record(&topic, i)).await.unwrap());
        }
        // The tail lingers (nothing waits for room any more) until flushed.
        tokio::time::timeout(Duration::from_secs(30), producer.flush()).await.expect("flushed");
        for (i, f) in futures.into_iter().enumerate() {
            let md = tokio::time::timeout(Duration::from_secs(30), f).await.expect("delivered").unwrap();
            assert_eq!(md.offset, i as i64, "records stay in order");
        }
        producer.close().await;
    });
}

#[test]
fn a_full_buffer_fails_after_max_block_and_keeps_what_it_accepted() {
    let (mut mock, topic, cfg) = setup(&[
        ("max.block.ms", "300"),
        ("linger.ms", "0"),
        ("retry.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "200"),
    ]);
    runtime().block_on(async {
        let producer = Producer::new(cfg).await.unwrap();

        let too_big = ProducerRecord::new(topic.as_str(), Bytes::from(vec![0u8; 4000]));
        match producer.send(too_big).await {
            Err(ClientError::RecordTooLarge { size, buffer_memory: 3200, .. }) => assert!(size > 4000),
            other => panic!("expected RecordTooLarge, got {other:?}"),
        }

        mock.must("down 1");
        let accepted: Vec<_> = {
            let mut v = Vec::new();
            for i in 0..3 {
                v.push(producer.send(record(&topic, i)).await.unwrap());
            }
            v
        };
        let err = producer.send(record(&topic, 3)).await.unwrap_err();
        assert!(matches!(&err, ClientError::BufferFull { buffer_memory: 3200, .. }), "{err}");
        assert!(err.is_retriable());
        assert!(err.to_string().contains("buffer.memory"), "{err}");

        mock.must("up 1");
        for (i, f) in accepted.into_iter().enumerate() {
            let md = tokio::time::timeout(Duration::from_secs(60), f).await.expect("delivered").unwrap();
            assert_eq!(md.offset, i as i64);
        }
        // Room again: the refused record goes through on a second try.
        let md = producer.send(record(&topic, 3)).await.unwrap().await.unwrap();
        assert_eq!(md.offset, 3);
        producer.close().await;
    });
}
