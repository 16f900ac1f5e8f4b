//! The fetch loop's tasks in flight.

use std::collections::HashMap;

use tokio::task::JoinSet;

use kafka_protocol::messages::fetch_response::PartitionData;

use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// Partitions of one fetch: (partition, fetch offset, position epoch).
pub(crate) type Planned = Vec<(TopicPartition, i64, u64)>;
/// A fetch's answer, partition by partition.
pub(crate) type Answer = Result<Vec<(TopicPartition, PartitionData)>>;

/// The fetches in flight, one per leader. Each task's leader and partitions are kept
/// outside the task, so a task that panics (or is cancelled) still hands them back
/// and its leader is not left busy forever.
#[derive(Default)]
pub(crate) struct FetchTasks {
    set: JoinSet<(Planned, Answer)>,
    meta: HashMap<tokio::task::Id, (i32, Vec<TopicPartition>)>,
}

impl FetchTasks {
    /// Starts `fetch`, which hands back the partitions it fetched with its answer.
    pub(crate) fn spawn(
        &mut self,
        leader: i32,
        tps: Vec<TopicPartition>,
        fetch: impl std::future::Future<Output = (Planned, Answer)> + Send + 'static,
    ) {
        let handle = self.set.spawn(fetch);
        self.meta.insert(handle.id(), (leader, tps));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next finished fetch: its leader, its partitions and its answer (an error
    /// for a task that panicked).
    pub(crate) async fn next(&mut self) -> Option<(i32, Planned, Answer)> {
        let joined = self.set.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let (leader, tps) = self.meta.remove(&id)?;
        Some(match joined {
            Ok((_, (parts, answer))) => (leader, parts, answer),
            Err(e) => {
                let parts = tps.into_iter().map(|tp| (tp, -1, 0)).collect();
                (leader, parts, Err(ClientError::TaskFailed { task: "fetch", reason: e.to_string() }))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ClientError;

    /// A fetch task that panics still hands back its leader and partitions, with an
    /// error, so the fetch loop frees the leader and fetches the partitions again.
    #[tokio::test]
    async fn a_panicking_fetch_frees_its_leader() {
        let mut tasks = FetchTasks::default();
        let parts: Planned = vec![(TopicPartition::new("t", 0), 5, 1), (TopicPartition::new("t", 1), 9, 1)];
        let tps = || parts.iter().map(|p| p.0.clone()).collect();
        tasks.spawn(7, tps(), async { panic!("decoder bug") });
        let (leader, back, answer) = tasks.next().await.expect("the task is reported");
        assert_eq!(leader, 7);
        assert_eq!(
            back.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
            [TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        assert!(matches!(answer, Err(ClientError::TaskFailed { task: "fetch", .. })), "{answer:?}");
        assert!(tasks.is_empty() && tasks.meta.is_empty());
        // And a task that finishes hands back what it fetched.
        let p2 = parts.clone();
        tasks.spawn(3, tps(), async move { (p2, Ok(Vec::new())) });
        let (leader, back, answer) = tasks.next().await.expect("reported");
        assert_eq!((leader, back, answer.map(|v| v.len()).ok()), (3, parts, Some(0)));
    }
}

#[cfg(test)]
mod plan_tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use super::super::fetcher::plan_fetches;
    use super::super::{PartState, State};
    use crate::metadata::{BrokerInfo, Metadata, PartitionInfo, TopicInfo, TopicPartition};

    fn metadata() -> Metadata {
        let broker = |id| (id, BrokerInfo { id, host: "h".into(), port: 9092, rack: None });
        let part =
            |id, leader| PartitionInfo { id, leader, leader_epoch: 0, replicas: vec![], isr: vec![], error_code: 0 };
        let name: Arc<str> = Arc::from("t");
        let topic = TopicInfo {
            name: name.clone(),
            error_code: 0,
            is_internal: false,
            topic_id: None,
            partitions: vec![part(0, 1), part(1, 2), part(2, -1), part(3, 1), part(4, 1), part(5, 1)],
        };
        Metadata {
            brokers: HashMap::from([broker(1), broker(2)]),
            topics: HashMap::from([(name, topic)]),
            ..Metadata::empty()
        }
    }

    /// Which partitions a fetch round takes, decided without a socket: one plan per leader
    /// not busy, skipping paused, stopped, in-flight and unpositioned partitions.
    #[test]
    fn the_fetch_plan_follows_leaders_and_partition_states() {
        let tp = |p| TopicPartition::new("t", p);
        let mut st = State::default();
        let mut add = |p, position: Option<i64>, f: &dyn Fn(&mut PartState)| {
            let mut s = PartState::new(position);
            s.epoch = 3;
            f(&mut s);
            st.parts.insert(tp(p), s);
        };
        add(0, Some(5), &|_| {});
        add(1, Some(9), &|_| {}); // leader 2 is busy
        add(2, Some(1), &|_| {}); // no leader
        add(3, Some(4), &|s| s.paused = true);
        add(4, Some(4), &|s| s.stopped = true);
        add(5, None, &|_| {}); // no position yet
        let busy = HashSet::from([2]);
        let now = tokio::time::Instant::now();
        let (plan, leaderless) = plan_fetches(&metadata(), &mut st, &busy, now);
        assert_eq!(plan, HashMap::from([(1, vec![(tp(0), 5, 3)])]));
        assert!(leaderless);
        assert!(st.parts[&tp(0)].in_flight, "planned partitions are in flight");
        assert!(!st.parts[&tp(1)].in_flight && !st.parts[&tp(3)].in_flight);
        // In flight now: the next round plans nothing for it.
        let (again, _) = plan_fetches(&metadata(), &mut st, &HashSet::new(), now);
        assert_eq!(again.get(&2), Some(&vec![(tp(1), 9, 3)]));
        assert!(!again.contains_key(&1), "t-0 is in flight, t-3 paused, t-4 stopped, t-5 unpositioned");
    }
}

#[cfg(test)]
mod replica_tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::super::fetcher::plan_fetches;
    use super::super::{PartState, State};
    use crate::metadata::{BrokerInfo, Metadata, PartitionInfo, TopicInfo, TopicPartition};

    /// KIP-392: a partition is fetched from its preferred read replica while that is
    /// known and not expired, else from its leader (and the stale replica is forgotten).
    #[test]
    fn the_read_replica_is_used_until_it_expires_or_leaves_the_cluster() {
        let broker = |id| (id, BrokerInfo { id, host: "h".into(), port: 9092, rack: None });
        let part = |id| PartitionInfo { id, leader: 1, leader_epoch: 0, replicas: vec![], isr: vec![], error_code: 0 };
        let name: Arc<str> = Arc::from("t");
        let topic = TopicInfo {
            name: name.clone(),
            error_code: 0,
            is_internal: false,
            topic_id: None,
            partitions: (0..4).map(part).collect(),
        };
        let md = Metadata {
            brokers: HashMap::from([broker(1), broker(2)]),
            topics: HashMap::from([(name, topic)]),
            ..Metadata::empty()
        };
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut st = State::default();
        let tp = |p| TopicPartition::new("t", p);
        for (p, replica) in [(0, Some((2, later))), (1, Some((2, now))), (2, Some((9, later))), (3, None)] {
            let mut s = PartState::new(Some(0));
            s.read_replica = replica;
            st.parts.insert(tp(p), s);
        }
        let (plan, _) = plan_fetches(&md, &mut st, &HashSet::new(), now);
        assert_eq!(plan[&2].iter().map(|p| p.0.clone()).collect::<Vec<_>>(), [tp(0)], "a live replica in the cluster");
        let mut at_leader: Vec<_> = plan[&1].iter().map(|p| p.0.partition).collect();
        at_leader.sort_unstable();
        assert_eq!(at_leader, [1, 2, 3], "expired, unknown broker, none: the leader");
        assert!(st.parts[&tp(1)].read_replica.is_none() && st.parts[&tp(2)].read_replica.is_none(), "forgotten");
        assert!(st.parts[&tp(0)].read_replica.is_some());
    }
}

#[cfg(test)]
mod verdict_tests {
    use kafka_protocol::error::ResponseError;

    use super::super::fetcher::{follower_refusal, partition_verdict, PartitionVerdict};
    use crate::config::AutoOffsetReset;

    /// A partition's error code in a Fetch answer → what happens to the partition.
    #[test]
    fn each_partition_code_leads_to_its_verdict() {
        use PartitionVerdict::*;
        let code = |e: ResponseError| e.code();
        let table = [
            (0, AutoOffsetReset::None, Data),
            (code(ResponseError::OffsetOutOfRange), AutoOffsetReset::None, OutOfRange),
            (code(ResponseError::OffsetOutOfRange), AutoOffsetReset::Earliest, Reset),
            (code(ResponseError::OffsetOutOfRange), AutoOffsetReset::Latest, Reset),
            (code(ResponseError::NotLeaderOrFollower), AutoOffsetReset::Latest, Retry),
            (code(ResponseError::FencedLeaderEpoch), AutoOffsetReset::Latest, Retry),
            (code(ResponseError::UnknownTopicOrPartition), AutoOffsetReset::Latest, Retry),
            (code(ResponseError::LeaderNotAvailable), AutoOffsetReset::Latest, Retry),
            (code(ResponseError::KafkaStorageError), AutoOffsetReset::Latest, Retry),
            (
                code(ResponseError::TopicAuthorizationFailed),
                AutoOffsetReset::Latest,
                Fail(ResponseError::TopicAuthorizationFailed),
            ),
            (
                code(ResponseError::UnsupportedCompressionType),
                AutoOffsetReset::None,
                Fail(ResponseError::UnsupportedCompressionType),
            ),
            (999, AutoOffsetReset::Latest, Fail(ResponseError::Unknown(999))),
        ];
        for (code, reset, want) in table {
            assert_eq!(partition_verdict(code, reset), want, "code {code} with {reset:?}");
        }
        // From a follower, every error goes back to the leader; nothing resets there.
        for reset in [AutoOffsetReset::None, AutoOffsetReset::Earliest] {
            let oor = partition_verdict(code(ResponseError::OffsetOutOfRange), reset);
            assert!(follower_refusal(&oor, true) && !follower_refusal(&oor, false));
        }
        assert!(follower_refusal(&Retry, true) && follower_refusal(&Fail(ResponseError::Unknown(1)), true));
        assert!(!follower_refusal(&Data, true) && !follower_refusal(&Data, false));
    }
}
