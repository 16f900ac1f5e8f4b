//! The range assignor (Java's `RangeAssignor`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    check_members, distinct_topics, finish, member_cmp, partition_count, partition_id, Assignor, MemberAssignment,
    MemberSubscription,
};
use crate::error::Result;
use crate::metadata::TopicPartition;

/// Assigns each topic on its own: the members subscribed to it, in member order,
/// get contiguous ranges of its partitions, and the first `partitions % members`
/// of them one partition more. With two members C0, C1 and topics t0, t1 of three
/// partitions each, C0 gets t0-0, t0-1, t1-0, t1-1 and C1 gets t0-2, t1-2.
///
/// Identical to the Java client's `RangeAssignor` without rack information (the
/// rack-aware variant of KIP-881 needs partition replica racks, which
/// `partitions_per_topic` does not carry).
#[derive(Clone, Copy, Debug, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>> {
        check_members(self.name(), members)?;
        let mut consumers_per_topic: BTreeMap<&str, Vec<&MemberSubscription>> = BTreeMap::new();
        for m in members {
            for topic in distinct_topics(m) {
                consumers_per_topic.entry(topic).or_default().push(m);
            }
        }
        let mut out: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (topic, mut consumers) in consumers_per_topic {
            let Some(count) = partition_count(partitions_per_topic, topic) else { continue };
            consumers.sort_by(|a, b| member_cmp(a, b));
            let name: Arc<str> = Arc::from(topic);
            let per_consumer = count / consumers.len();
            let with_extra = count % consumers.len();
            for (i, m) in consumers.iter().enumerate() {
                let start = per_consumer * i + i.min(with_extra);
                let len = per_consumer + usize::from(i < with_extra);
                out.entry(m.member_id.clone()).or_default().extend(
                    (start..start + len).map(|p| TopicPartition { topic: name.clone(), partition: partition_id(p) }),
                );
            }
        }
        Ok(finish(members, out))
    }
}
