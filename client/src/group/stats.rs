//! A member's statistics, and the callback `poll` serves them to.

use super::{GroupConsumer, GroupProtocol};

impl GroupConsumer {
    /// The member's statistics: the consumer's (brokers, partitions, lag) and the
    /// group's (member, generation or epoch, state, rebalances, assignment size), as
    /// librdkafka's statistics JSON writes them (`cgrp`).
    pub fn statistics(&self) -> crate::stats::Statistics {
        let mut s = self.consumer.statistics();
        let st = self.membership.lock();
        for p in &mut s.partitions {
            p.committed = st.committed.get(&p.partition).copied();
        }
        s.group = Some(crate::stats::GroupStatistics {
            group_id: self.membership.cfg.group_id.clone(),
            member_id: st.member_id.clone(),
            protocol: match self.membership.cfg.protocol {
                GroupProtocol::Classic => "classic",
                GroupProtocol::Consumer => "consumer",
            },
            generation: st.generation_id,
            state: if st.joined && !st.rejoin { "up" } else { "joining" },
            rebalances: self.rebalances.rebalances(),
            assignment_size: self.assigned.len(),
        });
        s
    }

    /// Calls `callback` with [`statistics`](Self::statistics) (the group's figures
    /// included) every `statistics.interval.ms`, from `poll`, as librdkafka serves its
    /// `stats_cb` from `rd_kafka_consumer_poll`. With the interval at 0 (the default)
    /// it is never called.
    pub fn set_statistics_callback(&mut self, callback: impl FnMut(&crate::stats::Statistics) + Send + 'static) {
        let interval = self.consumer.cluster().config().statistics_interval();
        self.statistics_cb = crate::stats::Scheduled::new(interval, Box::new(callback));
    }

    /// After each poll: the assignment gauge, and the callback when it is due.
    pub(super) fn serve_statistics(&mut self) {
        self.rebalances.assignment(self.assigned.len());
        if self.statistics_cb.as_ref().is_some_and(crate::stats::Scheduled::due) {
            let snapshot = self.statistics();
            if let Some(cb) = &mut self.statistics_cb {
                cb.serve(&snapshot);
            }
        }
    }
}
