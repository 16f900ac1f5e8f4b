//! The round-robin assignor (Java's `RoundRobinAssignor`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    check_members, distinct_topics, finish, java_str_cmp, member_cmp, partition_count, partition_id, Assignor,
    MemberAssignment, MemberSubscription,
};
use crate::error::Result;
use crate::metadata::TopicPartition;

/// Lays out every partition of every subscribed topic, sorted by topic then
/// partition, and deals them to the members in member order, circularly, skipping
/// a member not subscribed to the partition's topic. With two members C0, C1 and
/// topics t0, t1 of three partitions each, C0 gets t0-0, t0-2, t1-1 and C1 gets
/// t0-1, t1-0, t1-2.
///
/// Identical to the Java client's `RoundRobinAssignor`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>> {
        check_members(self.name(), members)?;
        let mut order: Vec<&MemberSubscription> = members.iter().collect();
        order.sort_by(|a, b| member_cmp(a, b));
        let subscribed: Vec<BTreeSet<&str>> = order.iter().map(|m| distinct_topics(m).into_iter().collect()).collect();
        let mut topics: Vec<&str> = subscribed.iter().flatten().copied().collect();
        topics.sort_by(|a, b| java_str_cmp(a, b));
        topics.dedup();

        let mut out: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        let mut next = 0;
        for topic in topics {
            let Some(count) = partition_count(partitions_per_topic, topic) else { continue };
            let name: Arc<str> = Arc::from(topic);
            for p in 0..count {
                // Some member is subscribed to `topic` (it came from a subscription),
                // so this finds one within a full turn.
                let Some(found) = (0..order.len())
                    .map(|step| (next + step) % order.len())
                    .find(|&i| subscribed.get(i).is_some_and(|s| s.contains(topic)))
                else {
                    continue;
                };
                if let Some(m) = order.get(found) {
                    out.entry(m.member_id.clone())
                        .or_default()
                        .push(TopicPartition { topic: name.clone(), partition: partition_id(p) });
                }
                next = (found + 1) % order.len();
            }
        }
        Ok(finish(members, out))
    }
}
