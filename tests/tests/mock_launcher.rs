//! The mock-cluster launcher's commands for what librdkafka 2.16's mock adds (request
//! tracking, topic deletion, KIP-848 group timeouts), checked through our client; on
//! Debian's 2.0.2 they are refused by name. Racks and follower watermarks work on both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::mock::{mock_version, MockCluster};
use ferrokafka_tests::unique_topic;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// `requests [APIKEY]` → (total, per ApiKey).
fn tracked(mock: &mut MockCluster, api: &str) -> (usize, Vec<(i16, usize)>) {
    let reply = mock.must(&format!("requests {api}"));
    let mut words = reply.split_whitespace();
    let total = words.next().unwrap().parse().unwrap();
    let per = words
        .map(|w| {
            let (k, n) = w.split_once('=').unwrap();
            (k.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    (total, per)
}

#[test]
fn launcher_commands_for_the_2_16_mock() {
    let mut mock = MockCluster::start(3);
    let topic = unique_topic("launcher");
    mock.create_topic(&topic, 2);
    let b = mock.bootstrap().to_owned();
    mock.must("rack -1 rack-a");
    mock.must(&format!("wmarks {topic} 0 0 5"));
    let rt = runtime();
    let cluster = rt.block_on(Cluster::connect(ClientConfig::from_pairs([("bootstrap.servers", b.as_str())]).unwrap()));
    let cluster = cluster.unwrap();
    let md = rt.block_on(cluster.describe(None)).unwrap();
    assert!(md.brokers.values().all(|br| br.rack.as_deref() == Some("rack-a")), "racks in Metadata: {:?}", md.brokers);

    if mock_version() != "2.16" {
        for cmd in ["track start", "requests", "topic_delete x", "cgrp_consumer 10000 500"] {
            let err = mock.command(cmd).unwrap_err();
            assert!(err.contains("needs librdkafka >= 2.15"), "{cmd}: {err}");
        }
        return;
    }

    mock.must("cgrp_consumer 10000 500");
    mock.must("track start");
    rt.block_on(async {
        let p =
            Producer::new(ClientConfig::from_pairs([("bootstrap.servers", b.as_str()), ("linger.ms", "0")]).unwrap())
                .await
                .unwrap();
        for i in 0..5 {
            let f = p.send(ProducerRecord::new(topic.as_str(), format!("v{i}")).partition(0)).await.unwrap();
            tokio::time::timeout(Duration::from_secs(30), f).await.unwrap().unwrap();
        }
        p.close().await;
    });
    let (produce, per) = tracked(&mut mock, "Produce");
    assert!((1..=5).contains(&produce), "one to five Produce requests tracked: {produce}");
    assert_eq!(per, [(0, produce)]);
    let (all, per_key) = tracked(&mut mock, "");
    assert!(all > produce, "ApiVersions and Metadata were tracked too: {per_key:?}");
    assert!(per_key.iter().any(|&(k, n)| k == 3 && n >= 1), "Metadata: {per_key:?}");
    mock.must("track clear");
    assert_eq!(tracked(&mut mock, "").0, 0);

    mock.must(&format!("topic_delete {topic}"));
    let md = rt.block_on(cluster.describe(Some(std::slice::from_ref(&topic)))).unwrap();
    let gone = md.topics.values().all(|t| t.error_code == 3 || t.partitions.is_empty());
    assert!(gone, "a deleted topic is unknown to Metadata: {:?}", md.topics);
    assert!(mock.command(&format!("topic_delete {topic}")).is_err(), "a topic is deleted once");
}
