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

    /// The assignment changed; it holds `assigned` partitions now.
    pub(crate) fn rebalanced(&mut self, assigned: usize) {
        self.rebalances += 1;
        self.rebalances_total.increment(1);
        self.assigned.set(assigned as f64);
    }

    pub(crate) fn rebalances(&self) -> u64 {
        self.rebalances
    }
}
