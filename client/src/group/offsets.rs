//! Committed offsets: OffsetCommit and OffsetFetch against the group coordinator.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::OffsetFetchRequestTopic,
    ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::codes::ErrorCode;
use crate::conn::Connection;
use crate::error::Subject;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// A committed position: the next offset to consume, and an application string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: i64,
    /// Free-form metadata stored with the offset.
    pub metadata: Option<String>,
}

impl OffsetAndMetadata {
    /// An offset without metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata { offset, metadata: None }
    }
}

/// Who commits: a group member (generation and member id) or a standalone client
/// (generation -1, empty member id), as admin tools and `assign`-mode consumers do.
#[derive(Clone, Debug)]
pub struct CommitIdentity {
    /// Group id.
    pub group_id: String,
    /// Generation (-1 outside the group protocol).
    pub generation_id: i32,
    /// Member id ("" outside the group protocol).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

impl CommitIdentity {
    /// A client outside the group protocol (an `assign`-mode reader, a stream
    /// committing to Kafka): generation -1, no member id.
    pub fn standalone(group_id: impl Into<String>) -> CommitIdentity {
        CommitIdentity {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_owned()))
}

/// Whether a commit error means "your generation is stale: rejoin".
pub(crate) fn is_stale_generation(e: ResponseError) -> bool {
    matches!(
        e,
        ResponseError::UnknownMemberId
            | ResponseError::IllegalGeneration
            | ResponseError::RebalanceInProgress
            | ResponseError::FencedInstanceId
    )
}

/// Commits `offsets` through the coordinator connection `conn`.
pub async fn commit(
    conn: &Connection,
    who: &CommitIdentity,
    offsets: &[(TopicPartition, OffsetAndMetadata)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let version = conn.version(ApiKey::OffsetCommit)?;
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (tp, om) in offsets {
        let p = OffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(om.offset)
            .with_committed_metadata(om.metadata.clone().map(StrBytes::from_string));
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
            Some(t) => t.partitions.push(p),
            None => {
                topics.push(OffsetCommitRequestTopic::default().with_name(name(&tp.topic)).with_partitions(vec![p]))
            }
        }
    }
    let mut req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(who.group_id.clone())))
        .with_generation_id_or_member_epoch(who.generation_id)
        .with_member_id(StrBytes::from_string(who.member_id.clone()))
        .with_topics(topics);
    if version >= 7 {
        req.group_instance_id = who.group_instance_id.clone().map(StrBytes::from_string);
    }
    if (2..=4).contains(&version) {
        req.retention_time_ms = -1;
    }
    let resp: OffsetCommitResponse = conn.call_at(version, &req, None).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            conn.note_error(crate::Api::OFFSET_COMMIT, p.error_code);
        }
    }
    for t in &resp.topics {
        for p in &t.partitions {
            if let Some(error) = ResponseError::try_from_code(p.error_code) {
                if is_stale_generation(error) {
                    return Err(ClientError::CommitFailed {
                        group: who.group_id.clone(),
                        generation: who.generation_id,
                        error: ErrorCode::of(error),
                    });
                }
                return Err(ClientError::broker(
                    ApiKey::OffsetCommit,
                    error,
                    Subject::Partition(TopicPartition::new(t.name.0.to_string(), p.partition_index)),
                ));
            }
        }
    }
    Ok(())
}

/// The committed offsets of `partitions` in `group_id` (`None` where nothing is committed).
pub async fn fetch_committed(
    conn: &Connection,
    group_id: &str,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
    fetch(conn, group_id, partitions, false).await
}

/// [`fetch_committed`] asking for stable offsets (KIP-447, OffsetFetch v7+): while a
/// transaction holds offsets of a partition the broker answers UNSTABLE_OFFSET_COMMIT,
/// and this waits (`retry.backoff.ms` apart, up to `request.timeout.ms`) for the
/// transaction to end, so the offsets returned are never about to change. On older
/// brokers it is [`fetch_committed`].
pub async fn fetch_committed_stable(
    conn: &Connection,
    group_id: &str,
    partitions: &[TopicPartition],
    backoff: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match fetch(conn, group_id, partitions, true).await {
            Err(ClientError::Broker { error, .. })
                if error.response() == ResponseError::UnstableOffsetCommit
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(backoff).await;
            }
            other => return other,
        }
    }
}

async fn fetch(
    conn: &Connection,
    group_id: &str,
    partitions: &[TopicPartition],
    stable: bool,
) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
    let version = conn.version(ApiKey::OffsetFetch)?;
    let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
    for tp in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
            Some(t) => t.partition_indexes.push(tp.partition),
            None => topics.push(
                OffsetFetchRequestTopic::default()
                    .with_name(name(&tp.topic))
                    .with_partition_indexes(vec![tp.partition]),
            ),
        }
    }
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id.to_owned())))
        .with_topics(Some(topics))
        .with_require_stable(stable && version >= 7);
    let resp: OffsetFetchResponse = conn.call_at(version, &req, None).await?;
    let codes = resp.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code);
    conn.note_errors(crate::Api::OFFSET_FETCH, resp.error_code, codes);
    if let Some(error) = ResponseError::try_from_code(resp.error_code) {
        return Err(ClientError::broker(ApiKey::OffsetFetch, error, Subject::Request));
    }
    let mut out = HashMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
            if let Some(error) = ResponseError::try_from_code(p.error_code) {
                return Err(ClientError::broker(ApiKey::OffsetFetch, error, Subject::Partition(tp.clone())));
            }
            let om = (p.committed_offset >= 0).then(|| OffsetAndMetadata {
                offset: p.committed_offset,
                metadata: p.metadata.as_ref().map(|m| m.to_string()),
            });
            out.insert(tp, om);
        }
    }
    Ok(out)
}
