//! A group member's rebalance count and its facade handles.

/// Rebalances (assignments that changed) and the assignment's size, for one member.
#[derive(Debug)]
pub(crate) struct GroupCounters {
    rebalances: u64,
    rebalances_total: metrics::Counter,
    assigned: metrics::Gauge,
}

impl GroupCounters {
    pub(crate) fn new(group: &str) -> GroupCounters {
        GroupCounters {
            rebalances: 0,
            rebalances_total: metrics::counter!("ferrokafka_group_rebalances_total", "group" => group.to_owned()),
            assigned: metrics::gauge!("ferrokafka_group_assigned_partitions", "group" => group.to_owned()),
        }
    }

    /// A rebalance gave this member an assignment (classic: every completed join round,
    /// as librdkafka's `rebalance_cnt`; KIP-848: every change of the target).
    pub(crate) fn rebalanced(&mut self) {
        self.rebalances += 1;
        self.rebalances_total.increment(1);
    }

    /// The member holds `partitions` partitions now (set after each poll and on close:
    /// the assignment changes only inside them).
    pub(crate) fn assignment(&self, partitions: usize) {
        self.assigned.set(partitions as f64);
    }

    pub(crate) fn rebalances(&self) -> u64 {
        self.rebalances
    }
}
