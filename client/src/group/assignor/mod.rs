//! Partition assignors of Kafka's classic consumer group protocol, and the
//! `ConsumerProtocol` bytes that carry subscriptions and assignments through
//! JoinGroup and SyncGroup.
//!
//! | assignor | protocol name | rebalancing | behaviour |
//! |---|---|---|---|
//! | [`RangeAssignor`] | `range` | eager | per topic, contiguous ranges; identical to the Java client |
//! | [`RoundRobinAssignor`] | `roundrobin` | eager | all partitions dealt round-robin; identical to the Java client |
//! | [`StickyAssignor`] | `sticky` | eager | balanced, keeps previous ownership |
//! | [`CooperativeStickyAssignor`] | `cooperative-sticky` | cooperative, eager | sticky, minus partitions that must first be revoked |
//!
//! Members are ordered as the Java client orders them (`MemberInfo`): static members
//! (those with a `group.instance.id`) first, by instance id, then dynamic members by
//! member id; strings compare by UTF-16 code unit, as Java's `String.compareTo`
//! does. Every assignment is deterministic: it depends neither on the order of the
//! members given nor on hashing.
//!
//! The wire format functions ([`encode_subscription`], [`decode_subscription`],
//! [`encode_assignment`], [`decode_assignment`]) follow the Java client's
//! `ConsumerProtocol`: a version prefix, forward compatibility (a newer version is
//! read as the newest known one, trailing bytes are ignored), and bounds-checked
//! decoding (malformed bytes from a member are an error, never a panic or a huge
//! allocation).
//!
//! ```
//! use std::collections::BTreeMap;
//! use ferrokafka_client::group::assignor::{Assignor, MemberSubscription, RangeAssignor};
//!
//! let partitions = BTreeMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
//! let members = [
//!     MemberSubscription::new("C0", ["t0", "t1"]),
//!     MemberSubscription::new("C1", ["t0", "t1"]),
//! ];
//! let result = RangeAssignor.assign(&partitions, &members)?;
//! let c1: Vec<String> = result["C1"].partitions.iter().map(|tp| tp.to_string()).collect();
//! assert_eq!(c1, ["t0-2", "t1-2"]);
//! # Ok::<(), ferrokafka_client::ClientError>(())
//! ```

mod protocol;
mod range;
mod roundrobin;
mod sticky;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

pub use protocol::{decode_assignment, decode_subscription, encode_assignment, encode_subscription};
pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};

use crate::config::ConfigError;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// Eager (revoke everything on rebalance) or cooperative (incremental) rebalancing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before joining.
    Eager,
    /// Members keep their partitions; only those that move are revoked, and a
    /// follow-up rebalance hands them out (KIP-429).
    Cooperative,
}

/// One member's subscription as the group leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// The assignor's user data.
    pub user_data: Option<Bytes>,
    /// Partitions the member owns (subscription v1+).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation the member last joined (subscription v2+), -1 if unknown.
    pub generation_id: i32,
    /// `client.rack` (subscription v3+).
    pub rack_id: Option<String>,
}

