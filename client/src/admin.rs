//! Administrative calls the CLI and the tests need: topics and offsets.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic,
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, ConnKind};
use crate::codes::Api;
use crate::config::IsolationLevel;
use crate::error::{ClientError, Result, Subject};
use crate::metadata::TopicPartition;

/// Which offset ListOffsets should return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark, or last stable offset under read_committed).
    Latest,
    /// The first offset whose timestamp is at least this (ms); -1 offset if none.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// The error an answer's `code` means, if any, counted in its broker's statistics.
fn broker_error(
    conn: &crate::conn::Connection,
    api: ApiKey,
    code: i16,
    subject: impl FnOnce() -> Subject,
) -> Option<ClientError> {
    conn.note_error(Api::of(api), code);
    ResponseError::try_from_code(code).map(|error| ClientError::broker(api, error, subject()))
}

/// Creates a topic with `partitions` partitions and replication factor
/// `replication`; "already exists" is an error.
pub async fn create_topic(cluster: &Cluster, topic: &str, partitions: i32, replication: i16) -> Result<()> {
    let md = cluster.refresh_metadata().await?;
    let conn = match md.controller_id {
        id if id >= 0 && md.brokers.contains_key(&id) => cluster.broker(id, ConnKind::General).await?,
        _ => cluster.any_connection().await?,
    };
    let t = CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(replication);
    let req = CreateTopicsRequest::default().with_topics(vec![t]).with_timeout_ms(30_000);
    let resp: CreateTopicsResponse = conn.call(&req).await?;
    for t in &resp.topics {
        if let Some(e) = broker_error(&conn, ApiKey::CreateTopics, t.error_code, || Subject::Topic(topic.to_owned())) {
            return Err(e);
        }
    }
    cluster.track_topics([topic]);
    Ok(())
}

/// Deletes a topic.
pub async fn delete_topic(cluster: &Cluster, topic: &str) -> Result<()> {
    let conn = cluster.any_connection().await?;
    let version = conn.version(ApiKey::DeleteTopics)?;
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(30_000);
    if version >= 6 {
        req.topics =
            vec![kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                .with_name(Some(name(topic)))];
    } else {
        req.topic_names = vec![name(topic)];
    }
    let resp: DeleteTopicsResponse = conn.call_at(version, &req, None).await?;
    for r in &resp.responses {
        if let Some(e) = broker_error(&conn, ApiKey::DeleteTopics, r.error_code, || Subject::Topic(topic.to_owned())) {
            return Err(e);
        }
    }
    Ok(())
}

/// Looks up offsets for partitions, asking each partition's leader; retries
/// retriable errors after refreshing metadata (bounded by `retries`).
pub async fn list_offsets(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
    isolation: IsolationLevel,
) -> Result<HashMap<TopicPartition, i64>> {
    let mut out = HashMap::new();
    let mut pending: Vec<TopicPartition> = partitions.to_vec();
    let mut attempts = 0u32;
    while !pending.is_empty() {
        attempts += 1;
        let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        let mut last_err = None;
        for tp in &pending {
            match cluster.leader(tp, ConnKind::General).await {
                Ok((leader, _)) => by_leader.entry(leader).or_default().push(tp.clone()),
                Err(e) => last_err = Some(e),
            }
        }
        for (leader, tps) in by_leader {
            match list_on_broker(cluster, leader, &tps, spec, isolation).await {
                Ok(results) => {
                    for (tp, r) in results {
                        match r {
                            Ok(offset) => {
                                out.insert(tp, offset);
                            }
                            Err(e) if e.is_retriable() => last_err = Some(e),
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.is_retriable() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        // Everything still unanswered is tried again after a metadata refresh: retriable
        // errors, partitions without a leader (a leader election in progress, even if a
        // concurrent refresh has found one since), and partitions a broker left out.
        pending.retain(|tp| !out.contains_key(tp));
        if !pending.is_empty() {
            if attempts >= 10 {
                return Err(ClientError::RetriesExhausted {
                    api: Api::LIST_OFFSETS,
                    attempts,
                    last: last_err.map(Box::new),
                });
            }
            tokio::time::sleep(cluster.retry_backoff()).await;
            cluster.refresh_metadata().await?;
        }
    }
    Ok(out)
}

type PartitionResult = (TopicPartition, Result<i64>);

async fn list_on_broker(
    cluster: &Cluster,
    leader: i32,
    tps: &[TopicPartition],
    spec: OffsetSpec,
    isolation: IsolationLevel,
) -> Result<Vec<PartitionResult>> {
    let conn = cluster.broker(leader, ConnKind::General).await?;
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for tp in tps {
        let p = ListOffsetsPartition::default().with_partition_index(tp.partition).with_timestamp(spec.timestamp());
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(ListOffsetsTopic::default().with_name(name(&tp.topic)).with_partitions(vec![p])),
        }
    }
    let version = conn.version(ApiKey::ListOffsets)?;
    let mut req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(topics);
    if version >= 2 {
        req.isolation_level = isolation.as_i8();
    }
    let resp: ListOffsetsResponse = conn.call_at(version, &req, None).await?;
    let mut out = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
            let r = match broker_error(&conn, ApiKey::ListOffsets, p.error_code, || Subject::Partition(tp.clone())) {
                Some(e) => Err(e),
                None => Ok(p.offset),
            };
            out.push((tp, r));
        }
    }
    Ok(out)
}
