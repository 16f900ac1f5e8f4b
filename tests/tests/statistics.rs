//! Statistics after known workloads on the mock cluster: a partition's position,
//! watermark and lag after producing N records and reading M; the leader's request,
//! byte and round-trip counters; connects after the broker goes down and comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::mock::MockCluster;
use ferrokafka_tests::unique_topic;

async fn produce(b: &str, topic: &str, n: usize) {
    let p = Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b)]).unwrap()).await.unwrap();
    for i in 0..n {
        p.send(ProducerRecord::new(topic, format!("v{i}")).partition(0)).await.unwrap().await.unwrap();
    }
    p.close().await;
}

/// The value of gauge `name` with these labels, from the captured facade.
fn gauge(snapshotter: &metrics_util::debugging::Snapshotter, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    use metrics_util::debugging::DebugValue;
    snapshotter.snapshot().into_vec().into_iter().find_map(|(key, _, _, value)| {
        let k = key.key();
        let wanted =
            k.name() == name && labels.iter().all(|(l, v)| k.labels().any(|x| x.key() == *l && x.value() == *v));
        match (wanted, value) {
            (true, DebugValue::Gauge(g)) => Some(g.into_inner()),
            _ => None,
        }
    })
}

#[test]
fn lag_positions_and_broker_counters_after_known_workloads() {
    // The metrics facade's values, captured (one recorder per process).
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    // RUST_LOG=ferrokafka_client=trace shows what the consumer did.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).unwrap();
    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats");
    mock.create_topic(&topic, 1);
    let b = mock.bootstrap().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        produce(&b, &topic, 30).await;
        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", b.as_str()),
            ("auto.offset.reset", "earliest"),
            ("max.poll.records", "10"),
            ("fetch.max.wait.ms", "50"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "200"),
            ("request.timeout.ms", "2000"),
        ])
        .unwrap();
        let mut c = Consumer::new(cfg).await.unwrap();
        let tp = TopicPartition::new(&*topic, 0);
        c.assign([tp.clone()]);
        c.seek(&tp, 0).unwrap();
        // Polls of at most 10 (max.poll.records) until 10 or more are read.
        let mut read = 0;
        while read < 10 {
            read += c.poll(Duration::from_millis(200)).await.unwrap().iter().count();
        }
        let lag_now = 30 - read as i64;
        let s = c.statistics();
        let p = &s.partitions[0];
        assert_eq!((p.position, p.high_watermark, p.lag), (Some(read as i64), 30, Some(lag_now)), "{s:?}");
        assert_eq!(s.total_lag(), lag_now);
        let broker = &s.brokers[0];
        assert!(broker.connects >= 1 && broker.requests >= 3 && broker.responses >= 3, "{broker:?}");
        assert!(broker.bytes_received > 30 * 2 && broker.bytes_sent > 0, "{broker:?}");
        assert!(broker.rtt_max >= broker.rtt_avg && broker.rtt_avg > Duration::ZERO, "{broker:?}");
        let json = s.to_json();
        assert!(json.contains(&format!("\"consumer_lag\":{lag_now}")) && json.contains("\"hi_offset\":30"), "{json}");
        // The same lag through the metrics facade.
        let lag = gauge(&snapshotter, "ferrokafka_consumer_lag", &[("topic", &topic), ("partition", "0")]);
        assert_eq!(lag, Some(lag_now as f64));

        // The broker goes down and comes back: the consumer reconnects, counted.
        let up = c.statistics().brokers[0].clone();
        assert_eq!(up.state, "UP", "{up:?}");
        assert!(up.connections >= 1, "{up:?}");
        assert_eq!(p.consumed_offsets, read as u64, "{p:?}");
        let before = up.connects;
        mock.must("down 1");
        // Every connection to it closes: the broker is DOWN (librdkafka's state).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let b = c.statistics().brokers[0].clone();
            if b.state == "DOWN" && b.connections == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "still {b:?} with the broker down");
            // Records fetched before the broker went down still come out here: counted.
            read += c.poll(Duration::from_millis(100)).await.map(|r| r.iter().count()).unwrap_or(0);
        }
        mock.must("up 1");
        produce(&b, &topic, 5).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while read < 35 {
            assert!(Instant::now() < deadline, "read {read} of 35 after the broker came back");
            read += c.poll(Duration::from_millis(200)).await.map(|r| r.iter().count()).unwrap_or(0);
        }
        // Each of the 35 records once: none lost to the reconnect, none read twice.
        assert_eq!(read, 35);
        let after = c.statistics();
        assert!(after.brokers[0].connects > before, "reconnects are counted: {before} → {:?}", after.brokers[0]);
        assert_eq!(after.brokers[0].state, "UP", "{:?}", after.brokers[0]);
        assert_eq!(after.partitions[0].lag, Some(0));
        assert_eq!((after.partitions[0].position, after.partitions[0].consumed_offsets), (Some(35), 35));
        let cluster = c.cluster().clone();
        c.close().await;
        // Every request the closed consumer sent is answered or given up: nothing stays
        // counted in flight (its fetch was abandoned mid long-poll).
        ferrokafka_tests::wait_until("nothing in flight", Duration::from_secs(10), || {
            cluster.statistics()[0].in_flight == 0
        })
        .await;
        let in_flight = gauge(&snapshotter, "ferrokafka_broker_requests_in_flight", &[("broker", &b)]);
        assert!(in_flight.is_some(), "the broker's in-flight gauge is registered");
    });
}

