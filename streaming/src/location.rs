//! Executors and location strategies: which executor runs each partition of a batch.
//!
//! Spark's `LocationStrategies` only give preferred locations: `PreferConsistent` takes Java's
//! `TopicPartition.hashCode` modulo the number of executors (sorted descending by host, then
//! id), so adding or losing one executor remaps nearly every partition and the cached,
//! prefetching consumers go cold. Here every strategy places partitions with a *balanced
//! rendezvous* assignment (see [`PreferConsistent`]):
//!
//! - **balanced**: per-executor partition counts differ by at most one (the host-preferring
//!   strategies balance each host's partitions over that host's executors);
//! - **stable**: a partition's place depends on hashes of the partition and the executors,
//!   not on positions in a list, so removing an executor moves its own partitions and adding
//!   one moves about `n / (m + 1)` partitions to it, plus a rebalancing term between executors
//!   that stay (O(√n): about 0.5·√n on average, at most about 1.6·√n in the tests, i.e. a few
//!   percent of the partitions, where Spark's scheme remapped 87% of them);
//! - **deterministic**: the result depends only on the *sets* of partitions and executors
//!   (input order and duplicates do not matter), on every platform and in every process, so the
//!   scale-out mode's group leader and a single driver agree.
//!
//! The hash (FNV-1a over the bytes, then a 64-bit finaliser) is part of the placement
//! contract: changing it would remap every partition once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::error::{Result, StreamingError};
use crate::offset_range::TopicPartition;

mod balanced;
#[cfg(test)]
mod rack_tests;
#[cfg(test)]
mod tests;

/// An executor: where a batch's partitions run (id + host, like Spark's
/// `ExecutorCacheTaskLocation`), and optionally the rack (zone) it runs in. Two executors
/// with the same id on different hosts are different executors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Executor {
    /// Executor id, unique within the application.
    pub id: String,
    /// Host the executor runs on.
    pub host: String,
    /// The rack (availability zone) it runs in, as brokers name theirs (`broker.rack`).
    /// An executor with a rack reads with `client.rack` set to it (KIP-392: from a
    /// replica in its rack), and the strategies prefer it for partitions with a replica
    /// there (see [`PreferConsistent`]).
    pub rack: Option<String>,
}

impl Executor {
    /// An executor with this id on this host (no rack).
    pub fn new(id: impl Into<String>, host: impl Into<String>) -> Executor {
        Executor { id: id.into(), host: host.into(), rack: None }
    }

    /// The same executor, in `rack`.
    pub fn with_rack(mut self, rack: impl Into<String>) -> Executor {
        self.rack = Some(rack.into());
        self
    }
}

impl fmt::Display for Executor {
    /// Spark's task-location form: `executor_<host>_<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "executor_{}_{}", self.host, self.id)
    }
}

/// Where each partition of a batch runs.
pub trait LocationStrategy: Send + Sync + fmt::Debug {
    /// Chooses an executor for every partition. `leaders`: partition → leader host (missing
    /// when unknown).
    ///
    /// Every partition of `partitions` (duplicates collapse) is in the result. Fails with
    /// [`StreamingError::NoExecutors`] when `executors` is empty.
    fn place(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
    ) -> Result<BTreeMap<TopicPartition, Executor>>;

    /// [`place`](Self::place), also told the racks holding a replica of each partition
    /// (`racks`: partition → racks, missing when unknown). Strategies that can use it
    /// prefer executors in those racks; the default ignores it.
    fn place_near(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
        racks: &HashMap<TopicPartition, Vec<String>>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        let _ = racks;
        self.place(partitions, executors, leaders)
    }

    /// Whether the strategy may be used for batch reads of explicit ranges (PreferBrokers may
    /// not: there is no driver consumer). Default true.
    fn allowed_for_batch_reads(&self) -> bool {
        true
    }

    /// Name for error messages.
    fn name(&self) -> &str;
}

impl<L: LocationStrategy + ?Sized> LocationStrategy for Box<L> {
    fn place(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        (**self).place(partitions, executors, leaders)
    }
    fn place_near(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
        racks: &HashMap<TopicPartition, Vec<String>>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        (**self).place_near(partitions, executors, leaders, racks)
    }
    fn allowed_for_batch_reads(&self) -> bool {
        (**self).allowed_for_batch_reads()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}

/// Spreads partitions evenly over all executors (Spark's `PreferConsistent`, made balanced
/// and stable).
///
/// Each partition ranks the executors by a hash of (partition, executor) — rendezvous, or
/// highest-random-weight, hashing. Capacities are `floor(n / m)` per executor; the `n mod m`
/// partitions left over then take one extra slot each at the executors they rank highest.
/// Within each pass the assignment is the unique stable matching in which a partition prefers
/// executors it ranks higher and an executor prefers partitions that rank it higher (then by
/// hash weight), so no partition is kept from a better-ranked executor except by partitions
/// that rank that executor at least as high.
///
/// **Racks.** When executors carry a rack ([`Executor::with_rack`]) and the stream knows
/// which racks hold each partition's replicas, a partition ranks the executors in those
/// racks above all others (by the same hash within each group). The balance is kept:
/// capacities do not change, so a partition leaves its racks only when their executors
/// are full. With fetching from followers (each executor reads with `client.rack` set to
/// its rack), reads then stay inside a zone wherever the balance allows — the cross-zone
/// traffic cloud providers bill. Without racks the placement is exactly the one above.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreferConsistent;

impl LocationStrategy for PreferConsistent {
    fn place(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        self.place_near(partitions, executors, leaders, &HashMap::new())
    }

