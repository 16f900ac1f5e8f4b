//! A snapshot of cluster metadata: brokers, topics, partitions and their leaders.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use kafka_protocol::messages::MetadataResponse;
use tokio::time::Instant;

/// A topic and partition, Kafka's `TopicPartition`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic's id (KIP-516), as Metadata v10+ reports it. Displayed as Kafka prints a
/// `Uuid`: 22 characters of URL-safe base64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId(pub [u8; 16]);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine;
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// A broker as announced in metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition number.
    pub id: i32,
    /// Leader node id (-1 while no leader is elected).
    pub leader: i32,
    /// Leader epoch (-1 when the broker does not report it).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Partition-level error code (0 = none).
    pub error_code: i16,
}

/// One topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: Arc<str>,
    /// Topic-level error code (0 = none).
    pub error_code: i16,
    /// Whether the topic is internal (`__consumer_offsets`, `__transaction_state`).
    pub is_internal: bool,
    /// The topic's id, when the broker reports one (Metadata v10+).
    pub topic_id: Option<TopicId>,
    /// Partitions, sorted by id.
    pub partitions: Vec<PartitionInfo>,
}

/// An immutable metadata snapshot.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// Brokers by node id.
    pub brokers: HashMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: HashMap<Arc<str>, TopicInfo>,
    /// Controller node id (-1 if unknown).
    pub controller_id: i32,
    /// Cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// When this snapshot was fetched.
    pub fetched_at: Instant,
}

impl Metadata {
    /// An empty snapshot (before the first fetch).
    pub fn empty() -> Self {
        Metadata {
            brokers: HashMap::new(),
            topics: HashMap::new(),
            controller_id: -1,
            cluster_id: None,
            fetched_at: Instant::now(),
        }
    }

    /// Builds a snapshot from a Metadata response. Topics not in the response but
    /// in `previous` are kept when `merge` is set (a refresh of some topics only).
    pub(crate) fn from_response(resp: &MetadataResponse, previous: Option<&Metadata>) -> Self {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                };
                (info.id, info)
            })
            .collect();
        let mut topics: HashMap<Arc<str>, TopicInfo> = previous.map(|p| p.topics.clone()).unwrap_or_default();
        for t in &resp.topics {
            let Some(name) = t.name.as_ref() else { continue };
            let name: Arc<str> = Arc::from(name.as_str());
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    id: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                    isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            let id = *t.topic_id.as_bytes();
            let topic_id = (id != [0; 16]).then_some(TopicId(id));
            let info = TopicInfo {
                name: name.clone(),
                error_code: t.error_code,
                is_internal: t.is_internal,
                topic_id,
                partitions,
            };
            topics.insert(name, info);
        }
        Metadata {
            brokers,
            topics,
            controller_id: resp.controller_id.0,
            cluster_id: resp.cluster_id.as_ref().map(|c| c.to_string()),
            fetched_at: Instant::now(),
        }
    }

    /// The partition's info, if the topic and partition are known.
    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionInfo> {
        self.topics.get(&tp.topic)?.partitions.iter().find(|p| p.id == tp.partition)
    }

    /// The current leader of a partition, if it has one and it is a known broker.
    pub fn leader(&self, tp: &TopicPartition) -> Option<&BrokerInfo> {
        self.partition(tp).filter(|p| p.leader >= 0).and_then(|p| self.brokers.get(&p.leader))
    }

    /// The topic with id `id`, if this snapshot has it.
    pub fn topic_by_id(&self, id: TopicId) -> Option<&TopicInfo> {
        self.topics.values().find(|t| t.topic_id == Some(id))
    }

    /// Number of partitions of `topic`, if known.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topics.get(topic).filter(|t| t.error_code == 0).map(|t| t.partitions.len())
    }
}
