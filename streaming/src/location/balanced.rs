//! Balanced rendezvous placement: the algorithm behind every location strategy.
//!
//! Partition `p` ranks executors by `weight(p, e)` (descending, then executor order): its
//! rendezvous list. Pass 1 gives every executor `floor(n / m)` slots, pass 2 gives the
//! `n mod m` partitions left over one extra slot each (at most one per executor). Each pass
//! is the stable matching for a single strict order of (partition, executor) pairs — by the
//! executor's rank in the partition's list, then by weight, then by partition — computed by
//! partition-proposing deferred acceptance. With one common pair order the stable matching is
//! unique (it equals taking pairs greedily in that order), so the result does not depend on
//! processing order.
//!
//! Cost: `O(proposals × m)` time (each proposal scans the executors for the next choice
//! instead of storing `n × m` sorted lists), `O(n + m)` memory.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use super::Executor;
use crate::offset_range::TopicPartition;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Separates fields in hashed byte strings; never occurs in UTF-8.
const SEPARATOR: u8 = 0xff;

/// FNV-1a over `bytes`, continuing from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The 64-bit finaliser of MurmurHash3: a bijection with full avalanche.
pub(super) fn fmix64(mut z: u64) -> u64 {
    z ^= z >> 33;
    z = z.wrapping_mul(0xff51_afd7_ed55_8ccd);
    z ^= z >> 33;
    z = z.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// Stable hash of a partition (topic bytes, separator, partition big-endian).
pub(super) fn partition_key(tp: &TopicPartition) -> u64 {
    let h = fnv1a(FNV_OFFSET, tp.topic.as_bytes());
    fmix64(fnv1a(fnv1a(h, &[SEPARATOR]), &tp.partition.to_be_bytes()))
}

/// Stable hash of an executor (id bytes, separator, host bytes).
pub(super) fn executor_key(e: &Executor) -> u64 {
    let h = fnv1a(FNV_OFFSET, e.id.as_bytes());
    fmix64(fnv1a(fnv1a(h, &[SEPARATOR]), e.host.as_bytes()))
}

/// Rendezvous weight of a (partition, executor) pair.
pub(super) fn weight(partition_key: u64, executor_key: u64) -> u64 {
    fmix64(partition_key ^ executor_key.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15)
}

/// Places every partition (duplicates collapse) on one of `executors` (duplicates collapse),
/// balanced to within one partition per executor. Empty when `executors` is empty.
/// Executors in a rack of the partition's replicas (`racks`) rank first for it.
pub(super) fn place(
    partitions: &[&TopicPartition],
    executors: &[&Executor],
    racks: &HashMap<TopicPartition, Vec<String>>,
) -> BTreeMap<TopicPartition, Executor> {
    let mut parts = partitions.to_vec();
    parts.sort_unstable();
    parts.dedup();
    let mut execs = executors.to_vec();
    execs.sort_unstable();
    execs.dedup();
    if execs.is_empty() {
        return BTreeMap::new();
    }
    let matcher = Matcher {
        partition_keys: parts.iter().map(|tp| partition_key(tp)).collect(),
        executor_keys: execs.iter().map(|e| executor_key(e)).collect(),
        racks: Racks::of(&parts, &execs, racks),
    };
    assignment(&matcher).into_iter().map(|(p, e)| (parts[p].clone(), execs[e].clone())).collect()
}

/// Partition index → executor index, for partitions and executors given by their keys
/// (indices are positions in the key vectors, which are sorted and distinct).
pub(super) struct Matcher {
    pub(super) partition_keys: Vec<u64>,
    pub(super) executor_keys: Vec<u64>,
    pub(super) racks: Option<Racks>,
}

/// Which executors are near which partitions, in O(n + m) memory: the executors' racks
/// are numbered (the first 64 distinct ones, sorted; executors in others count as
/// rackless), and each partition keeps a bit mask of the numbered racks holding one of
/// its replicas.
pub(super) struct Racks {
    executor_rack: Vec<Option<u8>>,
    partition_racks: Vec<u64>,
}

impl Racks {
    /// `None` when no executor has a rack or no partition's racks are known: the
    /// placement is then exactly the rackless one.
    fn of(
        parts: &[&TopicPartition],
        execs: &[&Executor],
        racks: &HashMap<TopicPartition, Vec<String>>,
    ) -> Option<Racks> {
        let mut names: Vec<&str> = execs.iter().filter_map(|e| e.rack.as_deref()).collect();
        names.sort_unstable();
        names.dedup();
        names.truncate(64);
        if names.is_empty() || racks.is_empty() {
            return None;
        }
        let index = |r: &str| names.binary_search(&r).ok().map(|i| i as u8);
        let executor_rack = execs.iter().map(|e| e.rack.as_deref().and_then(index)).collect();
        let partition_racks = parts
            .iter()
            .map(|tp| racks.get(*tp).map_or(0, |rs| rs.iter().filter_map(|r| index(r)).fold(0u64, |m, i| m | 1 << i)))
            .collect();
        Some(Racks { executor_rack, partition_racks })
    }

    fn near(&self, p: usize, e: usize) -> bool {
        self.executor_rack[e].is_some_and(|i| self.partition_racks[p] & (1 << i) != 0)
    }
}

/// An executor's priority for a proposing partition: smaller is better.
type Priority = (usize, Reverse<u64>, usize);

/// The balanced assignment as (partition index, executor index) pairs, in partition order.
pub(super) fn assignment(m: &Matcher) -> Vec<(usize, usize)> {
    let n = m.partition_keys.len();
    let execs = m.executor_keys.len();
    if execs == 0 {
        return Vec::new();
    }
    let floor = n / execs;
    let all: Vec<usize> = (0..n).collect();
    let (mut placed, leftover) = m.stable_matching(&all, floor);
    let (extra, unplaced) = m.stable_matching(&leftover, 1);
    debug_assert!(unplaced.is_empty(), "n mod m < m leftovers always fit one per executor");
    placed.extend(extra);
    placed.sort_unstable();
    placed
}

impl Matcher {
    /// The pair's rank weight: the rendezvous weight, with the top bit saying "in a rack
    /// of the partition's replicas" when racks are known (so those executors rank first,
    /// each group still in hash order).
    fn weight(&self, p: usize, e: usize) -> u64 {
        let w = weight(self.partition_keys[p], self.executor_keys[e]);
        match &self.racks {
            None => w,
            Some(r) if r.near(p, e) => w | 1 << 63,
            Some(_) => w & !(1 << 63),
        }
    }

    /// Partition `p`'s next choice after `after` (its previous choice, as weight and
    /// executor): the best executor by (weight descending, index ascending) strictly worse
    /// than `after`.
    fn next_choice(&self, p: usize, after: Option<(u64, usize)>) -> Option<(u64, usize)> {
        let bound = after.map(|(w, e)| (Reverse(w), e));
        let mut best: Option<(Reverse<u64>, usize)> = None;
        for e in 0..self.executor_keys.len() {
            let key = (Reverse(self.weight(p, e)), e);
            if bound.is_some_and(|b| key <= b) {
                continue;
            }
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(Reverse(w), e)| (w, e))
    }

    /// Partition-proposing deferred acceptance of `partitions` with `capacity` slots per
    /// executor: (matched pairs, partitions rejected by every executor).
    fn stable_matching(&self, partitions: &[usize], capacity: usize) -> (Vec<(usize, usize)>, Vec<usize>) {
        if capacity == 0 {
            return (Vec::new(), partitions.to_vec());
        }
        let n = self.partition_keys.len();
        let mut proposals = vec![0usize; n];
        let mut last: Vec<Option<(u64, usize)>> = vec![None; n];
        // Max-heaps: the top is the executor's worst accepted partition.
        let mut accepted: Vec<BinaryHeap<Priority>> = vec![BinaryHeap::new(); self.executor_keys.len()];
        let mut free: Vec<usize> = partitions.iter().rev().copied().collect();
        let mut rejected = Vec::new();
        while let Some(p) = free.pop() {
            loop {
                let Some((w, e)) = self.next_choice(p, last[p]) else {
                    rejected.push(p);
                    break;
                };
                last[p] = Some((w, e));
                let candidate = (proposals[p], Reverse(w), p);
                proposals[p] += 1;
                let heap = &mut accepted[e];
                if heap.len() < capacity {
                    heap.push(candidate);
                    break;
                }
                if heap.peek().is_some_and(|worst| candidate < *worst) {
                    if let Some((_, _, bumped)) = heap.pop() {
                        free.push(bumped);
                    }
                    heap.push(candidate);
                    break;
                }
            }
        }
        let pairs =
            accepted.iter().enumerate().flat_map(|(e, heap)| heap.iter().map(move |&(_, _, p)| (p, e))).collect();
        rejected.sort_unstable();
        (pairs, rejected)
    }
}