    fn place_near(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        _leaders: &HashMap<TopicPartition, String>,
        racks: &HashMap<TopicPartition, Vec<String>>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        require_executors(self.name(), executors)?;
        Ok(place_by_host(partitions, executors, |_| None, racks))
    }

    fn name(&self) -> &str {
        "PreferConsistent"
    }
}

/// Runs each partition on an executor on its leader's host (Spark's `PreferBrokers`, for
/// executors co-located with brokers).
///
/// Partitions led from one host are spread over that host's executors with the balanced,
/// stable placement of [`PreferConsistent`] (balanced among those executors). Partitions
/// whose leader is unknown, or on a host without executors, are placed like
/// [`PreferConsistent`] over all executors (balanced among themselves), preferring
/// executors in a rack that holds a replica as [`PreferConsistent`] does. Hosts compare
/// ASCII-case-insensitively. Not allowed for batch reads of explicit ranges, which have no
/// driver consumer to look leaders up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreferBrokers;

impl LocationStrategy for PreferBrokers {
    fn place(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        self.place_near(partitions, executors, leaders, &HashMap::new())
    }

    fn place_near(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        leaders: &HashMap<TopicPartition, String>,
        racks: &HashMap<TopicPartition, Vec<String>>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        require_executors(self.name(), executors)?;
        Ok(place_by_host(partitions, executors, |tp| leaders.get(tp).map(String::as_str), racks))
    }

    fn allowed_for_batch_reads(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        "PreferBrokers"
    }
}

/// An explicit partition → host map (Spark's `PreferFixed`), e.g. to isolate skewed
/// partitions.
///
/// Mapped partitions run on an executor of the mapped host (spread over that host's
/// executors with the balanced, stable placement of [`PreferConsistent`]). Unmapped
/// partitions, and mapped ones whose host has no executor, are placed like
/// [`PreferConsistent`] over all executors. Hosts compare ASCII-case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreferFixed {
    map: HashMap<TopicPartition, String>,
}

impl PreferFixed {
    /// A strategy with this partition → host map.
    pub fn new(map: HashMap<TopicPartition, String>) -> PreferFixed {
        PreferFixed { map }
    }

    /// The partition → host map.
    pub fn map(&self) -> &HashMap<TopicPartition, String> {
        &self.map
    }
}

impl LocationStrategy for PreferFixed {
    fn place(
        &self,
        partitions: &[TopicPartition],
        executors: &[Executor],
        _leaders: &HashMap<TopicPartition, String>,
    ) -> Result<BTreeMap<TopicPartition, Executor>> {
        require_executors(self.name(), executors)?;
        Ok(place_by_host(partitions, executors, |tp| self.map.get(tp).map(String::as_str), &HashMap::new()))
    }

    fn name(&self) -> &str {
        "PreferFixed"
    }
}

fn require_executors(name: &str, executors: &[Executor]) -> Result<()> {
    if executors.is_empty() {
        return Err(StreamingError::NoExecutors { strategy: name.to_owned() });
    }
    Ok(())
}

/// Places each partition whose preferred host (`preferred`) has executors on those
/// executors, everything else over all executors; each group with the balanced placement,
/// ranking executors in a rack of the partition's replicas (`racks`) first.
pub(crate) fn place_by_host<'a>(
    partitions: &[TopicPartition],
    executors: &[Executor],
    preferred: impl Fn(&TopicPartition) -> Option<&'a str>,
    racks: &HashMap<TopicPartition, Vec<String>>,
) -> BTreeMap<TopicPartition, Executor> {
    let mut by_host: BTreeMap<String, Vec<&Executor>> = BTreeMap::new();
    for e in executors {
        by_host.entry(e.host.to_ascii_lowercase()).or_default().push(e);
    }
    let mut on_host: BTreeMap<&str, Vec<&TopicPartition>> = BTreeMap::new();
    let mut anywhere = Vec::new();
    for tp in partitions {
        match preferred(tp).map(str::to_ascii_lowercase).and_then(|h| by_host.get_key_value(&h)) {
            Some((host, _)) => on_host.entry(host.as_str()).or_default().push(tp),
            None => anywhere.push(tp),
        }
    }
    let all: Vec<&Executor> = executors.iter().collect();
    let mut placed = balanced::place(&anywhere, &all, racks);
    for (host, tps) in on_host {
        if let Some(execs) = by_host.get(host) {
            placed.extend(balanced::place(&tps, execs, racks));
        }
    }
    placed
}
