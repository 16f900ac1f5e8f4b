//! Fetch request building and response helpers shared by the consumer's fetcher
//! and the exact-range reader.

use ferrokafka_protocol::records::AbortedTransaction;
use kafka_protocol::messages::{
    fetch_request::{FetchPartition, FetchTopic, ForgottenTopic},
    fetch_response::PartitionData,
    BrokerId, FetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::ClientConfig;
use crate::metadata::TopicPartition;

fn clamp(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A Fetch request for `partitions` (partition, fetch offset) at `version`, with the
/// configured sizes and wait; fields a version lacks are left at their defaults.
pub(crate) fn fetch_request<'a>(
    cfg: &ClientConfig,
    version: i16,
    min_bytes: i32,
    partitions: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, offset) in partitions {
        let p = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(clamp(cfg.max_partition_fetch_bytes()));
        match topics.iter_mut().find(|t| t.topic.0.as_str() == &*tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let mut req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(i32::try_from(cfg.fetch_max_wait().as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(min_bytes)
        .with_topics(topics);
    if version >= 3 {
        req.max_bytes = clamp(cfg.fetch_max_bytes());
    }
    if version >= 4 {
        req.isolation_level = cfg.isolation_level().as_i8();
    }
    if version >= 11 {
        // KIP-392: the broker may answer with a replica in this rack to read from.
        req.rack_id = StrBytes::from_string(cfg.client_rack().unwrap_or_default().to_owned());
    }
    req
}

/// Puts a fetch session's id, epoch and forgotten partitions on `req` (v7+; KIP-227).
pub(crate) fn with_session(req: &mut FetchRequest, version: i16, session: &crate::fetch_session::SessionRequest) {
    if version < 7 {
        return;
    }
    req.session_id = session.session_id;
    req.session_epoch = session.epoch;
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for tp in &session.forgotten {
        match forgotten.iter_mut().find(|t| t.topic.0.as_str() == &*tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => forgotten.push(
                ForgottenTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.to_string())))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    req.forgotten_topics_data = forgotten;
}

/// The aborted transactions a partition's answer lists (for `read_committed`).
pub(crate) fn aborted_transactions(pd: &mut PartitionData) -> Vec<AbortedTransaction> {
    pd.aborted_transactions
        .take()
        .unwrap_or_default()
        .iter()
        .map(|a| AbortedTransaction { producer_id: a.producer_id.0, first_offset: a.first_offset })
        .collect()
}
