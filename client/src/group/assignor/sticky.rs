//! The sticky assignors (Java's `StickyAssignor` and `CooperativeStickyAssignor`).
//!
//! Both compute the same assignment:
//!
//! 1. Previous ownership: each member's claimed partitions (its `owned_partitions`,
//!    or for the eager assignor the Java `StickyAssignorUserData` when it owns
//!    none) count only for members of the highest generation present; a partition
//!    claimed by two such members belongs to neither. Claims of partitions that no
//!    longer exist, or of topics the member no longer subscribes to, are dropped.
//!    Claims of older generations only break ties.
//! 2. Every unclaimed partition (those with the fewest eligible members first) goes
//!    to the eligible member with the fewest partitions (on equal counts: the
//!    previous owner of an older generation, else the member eligible for fewer
//!    partitions, else the first in member order).
//! 3. Balancing: while a member holds a partition that an eligible member with at
//!    least two fewer partitions could take, one such partition moves, one at a
//!    time: partitions the giver did not own before first, from the most loaded
//!    giver, its highest first. The result is balanced in the Java assignor's
//!    sense: counts differ by at most one when all subscriptions are equal, and
//!    otherwise no partition can move to an eligible member with two fewer. With
//!    equal subscriptions every member keeps `min(partitions it owned, partitions it
//!    gets)` of its previous partitions.
//!
//! The cooperative assignor then withholds every partition that would move from
//! one owner straight to another member: the owner revokes it, and the follow-up
//! rebalance assigns it. With equal subscriptions that follow-up assigns everything;
//! with unequal ones it may move another owned partition (as Java's can), so a
//! third rebalance happens now and then (in the property tests, a few percent of
//! random groups; none needed a fourth).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::protocol::{
    decode_cooperative_user_data, decode_sticky_user_data, encode_cooperative_user_data, encode_sticky_user_data,
};
use super::{
    check_members, distinct_topics, finish, member_cmp, partition_count, partition_id, Assignor, MemberAssignment,
    MemberSubscription, RebalanceProtocol,
};
use crate::error::Result;
use crate::metadata::TopicPartition;

/// The eager sticky assignor (`sticky`): balanced, and keeping partitions where
/// they were as much as balance allows.
///
/// It remembers the member's last assignment ([`Assignor::on_assignment`]) and sends
/// it, with its generation, as Java's `StickyAssignorUserData` v1, because an eager
/// member owns nothing when it rejoins. As leader it reads previous ownership from
/// `owned_partitions`, or from that user data (written by Java, kafka-python or
/// ferrokafka members) when a member sends no owned partitions.
#[derive(Debug, Default)]
pub struct StickyAssignor {
    /// The last assignment received and its generation.
    memory: Mutex<Option<(Vec<TopicPartition>, i32)>>,
}

impl StickyAssignor {
    /// A sticky assignor with no memory of a previous assignment.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Assignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    fn subscription_user_data(
        &self,
        _topics: &[String],
        owned: &[TopicPartition],
        generation_id: i32,
    ) -> Option<Bytes> {
        let memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match memory {
            Some((partitions, generation)) => Some(encode_sticky_user_data(&partitions, generation)),
            None if !owned.is_empty() => Some(encode_sticky_user_data(owned, generation_id)),
            None => None,
        }
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>> {
        check_members(self.name(), members)?;
        let result = sticky_assign(partitions_per_topic, members, sticky_claim);
        Ok(finish(members, result))
    }

    fn on_assignment(&self, assignment: &MemberAssignment, generation_id: i32) {
        *self.memory.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((assignment.partitions.clone(), generation_id));
    }
}

/// The cooperative sticky assignor (`cooperative-sticky`, KIP-429): the sticky
/// assignment, minus the partitions that must first be revoked by their owner.
///
/// Its user data is the member's generation (int32), as in Java, for groups whose
/// subscriptions are older than v2.
#[derive(Clone, Copy, Debug, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    fn subscription_user_data(
        &self,
        _topics: &[String],
        _owned: &[TopicPartition],
        generation_id: i32,
    ) -> Option<Bytes> {
        Some(encode_cooperative_user_data(generation_id))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>> {
        check_members(self.name(), members)?;
        let mut result = sticky_assign(partitions_per_topic, members, cooperative_claim);
        withhold_transfers(members, &mut result);
        Ok(finish(members, result))
    }
}

