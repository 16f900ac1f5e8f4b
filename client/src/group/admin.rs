//! Group administration: list and describe groups, committed offsets and lag,
//! and resetting a group's offsets.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::assignor::decode_assignment;
use super::coordinator::find_coordinator;
use super::offsets::{commit, fetch_committed, CommitIdentity, OffsetAndMetadata};
use crate::admin::{list_offsets, OffsetSpec};
use crate::cluster::{Cluster, ConnKind};
use crate::error::Subject;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// A group as ListGroups reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// State (Stable, Empty, …) when the broker reports it (ListGroups v4+).
    pub state: Option<String>,
}

/// One member of a described group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static member id, if any.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the broker saw it.
    pub client_host: String,
    /// Its assigned partitions.
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State: Stable, Empty, PreparingRebalance, CompletingRebalance, Dead.
    pub state: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// The assignor in use.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// Committed offset, end offset and lag of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic and partition.
    pub topic_partition: TopicPartition,
    /// Committed offset (`None` if nothing is committed).
    pub committed: Option<i64>,
    /// Log end offset.
    pub end_offset: i64,
    /// `end_offset - committed`, when something is committed.
    pub lag: Option<i64>,
}

/// Where `reset_offsets` moves a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetTo {
    /// Log start.
    Earliest,
    /// Log end.
    Latest,
    /// A given offset.
    Offset(i64),
    /// The first offset at or after a timestamp (ms).
    Timestamp(i64),
}

fn broker_error(api: ApiKey, code: i16, group: &str) -> Option<ClientError> {
    ResponseError::try_from_code(code).map(|error| ClientError::broker(api, error, Subject::Group(group.to_owned())))
}

/// Lists the groups of every broker.
pub async fn list_groups(cluster: &Cluster) -> Result<Vec<GroupListing>> {
    let md = cluster.refresh_metadata().await?;
    let mut out = Vec::new();
    let mut ids: Vec<i32> = md.brokers.keys().copied().collect();
    ids.sort();
    for id in ids {
        let conn = cluster.broker(id, ConnKind::General).await?;
        let resp: ListGroupsResponse = conn.call(&ListGroupsRequest::default()).await?;
        if let Some(e) = broker_error(ApiKey::ListGroups, resp.error_code, "") {
            return Err(e);
        }
        out.extend(resp.groups.iter().map(|g| GroupListing {
            group_id: g.group_id.0.to_string(),
            protocol_type: g.protocol_type.to_string(),
            state: (!g.group_state.is_empty()).then(|| g.group_state.to_string()),
        }));
    }
    out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    out.dedup_by(|a, b| a.group_id == b.group_id);
    Ok(out)
}

/// Describes a group (members and their assignments).
pub async fn describe_group(cluster: &Cluster, group: &str) -> Result<GroupDescription> {
    let conn = find_coordinator(cluster, group).await?;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_string(group.to_owned()))]);
    let resp: DescribeGroupsResponse = conn.call(&req).await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::incomplete(ApiKey::DescribeGroups, format!("group {group}")))?;
    if let Some(e) = broker_error(ApiKey::DescribeGroups, g.error_code, group) {
        return Err(e);
    }
    let mut members = Vec::new();
    for m in g.members {
        let assignment = if m.member_assignment.is_empty() {
            Vec::new()
        } else {
            decode_assignment(m.member_assignment)?.partitions
        };
        members.push(MemberDescription {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            client_host: m.client_host.to_string(),
            assignment,
        });
    }
    Ok(GroupDescription {
        group_id: g.group_id.0.to_string(),
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    })
}

/// Every committed offset of a group.
///
/// Asks for the partitions of every topic explicitly instead of sending a null
/// topic list: tansu 0.6 answers the null-list form of OffsetFetch v7 with a
/// malformed (null) array.
pub async fn committed_offsets(cluster: &Cluster, group: &str) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
    let tps = every_partition(cluster).await?;
    if tps.is_empty() {
        return Ok(BTreeMap::new());
    }
    let conn = find_coordinator(cluster, group).await?;
    let found = fetch_committed(&conn, group, &tps).await?;
    Ok(found.into_iter().filter_map(|(tp, om)| om.map(|om| (tp, om))).collect())
}

