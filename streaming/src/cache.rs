//! The per-executor consumer cache (Spark's KafkaDataConsumer) and exact-range
//! reads through cached, prefetching consumers.
//!
//! Keyed by (executor group.id, topic-partition); LRU with a capacity (64 by
//! default); can be disabled. A consumer in use by one task is never shared: a
//! second user gets a private, uncached consumer. A retried task invalidates the
//! cached consumer. Eviction removes idle consumers only. A cached consumer keeps
//! its prefetched records past the range it last read, so the next batch of the
//! same partition usually starts without a round trip.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::consumer::Consumer;
use ferrokafka_protocol::records::Record;
use tokio::time::Instant;

use crate::error::{Result, StreamingError};
use crate::offset_range::{OffsetRange, TopicPartition};

/// Cache settings (Spark's `spark.streaming.kafka.consumer.cache.*`).
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Whether consumers are cached at all.
    pub enabled: bool,
    /// Largest number of cached consumers per executor.
    pub max_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, max_capacity: 64 }
    }
}

/// The cache key: the executor consumers' group id and the partition.
pub type CacheKey = (String, TopicPartition);

/// One consumer assigned to one partition, with the records it fetched past the
/// last range it served.
pub struct CachedConsumer {
    consumer: Consumer,
    tp: TopicPartition,
    leftover: VecDeque<Record>,
    /// `until` of the last range served in full: the leftover records continue from
    /// there, possibly after a gap.
    served_until: Option<i64>,
}

impl std::fmt::Debug for CachedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedConsumer").field("tp", &self.tp).field("buffered", &self.leftover.len()).finish()
    }
}

/// How a range is read.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Accept offset gaps (compaction, transaction markers, aborted records).
    pub allow_non_consecutive: bool,
    /// Longest wait for the next record of a range (Spark: `spark.streaming.kafka.consumer.poll.ms`, 120 s).
    pub poll_timeout: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { allow_non_consecutive: false, poll_timeout: Duration::from_secs(120) }
    }
}

impl CachedConsumer {
    /// A consumer for `tp` on `cluster` (executor configuration).
    pub fn new(cluster: Cluster, tp: TopicPartition) -> Self {
        let consumer = Consumer::with_cluster(cluster);
        consumer.assign([tp.clone()]);
        CachedConsumer { consumer, tp, leftover: VecDeque::new(), served_until: None }
    }

    /// Number of records buffered beyond the last range read.
    pub fn buffered(&self) -> usize {
        self.leftover.len()
    }

    /// Reads exactly the records of `range` (never one outside it).
    pub async fn read(&mut self, range: &OffsetRange, opts: ReadOptions) -> Result<Vec<Record>> {
        let (from, until) = (range.from_offset, range.until_offset);
        let mut out = Vec::with_capacity(usize::try_from(range.count()).unwrap_or(0).min(1 << 16));
        if from >= until {
            return Ok(out);
        }
        // Buffered records are useful only if they continue where this range starts: at
        // `from` exactly, or — offset gaps allowed — after the range served last, when this
        // range starts where that one ended (a re-read of an earlier range must not start
        // from records past it).
        let after_last = self.served_until.take() == Some(from);
        while self.leftover.front().is_some_and(|r| r.offset < from) {
            self.leftover.pop_front();
        }
        let at_from = self.leftover.front().is_some_and(|r| r.offset == from);
        let continues = at_from || (after_last && opts.allow_non_consecutive);
        if !continues {
            self.leftover.clear();
        }
        if self.leftover.is_empty() && self.consumer.position(&self.tp) != Some(from) {
            self.consumer.seek(&self.tp, from)?;
        }
        let mut next = from;
        let mut deadline = Instant::now() + opts.poll_timeout;
        loop {
            while let Some(r) = self.leftover.front() {
                if r.offset >= until {
                    self.served_until = Some(until);
                    return Ok(out);
                }
                if r.offset != next && !opts.allow_non_consecutive {
                    return Err(StreamingError::NonConsecutive {
                        topic: self.tp.topic.to_string(),
                        partition: self.tp.partition,
                        expected: next,
                        got: r.offset,
                    });
                }
                next = r.offset + 1;
                if let Some(r) = self.leftover.pop_front() {
                    out.push(r);
                }
            }
            if next >= until {
                self.served_until = Some(until);
                return Ok(out);
            }
            // Everything below the consumer's position was delivered: if that is past the
            // range, the rest of it holds no records (markers, compaction) and it ends cleanly.
            if opts.allow_non_consecutive && self.consumer.position(&self.tp).is_some_and(|p| p >= until) {
                self.served_until = Some(until);
                return Ok(out);
            }
            if Instant::now() >= deadline {
                return Err(StreamingError::Client(ferrokafka_client::ClientError::RangeUnavailable {
                    topic: self.tp.topic.to_string(),
                    partition: self.tp.partition,
                    from,
                    until,
                    log_start: -1,
                    high_watermark: self.consumer.high_watermark(&self.tp),
                }));
            }
            let polled = self.consumer.poll(Duration::from_millis(200)).await?;
            for r in &polled {
                self.leftover.push_back(r?.record);
                deadline = Instant::now() + opts.poll_timeout;
            }
        }
    }
}