/// What a member says it owned, and in which generation.
struct Claim {
    partitions: Vec<TopicPartition>,
    generation: Option<i32>,
}

fn known_generation(generation: i32) -> Option<i32> {
    (generation >= 0).then_some(generation)
}

/// Eager sticky: `owned_partitions` first, else the sticky user data.
fn sticky_claim(m: &MemberSubscription) -> Claim {
    let from_user_data = m.user_data.as_ref().filter(|d| !d.is_empty()).and_then(decode_sticky_user_data);
    if !m.owned_partitions.is_empty() {
        let generation = known_generation(m.generation_id)
            .or_else(|| from_user_data.and_then(|(_, g)| g.and_then(known_generation)));
        Claim { partitions: m.owned_partitions.clone(), generation }
    } else if let Some((partitions, generation)) = from_user_data {
        Claim { partitions, generation: generation.and_then(known_generation) }
    } else {
        Claim { partitions: Vec::new(), generation: known_generation(m.generation_id) }
    }
}

/// Cooperative sticky: `owned_partitions`; the generation from the subscription
/// (v2+) or else from the user data.
fn cooperative_claim(m: &MemberSubscription) -> Claim {
    let generation = known_generation(m.generation_id)
        .or_else(|| m.user_data.as_ref().and_then(decode_cooperative_user_data).and_then(known_generation));
    Claim { partitions: m.owned_partitions.clone(), generation }
}

/// A topic taking part in the assignment.
struct Topic {
    name: Arc<str>,
    /// Global index of its partition 0.
    first: usize,
    count: usize,
    /// Subscribed members (indices into the sorted member list), ascending.
    members: Vec<usize>,
}