impl MemberSubscription {
    /// A dynamic member subscribed to `topics`, owning nothing, of unknown generation.
    pub fn new<S: Into<String>>(member_id: impl Into<String>, topics: impl IntoIterator<Item = S>) -> Self {
        MemberSubscription {
            member_id: member_id.into(),
            group_instance_id: None,
            topics: topics.into_iter().map(Into::into).collect(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// What one member gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The assigned partitions (the built-in assignors sort them by topic, then partition).
    pub partitions: Vec<TopicPartition>,
    /// The assignor's user data.
    pub user_data: Option<Bytes>,
}

/// A partition assignment strategy (public so applications and the streaming layer
/// can supply their own).
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// Protocol name sent in JoinGroup ("range", "roundrobin", "sticky", "cooperative-sticky").
    fn name(&self) -> &str;

    /// Rebalance protocols this assignor supports, preferred first.
    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    /// User data to put in this member's subscription. `owned` and `generation_id`
    /// are what the member owns and the generation it last joined (-1 if none).
    fn subscription_user_data(
        &self,
        _topics: &[String],
        _owned: &[TopicPartition],
        _generation_id: i32,
    ) -> Option<Bytes> {
        None
    }

    /// Computes every member's assignment (run by the group leader).
    /// `partitions_per_topic` holds the partition count of every subscribed topic
    /// that exists; the result has an entry for every member.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>>;

    /// Called on every member with its new assignment.
    fn on_assignment(&self, _assignment: &MemberAssignment, _generation_id: i32) {}
}

/// The Java client's default `partition.assignment.strategy`.
const DEFAULT_STRATEGY: &str = "range, cooperative-sticky";

/// What `partition.assignment.strategy` accepts (for error messages).
const EXPECTED_STRATEGIES: &str = "a comma-separated list of range, roundrobin, sticky, cooperative-sticky or \
     their Java class names (org.apache.kafka.clients.consumer.RangeAssignor, RoundRobinAssignor, StickyAssignor, \
     CooperativeStickyAssignor), each at most once";

/// Parses `partition.assignment.strategy`: a comma-separated list of Java class
/// names (`org.apache.kafka.clients.consumer.RangeAssignor`, `RoundRobinAssignor`,
/// `StickyAssignor`, `CooperativeStickyAssignor`) or short names (`range`,
/// `roundrobin`, `sticky`, `cooperative-sticky`, in any case). `None` gives the
/// Java default, `[range, cooperative-sticky]`. An empty list, an unknown name or
/// an assignor named twice is an [`InvalidValue`](ConfigError::InvalidValue).
pub fn assignors_from_config(value: Option<&str>) -> Result<Vec<Arc<dyn Assignor>>, ConfigError> {
    const KEY: &str = "partition.assignment.strategy";
    const PREFIX: &str = "org.apache.kafka.clients.consumer.";
    let raw = value.unwrap_or(DEFAULT_STRATEGY);
    let invalid = || ConfigError::invalid_value(KEY, raw, EXPECTED_STRATEGIES);
    let mut out: Vec<Arc<dyn Assignor>> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let short = match entry.strip_prefix(PREFIX) {
            Some("RangeAssignor") => "range",
            Some("RoundRobinAssignor") => "roundrobin",
            Some("StickyAssignor") => "sticky",
            Some("CooperativeStickyAssignor") => "cooperative-sticky",
            Some(_) => return Err(invalid()),
            None => entry,
        };
        let assignor: Arc<dyn Assignor> = match short.to_ascii_lowercase().as_str() {
            "range" => Arc::new(RangeAssignor),
            "roundrobin" => Arc::new(RoundRobinAssignor),
            "sticky" => Arc::new(StickyAssignor::new()),
            "cooperative-sticky" => Arc::new(CooperativeStickyAssignor),
            _ => return Err(invalid()),
        };
        if out.iter().any(|a| a.name() == assignor.name()) {
            return Err(invalid());
        }
        out.push(assignor);
    }
    if out.is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

/// Java's `String.compareTo`: lexicographic by UTF-16 code unit.
pub(crate) fn java_str_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `MemberInfo` order: static members first (by instance id), then dynamic
/// members (by member id); ties (duplicate instance ids) broken by member id.
pub(crate) fn member_cmp(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_str_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| java_str_cmp(&a.member_id, &b.member_id))
}

/// Fails on duplicate member ids (the result is keyed by member id).
pub(crate) fn check_members(assignor: &str, members: &[MemberSubscription]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for m in members {
        if !seen.insert(m.member_id.as_str()) {
            return Err(ClientError::Assignor {
                assignor: assignor.to_owned(),
                reason: format!("member id {:?} appears twice in the group", m.member_id),
            });
        }
    }
    Ok(())
}

/// The partition count of `topic`, if it exists with at least one partition.
pub(crate) fn partition_count(partitions_per_topic: &BTreeMap<String, i32>, topic: &str) -> Option<usize> {
    partitions_per_topic.get(topic).and_then(|n| usize::try_from(*n).ok()).filter(|n| *n > 0)
}

/// A partition number from an index below a partition count (which fits in i32).
pub(crate) fn partition_id(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// A member's topics without duplicates, in the order given.
pub(crate) fn distinct_topics(m: &MemberSubscription) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    m.topics.iter().map(String::as_str).filter(|t| seen.insert(*t)).collect()
}

/// The result map: every member, partitions sorted, no user data.
pub(crate) fn finish(
    members: &[MemberSubscription],
    mut partitions: BTreeMap<String, Vec<TopicPartition>>,
) -> BTreeMap<String, MemberAssignment> {
    members
        .iter()
        .map(|m| {
            let mut p = partitions.remove(&m.member_id).unwrap_or_default();
            p.sort();
            (m.member_id.clone(), MemberAssignment { partitions: p, user_data: None })
        })
        .collect()
}