/// A producer's queue while records wait for `linger.ms`, and after `flush`; a group
/// member's membership once it has its assignment.
#[test]
fn producer_queue_and_group_membership() {
    use ferrokafka_client::group::GroupConsumer;

    let mut mock = MockCluster::start(1);
    let topic = unique_topic("stats-pg");
    mock.create_topic(&topic, 3);
    let b = mock.bootstrap().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", b.as_str()), ("linger.ms", "60000")]).unwrap();
        let p = Producer::new(cfg).await.unwrap();
        let mut pending = Vec::new();
        for i in 0..5 {
            pending.push(p.send(ProducerRecord::new(&*topic, format!("value-{i}")).partition(0)).await.unwrap());
        }
        let queued = p.statistics().producer.unwrap();
        assert_eq!(queued.queued_records, 5, "{queued:?}");
        // Each record holds at least its value ("value-N", 7 bytes) and its key and header
        // lengths; less than a kibibyte each.
        assert!((5 * 7..5 * 1024).contains(&queued.queued_bytes), "{queued:?}");
        assert!(p.statistics().to_json().starts_with("{\"msg_cnt\":5,"));
        p.flush().await;
        for f in pending {
            f.await.unwrap();
        }
        let flushed = p.statistics();
        assert_eq!((flushed.producer.as_ref().unwrap().queued_records, flushed.producer.unwrap().queued_bytes), (0, 0));
        assert!(flushed.brokers.iter().any(|b| b.requests > 0));
        p.close().await;

        let cfg = ClientConfig::from_pairs([
            ("bootstrap.servers", b.as_str()),
            ("group.id", topic.as_str()),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ])
        .unwrap();
        let mut g = GroupConsumer::new(cfg).await.unwrap();
        let before = g.statistics().group.unwrap();
        assert_eq!((before.state, before.rebalances, before.assignment_size), ("joining", 0, 0), "{before:?}");
        g.subscribe([topic.as_str()]);
        g.join().await.unwrap();
        let s = g.statistics();
        let group = s.group.as_ref().unwrap();
        assert_eq!((group.state, group.rebalances, group.assignment_size), ("up", 1, 3), "{group:?}");
        assert!(group.generation >= 1 && !group.member_id.is_empty() && group.protocol == "classic", "{group:?}");
        assert!(s.to_json().contains("\"cgrp\":{\"group_id\":"), "{}", s.to_json());
        g.close().await.unwrap();
    });
}