/// The sticky assignment (see the module documentation), keyed by member id.
fn sticky_assign(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[MemberSubscription],
    claim: fn(&MemberSubscription) -> Claim,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut order: Vec<&MemberSubscription> = members.iter().collect();
    order.sort_by(|a, b| member_cmp(a, b));

    // Topics (subscribed by someone and existing) and their global partition indices.
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, m) in order.iter().enumerate() {
        for t in distinct_topics(m) {
            if partition_count(partitions_per_topic, t).is_some() {
                by_name.entry(t).or_default().push(i);
            }
        }
    }
    let mut topics: Vec<Topic> = Vec::with_capacity(by_name.len());
    let mut topic_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = 0;
    for (name, subscribers) in by_name {
        let count = partition_count(partitions_per_topic, name).unwrap_or(0);
        topic_index.insert(name, topics.len());
        topics.push(Topic { name: Arc::from(name), first: total, count, members: subscribers });
        total += count;
    }
    let mut topic_of = Vec::with_capacity(total);
    for (t, topic) in topics.iter().enumerate() {
        topic_of.extend(std::iter::repeat_n(t, topic.count));
    }
    let global = |tp: &TopicPartition| -> Option<usize> {
        let topic = topics.get(*topic_index.get(&*tp.topic)?)?;
        let p = usize::try_from(tp.partition).ok().filter(|p| *p < topic.count)?;
        Some(topic.first + p)
    };
    let mut subscribed = vec![vec![false; topics.len()]; order.len()];
    for (t, topic) in topics.iter().enumerate() {
        for &m in &topic.members {
            if let Some(s) = subscribed.get_mut(m).and_then(|row| row.get_mut(t)) {
                *s = true;
            }
        }
    }
    let is_subscribed = |m: usize, g: usize| -> bool {
        topic_of.get(g).and_then(|t| subscribed.get(m).and_then(|row| row.get(*t))).copied().unwrap_or(false)
    };

    // 1. Previous ownership.
    let claims: Vec<Claim> = order.iter().map(|m| claim(m)).collect();
    let max_generation = claims.iter().map(|c| c.generation.unwrap_or(-1)).max().unwrap_or(-1);
    let mut owner: Vec<Option<usize>> = vec![None; total];
    let mut contested = vec![false; total];
    let mut older_owner: Vec<Option<(usize, i32)>> = vec![None; total];
    for (m, c) in claims.iter().enumerate() {
        let generation = c.generation.unwrap_or(-1);
        let mut seen = BTreeSet::new();
        for g in c.partitions.iter().filter_map(global) {
            if !seen.insert(g) {
                continue;
            }
            if generation == max_generation {
                match owner.get(g).copied().flatten() {
                    Some(_) => {
                        set(&mut owner, g, None);
                        set(&mut contested, g, true);
                    }
                    None if !contested.get(g).copied().unwrap_or(true) => set(&mut owner, g, Some(m)),
                    None => {}
                }
            } else if older_owner.get(g).copied().flatten().is_none_or(|(_, og)| generation > og) {
                set(&mut older_owner, g, Some((m, generation)));
            }
        }
    }
    for (g, o) in owner.iter_mut().enumerate() {
        if o.is_some_and(|m| !is_subscribed(m, g)) {
            *o = None;
        }
    }
    let member_topics: Vec<Vec<usize>> =
        subscribed.iter().map(|row| row.iter().enumerate().filter(|(_, s)| **s).map(|(t, _)| t).collect()).collect();
    let mut state = Balance::new(&topics, &member_topics, &owner);

    // 2. Unclaimed partitions, most constrained first, to the least loaded eligible
    // member (an owner of an older generation wins ties).
    let mut unclaimed: Vec<usize> = (0..total).filter(|g| owner.get(*g).copied().flatten().is_none()).collect();
    let subscribers = |g: usize| topic_of.get(g).and_then(|t| topics.get(*t)).map_or(0, |t| t.members.len());
    unclaimed.sort_by_key(|g| (subscribers(*g), *g));
    for g in unclaimed {
        let Some((least, first)) = topic_of.get(g).and_then(|t| state.loads.least(*t)) else { continue };
        let m = match older_owner.get(g).copied().flatten() {
            Some((o, _)) if state.loads.count(o) == least && is_subscribed(o, g) => o,
            _ => first,
        };
        state.give(g, m);
    }

    // 3. Balance.
    while let Some((g, src, dst)) = state.next_move() {
        state.take(g, src);
        state.give(g, dst);
    }
    let assigned = state.into_assignment();

    order
        .iter()
        .zip(assigned)
        .map(|(m, set)| {
            let partitions = set
                .into_iter()
                .filter_map(|g| {
                    let topic = topics.get(*topic_of.get(g)?)?;
                    Some(TopicPartition { topic: topic.name.clone(), partition: partition_id(g - topic.first) })
                })
                .collect();
            (m.member_id.clone(), partitions)
        })
        .collect()
}

/// The partitions of each member during balancing, split into those it owned
/// before (`kept`) and new ones (`fresh`), and their counts.
struct Balance<'a> {
    topics: &'a [Topic],
    member_topics: &'a [Vec<usize>],
    previous: &'a [Option<usize>],
    kept: Vec<BTreeSet<usize>>,
    fresh: Vec<BTreeSet<usize>>,
    loads: Loads,
}

impl<'a> Balance<'a> {
    /// Every member with the partitions it keeps from `previous` (owner per partition).
    fn new(topics: &'a [Topic], member_topics: &'a [Vec<usize>], previous: &'a [Option<usize>]) -> Self {
        let sizes: Vec<usize> = topics.iter().map(|t| t.count).collect();
        let mut state = Balance {
            topics,
            member_topics,
            previous,
            kept: vec![BTreeSet::new(); member_topics.len()],
            fresh: vec![BTreeSet::new(); member_topics.len()],
            loads: Loads::new(member_topics, &sizes),
        };
        for (g, owner) in previous.iter().enumerate() {
            if let Some(m) = owner {
                state.give(g, *m);
            }
        }
        state
    }