struct Entry {
    consumer: Option<CachedConsumer>,
    last_used: u64,
}

/// An executor's consumer cache.
pub struct ConsumerCache {
    cfg: CacheConfig,
    state: Mutex<CacheState>,
}

struct CacheState {
    entries: HashMap<CacheKey, Entry>,
    clock: u64,
}

impl std::fmt::Debug for ConsumerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerCache").field("cfg", &self.cfg).field("size", &self.size()).finish()
    }
}

/// A consumer taken from the cache for one task.
#[derive(Debug)]
pub struct Lease {
    key: CacheKey,
    consumer: Option<CachedConsumer>,
    cached: bool,
}

impl Lease {
    /// The consumer.
    pub fn consumer(&mut self) -> Option<&mut CachedConsumer> {
        self.consumer.as_mut()
    }

    /// Whether the consumer belongs to the cache (false: private, dropped after use).
    pub fn is_cached(&self) -> bool {
        self.cached
    }
}

impl ConsumerCache {
    /// An empty cache.
    pub fn new(cfg: CacheConfig) -> Arc<Self> {
        Arc::new(ConsumerCache { cfg, state: Mutex::new(CacheState { entries: HashMap::new(), clock: 0 }) })
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of entries (idle or in use).
    pub fn size(&self) -> usize {
        self.lock().entries.len()
    }

    /// Takes the consumer for `key`, creating it with `make` when needed. A retried
    /// task (`attempt > 0`) drops the cached consumer first; a consumer in use elsewhere
    /// is not shared: the caller gets a private one.
    pub fn acquire(&self, key: CacheKey, attempt: u32, make: impl FnOnce() -> CachedConsumer) -> Lease {
        if !self.cfg.enabled {
            return Lease { key, consumer: Some(make()), cached: false };
        }
        let mut st = self.lock();
        st.clock += 1;
        let clock = st.clock;
        if attempt > 0 {
            if let Some(e) = st.entries.get_mut(&key) {
                if e.consumer.is_some() {
                    st.entries.remove(&key);
                }
            }
        }
        match st.entries.get_mut(&key) {
            Some(e) => match e.consumer.take() {
                Some(c) => {
                    e.last_used = clock;
                    Lease { key, consumer: Some(c), cached: true }
                }
                // In use by another task.
                None => Lease { key, consumer: Some(make()), cached: false },
            },
            None => {
                st.entries.insert(key.clone(), Entry { consumer: None, last_used: clock });
                Self::evict(&mut st, self.cfg.max_capacity);
                drop(st);
                Lease { key, consumer: Some(make()), cached: true }
            }
        }
    }

    /// Returns a leased consumer. Private consumers are dropped.
    pub fn release(&self, mut lease: Lease) {
        if !lease.cached {
            return;
        }
        let mut st = self.lock();
        st.clock += 1;
        let clock = st.clock;
        if let Some(e) = st.entries.get_mut(&lease.key) {
            e.consumer = lease.consumer.take();
            e.last_used = clock;
        }
        Self::evict(&mut st, self.cfg.max_capacity);
    }

    /// Drops the least recently used idle consumers while over capacity.
    fn evict(st: &mut CacheState, capacity: usize) {
        while st.entries.len() > capacity {
            let victim = st
                .entries
                .iter()
                .filter(|(_, e)| e.consumer.is_some())
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    st.entries.remove(&k);
                }
                None => break, // everything is in use: never evict a busy consumer
            }
        }
    }
}