/// Every partition of every topic the cluster has (internal topics left out).
pub async fn every_partition(cluster: &Cluster) -> Result<Vec<TopicPartition>> {
    let md = cluster.describe(None).await?;
    Ok(md
        .topics
        .values()
        .filter(|t| t.error_code == 0 && !t.is_internal)
        .flat_map(|t| t.partitions.iter().map(move |p| TopicPartition { topic: t.name.clone(), partition: p.id }))
        .collect())
}

/// The committed offsets of `partitions` in `group`, as they are once no transaction
/// holds offsets of them (KIP-447's stable offsets: a transactional writer's offsets
/// count only when its transaction commits). Partitions without one are left out.
pub async fn stable_committed_offsets(
    cluster: &Cluster,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let conn = find_coordinator(cluster, group).await?;
    let cfg = cluster.config();
    let found = super::offsets::fetch_committed_stable(
        &conn,
        group,
        partitions,
        cluster.retry_backoff(),
        cfg.request_timeout(),
    )
    .await?;
    Ok(found.into_iter().filter_map(|(tp, om)| om.map(|om| (tp, om))).collect())
}

/// Committed offsets, end offsets and lag of every partition of the topics a group committed for.
pub async fn group_lag(cluster: &Cluster, group: &str) -> Result<Vec<PartitionLag>> {
    let committed = committed_offsets(cluster, group).await?;
    let topics: Vec<String> = committed
        .keys()
        .map(|tp| tp.topic.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    cluster.track_topics(topics.iter().map(String::as_str));
    let md = cluster.refresh_metadata().await?;
    let tps: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|t| (0..md.partition_count(t).unwrap_or(0) as i32).map(move |p| TopicPartition::new(t.as_str(), p)))
        .collect();
    let ends = list_offsets(cluster, &tps, OffsetSpec::Latest, cluster.config().isolation_level()).await?;
    Ok(tps
        .into_iter()
        .map(|tp| {
            let c = committed.get(&tp).map(|o| o.offset);
            let end = ends.get(&tp).copied().unwrap_or(-1);
            PartitionLag { lag: c.map(|c| (end - c).max(0)), committed: c, end_offset: end, topic_partition: tp }
        })
        .collect())
}

/// Computes (and, with `execute`, commits) new offsets for `partitions`. The group
/// must have no active members, as with `kafka-consumer-groups --reset-offsets`.
pub async fn reset_offsets(
    cluster: &Cluster,
    group: &str,
    partitions: &[TopicPartition],
    to: ResetTo,
    execute: bool,
) -> Result<Vec<(TopicPartition, i64)>> {
    let iso = cluster.config().isolation_level();
    let offsets: Vec<(TopicPartition, i64)> = match to {
        ResetTo::Offset(o) => partitions.iter().map(|tp| (tp.clone(), o)).collect(),
        spec => {
            let spec = match spec {
                ResetTo::Earliest => OffsetSpec::Earliest,
                ResetTo::Timestamp(ts) => OffsetSpec::Timestamp(ts),
                _ => OffsetSpec::Latest,
            };
            let found = list_offsets(cluster, partitions, spec, iso).await?;
            let latest = list_offsets(cluster, partitions, OffsetSpec::Latest, iso).await?;
            partitions
                .iter()
                .map(|tp| {
                    let o = found.get(tp).copied().unwrap_or(-1);
                    (tp.clone(), if o < 0 { latest.get(tp).copied().unwrap_or(0) } else { o })
                })
                .collect()
        }
    };
    if execute {
        let desc = describe_group(cluster, group).await?;
        if !desc.members.is_empty() {
            return Err(ClientError::GroupNotEmpty {
                group: group.to_owned(),
                members: desc.members.len(),
                state: desc.state.clone(),
            });
        }
        let conn = find_coordinator(cluster, group).await?;
        let who = CommitIdentity {
            group_id: group.to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        };
        let om: Vec<(TopicPartition, OffsetAndMetadata)> =
            offsets.iter().map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o))).collect();
        commit(&conn, &who, &om).await?;
    }
    Ok(offsets)
}