    fn give(&mut self, g: usize, m: usize) {
        let pool = if self.previous.get(g).copied().flatten() == Some(m) { &mut self.kept } else { &mut self.fresh };
        if let Some(set) = pool.get_mut(m) {
            set.insert(g);
            self.loads.change(m, true);
        }
    }

    fn take(&mut self, g: usize, m: usize) {
        let removed =
            self.fresh.get_mut(m).is_some_and(|s| s.remove(&g)) || self.kept.get_mut(m).is_some_and(|s| s.remove(&g));
        if removed {
            self.loads.change(m, false);
        }
    }

    /// `m`'s highest partition of topic `t` in `pool`.
    fn highest(pool: &[BTreeSet<usize>], m: usize, t: &Topic) -> Option<usize> {
        pool.get(m)?.range(t.first..t.first + t.count).next_back().copied()
    }

    /// The next move `(partition, from, to)`, until the assignment is balanced (no
    /// partition can go to an eligible member with two fewer): a new partition if
    /// one can move, else a previously owned one; from the most loaded member that
    /// has a movable one, its highest topic and partition first (so it keeps its
    /// lowest, as in Java); to the least loaded eligible member. Every move lowers
    /// the sum of squared counts, so balancing ends. With equal subscriptions, a
    /// member gives up a previously owned partition only when it holds no new one,
    /// and never gains one afterwards: it keeps `min(owned before, assigned now)`.
    fn next_move(&self) -> Option<(usize, usize, usize)> {
        self.move_from(&self.fresh).or_else(|| self.move_from(&self.kept))
    }

    fn move_from(&self, pool: &[BTreeSet<usize>]) -> Option<(usize, usize, usize)> {
        let floor = self.loads.floor()?;
        for src in self.loads.givers() {
            let have = self.loads.count(src);
            if have < floor + 2 {
                break;
            }
            for &t in self.member_topics.get(src)?.iter().rev() {
                let (Some(topic), Some((least, dst))) = (self.topics.get(t), self.loads.least(t)) else { continue };
                if least + 2 > have {
                    continue;
                }
                if let Some(g) = Self::highest(pool, src, topic) {
                    return Some((g, src, dst));
                }
            }
        }
        None
    }

    fn into_assignment(self) -> Vec<BTreeSet<usize>> {
        self.kept
            .into_iter()
            .zip(self.fresh)
            .map(|(mut k, f)| {
                k.extend(f);
                k
            })
            .collect()
    }
}

/// Partition counts per member, indexed for the two questions balancing asks: the
/// least loaded member eligible for a topic, and the members by descending load.
/// Members with the same topics form a class; each topic indexes the least loaded
/// member of every class subscribed to it.
struct Loads {
    count: Vec<usize>,
    class_of: Vec<usize>,
    /// (count, member) per class.
    classes: Vec<BTreeSet<(usize, usize)>>,
    class_topics: Vec<Vec<usize>>,
    /// Partitions a class's members could have: on equal loads, the member with
    /// fewer alternatives is preferred.
    reach: Vec<usize>,
    /// (count, reach, member) of the least loaded member of each class subscribed to a topic.
    by_topic: Vec<BTreeSet<(usize, usize, usize)>>,
    /// (count, member) of members subscribed to something; ties by ascending member.
    by_count: BTreeSet<(usize, Reverse<usize>)>,
}

