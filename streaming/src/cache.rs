//! The per-executor consumer cache (Spark's `KafkaDataConsumer` cache), and how
//! ranges are read.
//!
//! Spark caches one Kafka consumer per (group, partition) on each executor so that
//! the next batch of a partition continues where the last one stopped, without a
//! seek and a round trip. Here the fetching is shared by all the partitions an
//! executor reads in a batch (one Fetch per leader, see
//! [`ferrokafka_client::range`]); what is cached per (group, partition) is what a
//! consumer would have kept: the rest of the last fetched chunk past the range it
//! served. A cached entry never fetches while idle (nothing is prefetched between
//! batches), holds at most one chunk (`max.partition.fetch.bytes`), and its bytes
//! count against the pool's [`ReadOptions::memory_budget`]; when a read needs room,
//! cached entries are dropped first.
//!
//! Keyed by (executor group.id, topic-partition); LRU with a capacity (64 by
//! default); can be disabled. A task takes its entry out while it reads, so two
//! tasks never share one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrokafka_client::range::{RangeOptions, Remainder};

use crate::offset_range::TopicPartition;

/// Cache settings (Spark's `spark.streaming.kafka.consumer.cache.*`).
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Whether consumers are cached at all (`…cache.enabled`).
    pub enabled: bool,
    /// Largest number of cached consumers per executor (`…cache.maxCapacity`).
    pub max_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, max_capacity: 64 }
    }
}

/// How ranges are read.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Accept offset gaps (compaction, transaction markers, aborted records): Spark's
    /// `spark.streaming.kafka.allowNonConsecutiveOffsets`.
    pub allow_non_consecutive: bool,
    /// Longest wait without progress on a range (Spark's
    /// `spark.streaming.kafka.consumer.poll.ms`, 120 s).
    pub poll_timeout: Duration,
    /// Bytes the whole executor pool may hold for reading: chunks in flight, chunks
    /// being read by partition tasks, and cached leftovers (64 MiB by default). Each
    /// partition read holds at most two chunks of `max.partition.fetch.bytes`; a read
    /// waits for room rather than pass the budget. Records your code keeps (e.g.
    /// [`crate::Batch::collect`]) are yours and not counted.
    pub memory_budget: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { allow_non_consecutive: false, poll_timeout: Duration::from_secs(120), memory_budget: 64 << 20 }
    }
}

impl ReadOptions {
    /// The client's range options.
    pub(crate) fn range_options(&self) -> RangeOptions {
        RangeOptions {
            poll_timeout: self.poll_timeout,
            allow_non_consecutive: self.allow_non_consecutive,
            catch_up: self.poll_timeout.min(RangeOptions::default().catch_up),
        }
    }
}

/// The cache key: the executor consumers' group id and the partition.
pub type CacheKey = (String, TopicPartition);

struct Entry {
    rest: Remainder,
    last_used: u64,
}

/// An executor's consumer cache.
pub struct ConsumerCache {
    cfg: CacheConfig,
    state: Mutex<CacheState>,
    exported: [metrics::Counter; 3],
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<CacheKey, Entry>,
    clock: u64,
    counts: CacheStatistics,
}

/// What an executor's consumer cache did (Spark's `KafkaDataConsumer` cache, whose
/// hits and evictions Spark logs; here counted). Also on the metrics facade as
/// `ferrokafka_stream_cache_hits_total`, `…_misses_total` and `…_evictions_total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStatistics {
    /// Reads that went on from a cached consumer's position (buffered records reused,
    /// no fetch from the range's start).
    pub hits: u64,
    /// Reads that found nothing cached for their partition, or a leftover that does not
    /// continue at the range's start (with the cache on).
    pub misses: u64,
    /// Entries dropped for `max_capacity` (least recently used first).
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes they buffer now.
    pub buffered_bytes: u64,
}

impl std::ops::AddAssign for CacheStatistics {
    fn add_assign(&mut self, o: CacheStatistics) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.evictions += o.evictions;
        self.entries += o.entries;
        self.buffered_bytes += o.buffered_bytes;
    }
}

impl std::fmt::Debug for ConsumerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerCache").field("cfg", &self.cfg).field("size", &self.size()).finish()
    }
}

impl ConsumerCache {
    /// An empty cache.
    pub fn new(cfg: CacheConfig) -> Arc<Self> {
        let exported = [
            metrics::counter!("ferrokafka_stream_cache_hits_total"),
            metrics::counter!("ferrokafka_stream_cache_misses_total"),
            metrics::counter!("ferrokafka_stream_cache_evictions_total"),
        ];
        Arc::new(ConsumerCache { cfg, state: Mutex::new(CacheState::default()), exported })
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings.
    pub fn config(&self) -> CacheConfig {
        self.cfg
    }

    /// Number of cached entries.
    pub fn size(&self) -> usize {
        self.lock().entries.len()
    }

    /// Bytes the cached entries hold.
    pub fn buffered_bytes(&self) -> usize {
        self.lock().entries.values().map(|e| e.rest.bytes()).sum()
    }

    /// Takes the entry of `key` out for a task (none: nothing cached, or the cache is off).
    pub fn take(&self, key: &CacheKey) -> Option<Remainder> {
        self.lock().entries.remove(key).map(|e| e.rest)
    }

    /// Counts a read that continued from a cached leftover (`hit`) or did not (with
    /// the cache on): known only once the leftover was checked against the range.
    pub fn count(&self, hit: bool) {
        if self.cfg.enabled && self.cfg.max_capacity > 0 {
            let mut st = self.lock();
            let (count, handle) = match hit {
                true => (&mut st.counts.hits, &self.exported[0]),
                false => (&mut st.counts.misses, &self.exported[1]),
            };
            *count += 1;
            handle.increment(1);
        }
    }

    /// Hits, misses and evictions so far, and what is held now.
    pub fn statistics(&self) -> CacheStatistics {
        let st = self.lock();
        CacheStatistics {
            entries: st.entries.len() as u64,
            buffered_bytes: st.entries.values().map(|e| e.rest.bytes() as u64).sum(),
            ..st.counts
        }
    }

    /// Caches what a finished read left over, dropping the least recently used
    /// entries beyond the capacity.
    pub fn put(&self, key: CacheKey, rest: Remainder) {
        if !self.cfg.enabled || self.cfg.max_capacity == 0 {
            return;
        }
        let mut st = self.lock();
        st.clock += 1;
        let last_used = st.clock;
        st.entries.insert(key, Entry { rest, last_used });
        while st.entries.len() > self.cfg.max_capacity {
            let Some(victim) = st.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else {
                break;
            };
            st.entries.remove(&victim);
            st.counts.evictions += 1;
            self.exported[2].increment(1);
        }
    }

    /// Drops every entry (memory pressure, or a partition that failed).
    pub fn clear(&self) {
        let dropped = std::mem::take(&mut self.lock().entries);
        drop(dropped);
    }
}
