//! The client core against a stub broker: connection kinds (produce requests travel on
//! their own connection, so metadata and admin calls never queue behind megabytes of
//! produce data, franz-go's split) and the cluster's one metadata refresh loop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::admin::{list_offsets, OffsetSpec};
use ferrokafka_client::config::{ClientConfig, IsolationLevel};
use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::producer::{Producer, ProducerRecord};
use ferrokafka_tests::fake::{api_versions, metadata, FakeCluster, Request};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse};

const APIS: &[(ApiKey, i16, i16)] =
    &[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12), (ApiKey::Produce, 3, 9), (ApiKey::ListOffsets, 1, 7)];

type Log = Arc<Mutex<Vec<(ApiKey, usize)>>>;

/// A stub broker that logs (API, connection) of every request, answers ApiVersions and
/// Metadata (one partition of `topic`) itself and everything else with `more`.
fn recording_stub(
    topic: &'static str,
    more: impl Fn(&Request) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> (FakeCluster, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let stub = FakeCluster::answering(move |req| {
        seen.lock().unwrap().push((req.api, req.connection));
        match req.api {
            ApiKey::ApiVersions => Some(api_versions(req, APIS)),
            ApiKey::Metadata => Some(metadata(req, &[(topic, 1)])),
            _ => more(req),
        }
    });
    (stub, log)
}

#[test]
fn produce_has_its_own_connection() {
    let (stub, seen) = recording_stub("kinds", |req| {
        match req.api {
            ApiKey::Produce => {
                // A slow broker: each produce answer takes a while.
                std::thread::sleep(Duration::from_millis(50));
                let body: ProduceRequest = req.decode();
                let topics = body
                    .topic_data
                    .iter()
                    .map(|t| {
                        let parts = t
                            .partition_data
                            .iter()
                            .map(|p| PartitionProduceResponse::default().with_index(p.index).with_base_offset(0))
                            .collect();
                        TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(parts)
                    })
                    .collect();
                Some(req.reply(&ProduceResponse::default().with_responses(topics)))
            }
            ApiKey::ListOffsets => {
                let body: ListOffsetsRequest = req.decode();
                let topics = body
                    .topics
                    .iter()
                    .map(|t| {
                        let parts = t
                            .partitions
                            .iter()
                            .map(|p| ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index))
                            .collect();
                        ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(parts)
                    })
                    .collect();
                Some(req.reply(&ListOffsetsResponse::default().with_topics(topics)))
            }
            _ => None,
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", stub.addr().as_str()), ("linger.ms", "0")]).unwrap();
        let producer = Producer::new(cfg).await.unwrap();
        let cluster = producer.cluster().clone();
        let mut deliveries = Vec::new();
        for i in 0..20 {
            deliveries.push(producer.send(ProducerRecord::new("kinds", format!("v{i}")).partition(0)).await.unwrap());
            // Metadata and admin calls while produce requests are in flight.
            cluster.refresh_metadata().await.unwrap();
            list_offsets(
                &cluster,
                &[TopicPartition::new("kinds", 0)],
                OffsetSpec::Latest,
                IsolationLevel::ReadUncommitted,
            )
            .await
            .unwrap();
        }
        for d in deliveries {
            tokio::time::timeout(Duration::from_secs(30), d).await.expect("delivered").unwrap();
        }
        producer.close().await;
    });
    let seen = seen.lock().unwrap().clone();
    let on = |api: ApiKey| -> std::collections::BTreeSet<usize> {
        seen.iter().filter(|(a, _)| *a == api).map(|(_, c)| *c).collect()
    };
    let (produce, other) = (on(ApiKey::Produce), [on(ApiKey::Metadata), on(ApiKey::ListOffsets)]);
    assert!(!produce.is_empty() && other.iter().all(|s| !s.is_empty()), "{seen:?}");
    for s in other {
        assert!(produce.is_disjoint(&s), "produce shares a connection with other calls: {seen:?}");
    }
}

/// Refresh requests go to the cluster's one refresh loop: a burst of them spawns no task
/// and costs a refresh or two, and the loop (with the connections) ends with the cluster.
#[test]
fn metadata_refreshes_coalesce_in_one_loop() {
    let (stub, log) = recording_stub("loop", |_| None);
    let metadata_requests = || log.lock().unwrap().iter().filter(|(a, _)| *a == ApiKey::Metadata).count();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let before_connect = tasks();
        let cfg = ClientConfig::from_pairs([("bootstrap.servers", stub.addr().as_str())]).unwrap();
        let cluster = ferrokafka_client::cluster::Cluster::connect(cfg).await.unwrap();
        let (baseline, refreshed) = (tasks(), metadata_requests());
        for _ in 0..1000 {
            cluster.request_refresh();
        }
        assert!(tasks() <= baseline, "requests spawn nothing: {} tasks, {baseline} before", tasks());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while metadata_requests() == refreshed {
            assert!(std::time::Instant::now() < deadline, "the loop refreshes");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let burst = metadata_requests() - refreshed;
        assert!((1..=2).contains(&burst), "1000 requests, {burst} refreshes");
        drop(cluster);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tasks() > before_connect {
            assert!(std::time::Instant::now() < deadline, "{} tasks left, {before_connect} before", tasks());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}