impl Loads {
    fn new(member_topics: &[Vec<usize>], sizes: &[usize]) -> Self {
        let mut ids: BTreeMap<&[usize], usize> = BTreeMap::new();
        let class_of: Vec<usize> = member_topics
            .iter()
            .map(|t| {
                let next = ids.len();
                *ids.entry(t.as_slice()).or_insert(next)
            })
            .collect();
        let mut class_topics = vec![Vec::new(); ids.len()];
        for (list, c) in ids {
            if let Some(slot) = class_topics.get_mut(c) {
                *slot = list.to_vec();
            }
        }
        let reach: Vec<usize> =
            class_topics.iter().map(|ts| ts.iter().map(|t| sizes.get(*t).copied().unwrap_or(0)).sum()).collect();
        let mut classes = vec![BTreeSet::new(); class_topics.len()];
        let mut by_count = BTreeSet::new();
        for (m, c) in class_of.iter().enumerate() {
            if let Some(set) = classes.get_mut(*c) {
                set.insert((0, m));
            }
            if member_topics.get(m).is_some_and(|t| !t.is_empty()) {
                by_count.insert((0, Reverse(m)));
            }
        }
        let mut by_topic = vec![BTreeSet::new(); sizes.len()];
        for (c, ts) in class_topics.iter().enumerate() {
            let (Some(&(count, m)), Some(&r)) = (classes.get(c).and_then(BTreeSet::first), reach.get(c)) else {
                continue;
            };
            for t in ts {
                if let Some(set) = by_topic.get_mut(*t) {
                    set.insert((count, r, m));
                }
            }
        }
        Loads { count: vec![0; member_topics.len()], class_of, classes, class_topics, reach, by_topic, by_count }
    }

    fn count(&self, m: usize) -> usize {
        self.count.get(m).copied().unwrap_or(0)
    }

    /// One partition more (`up`) or less for member `m`.
    fn change(&mut self, m: usize, up: bool) {
        let Some(slot) = self.count.get_mut(m) else { return };
        let old = *slot;
        let new = if up { old + 1 } else { old.saturating_sub(1) };
        *slot = new;
        if self.by_count.remove(&(old, Reverse(m))) {
            self.by_count.insert((new, Reverse(m)));
        }
        let Some(&c) = self.class_of.get(m) else { return };
        let Some(set) = self.classes.get_mut(c) else { return };
        let old_head = set.first().copied();
        set.remove(&(old, m));
        set.insert((new, m));
        let new_head = set.first().copied();
        if old_head == new_head {
            return;
        }
        let reach = self.reach.get(c).copied().unwrap_or(0);
        for t in self.class_topics.get(c).into_iter().flatten() {
            if let Some(index) = self.by_topic.get_mut(*t) {
                if let Some((count, head)) = old_head {
                    index.remove(&(count, reach, head));
                }
                if let Some((count, head)) = new_head {
                    index.insert((count, reach, head));
                }
            }
        }
    }

    /// The least loaded member subscribed to topic `t`, with its count; on ties the
    /// one eligible for fewer partitions, then the lowest index.
    fn least(&self, t: usize) -> Option<(usize, usize)> {
        self.by_topic.get(t)?.first().map(|(count, _, m)| (*count, *m))
    }

    /// The lowest count of a member subscribed to something.
    fn floor(&self) -> Option<usize> {
        self.by_count.first().map(|(c, _)| *c)
    }

    /// Members subscribed to something, most loaded first (lowest index on ties).
    fn givers(&self) -> impl Iterator<Item = usize> + '_ {
        self.by_count.iter().rev().map(|(_, Reverse(m))| *m)
    }
}

fn set<T>(v: &mut [T], i: usize, value: T) {
    if let Some(slot) = v.get_mut(i) {
        *slot = value;
    }
}

/// Java's `CooperativeStickyAssignor.adjustAssignment`: removes every partition that
/// a member gets without owning it while another member gives it up (by its raw
/// `owned_partitions`).
fn withhold_transfers(members: &[MemberSubscription], result: &mut BTreeMap<String, Vec<TopicPartition>>) {
    let owned: BTreeMap<&str, BTreeSet<&TopicPartition>> =
        members.iter().map(|m| (m.member_id.as_str(), m.owned_partitions.iter().collect())).collect();
    let mut revoked: BTreeSet<TopicPartition> = BTreeSet::new();
    for m in members {
        let assigned: BTreeSet<&TopicPartition> =
            result.get(&m.member_id).map(|v| v.iter().collect()).unwrap_or_default();
        revoked.extend(m.owned_partitions.iter().filter(|tp| !assigned.contains(tp)).cloned());
    }
    for (member, partitions) in result.iter_mut() {
        let mine = owned.get(member.as_str());
        partitions.retain(|tp| mine.is_some_and(|o| o.contains(tp)) || !revoked.contains(tp));
    }
}
