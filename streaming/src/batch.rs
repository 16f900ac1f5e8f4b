//! A batch: partitions that each read exactly one offset range on an executor
//! (Spark's KafkaRDD), and batch reads of explicit ranges (Spark's `createRDD`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use ferrokafka_client::range::{resume_ranges, ExactRange, MemoryBudget, PartitionRecords, RemainderSink};
use ferrokafka_protocol::records::Record;
use tracing::Instrument;

use crate::cache::{CacheConfig, CacheKey, ConsumerCache, ReadOptions};
use crate::error::{Result, StreamingError};
use crate::location::{Executor, LocationStrategy};
use crate::offset_range::{describe, HasOffsetRanges, OffsetRange, TopicPartition};
use crate::params::{Deserializers, KafkaParams};

/// The executors a stream or batch read runs on, each with its consumer cache, and
/// the one memory budget they all read within ([`ReadOptions::memory_budget`]).
#[derive(Debug)]
pub struct ExecutorPool {
    executors: Vec<Executor>,
    caches: BTreeMap<Executor, Arc<ConsumerCache>>,
    cluster: ferrokafka_client::cluster::Cluster,
    /// One cluster handle per executor rack, with `client.rack` set to it (KIP-392):
    /// an executor in a rack reads from a replica there when the leader names one.
    rack_clusters: BTreeMap<String, ferrokafka_client::cluster::Cluster>,
    group: String,
    read: ReadOptions,
    budget: Arc<MemoryBudget>,
    pub(crate) deserializers: Deserializers,
}

/// A started partition read and where its leftover goes.
pub(crate) struct Started {
    pub(crate) records: PartitionRecords,
    pub(crate) keep: Keep,
}

/// Where a partition read's leftover is cached.
pub(crate) struct Keep {
    cache: Arc<ConsumerCache>,
    key: CacheKey,
    sink: RemainderSink,
}

impl Keep {
    /// Caches what the read left over (a read that stopped early leaves nothing).
    pub(crate) fn finish(self) {
        let rest = self.sink.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rest) = rest {
            self.cache.put(self.key, rest);
        }
    }
}

impl ExecutorPool {
    /// `n` executors on this host (ids `0..n`, host `localhost`).
    pub fn local_executors(n: usize) -> Vec<Executor> {
        (0..n.max(1)).map(|i| Executor::new(i.to_string(), "localhost")).collect()
    }

    /// Connects the executors' cluster handle with the executor kafkaParams.
    pub async fn new(
        params: &KafkaParams,
        executors: Vec<Executor>,
        cache: CacheConfig,
        read: ReadOptions,
    ) -> Result<Arc<ExecutorPool>> {
        if executors.is_empty() {
            return Err(StreamingError::NoExecutors { strategy: "ExecutorPool".into() });
        }
        let exec = params.executor_params()?;
        exec.validate_for_executors()?;
        let group = exec.group_id()?.to_owned();
        let cluster = ferrokafka_client::cluster::Cluster::connect(exec.driver_config()?).await?;
        let mut rack_clusters = BTreeMap::new();
        let racks: std::collections::BTreeSet<&String> = executors.iter().filter_map(|e| e.rack.as_ref()).collect();
        for rack in racks {
            let config = exec.with_rack(rack).driver_config()?;
            rack_clusters.insert(rack.clone(), ferrokafka_client::cluster::Cluster::connect(config).await?);
        }
        let caches: BTreeMap<Executor, Arc<ConsumerCache>> =
            executors.iter().map(|e| (e.clone(), ConsumerCache::new(cache))).collect();
        let budget = MemoryBudget::new(read.memory_budget);
        let weak: Vec<_> = caches.values().map(Arc::downgrade).collect();
        budget.on_pressure(move || weak.iter().filter_map(std::sync::Weak::upgrade).for_each(|c| c.clear()));
        let deserializers = params.deserializers()?;
        Ok(Arc::new(ExecutorPool { executors, caches, cluster, rack_clusters, group, read, budget, deserializers }))
    }

    /// The executors.
    pub fn executors(&self) -> &[Executor] {
        &self.executors
    }

    /// The cache of one executor.
    pub fn cache(&self, executor: &Executor) -> Option<&Arc<ConsumerCache>> {
        self.caches.get(executor)
    }

    /// The pool's memory budget (its `used()` and `peak()` are live figures).
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Bytes held by idle cached consumers, over all executors.
    pub fn cached_bytes(&self) -> usize {
        self.caches.values().map(|c| c.buffered_bytes()).sum()
    }

    /// The executors' consumer caches, summed.
    pub fn cache_statistics(&self) -> crate::cache::CacheStatistics {
        let mut sum = crate::cache::CacheStatistics::default();
        self.caches.values().for_each(|c| sum += c.statistics());
        sum
    }

    /// Starts reading `ranges` on `executor`: one fetch loop for all of them.
    fn start(&self, executor: &Executor, ranges: &[&OffsetRange]) -> Result<Vec<Started>> {
        let cache = self
            .caches
            .get(executor)
            .ok_or_else(|| StreamingError::UnknownExecutor { executor: format!("{executor:?}") })?;
        let mut specs = Vec::with_capacity(ranges.len());
        let mut keys = Vec::with_capacity(ranges.len());
        for r in ranges {
            let tp = r.topic_partition();
            let key: CacheKey = (self.group.clone(), tp.clone());
            let rest = cache.take(&key);
            specs.push((ExactRange::new(tp, r.from_offset, r.until_offset)?, rest));
            keys.push(key);
        }
        let cluster = executor.rack.as_ref().and_then(|r| self.rack_clusters.get(r)).unwrap_or(&self.cluster);
        let readers = resume_ranges(cluster, specs, self.read.range_options(), self.budget.clone());
        Ok(readers
            .into_iter()
            .zip(keys)
            .map(|(mut records, key)| {
                cache.count(records.resumed());
                let sink: RemainderSink = Arc::new(Mutex::new(None));
                records.keep_remainder_in(sink.clone());
                Started { records, keep: Keep { cache: cache.clone(), key, sink } }
            })
            .collect())
    }

    /// Reads one range on `executor` into memory (a convenience; batches read lazily).
    pub async fn read(&self, executor: &Executor, range: &OffsetRange) -> Result<Vec<Record>> {
        let mut started = self.start(executor, &[range])?;
        let Some(mut s) = started.pop() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        while let Some(r) = s.records.next().await {
            out.push(r?);
        }
        s.keep.finish();
        Ok(out)
    }
}

/// One partition of a batch: its range, where it runs, and its records, read lazily
/// (Spark's partition iterator).
///
/// ```no_run
/// # async fn f(mut p: ferrokafka_streaming::BatchPartition) -> ferrokafka_streaming::Result<()> {
/// while let Some(record) = p.records.next().await {
///     let record = record?;
///     println!("{} {:?}", record.offset, record.value_str());
/// }
/// # Ok(()) }
/// ```
///
/// Or, with nothing allocated or reference-counted per record, as views that live for
/// the call ([`PartitionRecords::for_each_view`]):
///
/// ```no_run
/// # async fn f(mut p: ferrokafka_streaming::BatchPartition) -> ferrokafka_streaming::Result<()> {
/// let mut bytes = 0;
/// p.records.for_each_view(|record| bytes += record.value().map_or(0, <[u8]>::len)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BatchPartition {
    /// Index in the batch: `batch.offset_ranges()[index] == range`.
    pub index: usize,
    /// The range read.
    pub range: OffsetRange,
    /// The executor that reads it.
    pub executor: Executor,
    /// The records, in offset order, all inside `range`, as they are fetched.
    pub records: PartitionRecords,
    /// kafkaParams' `key.deserializer`/`value.deserializer`: `p.deserializers.value(&record)?`.
    pub deserializers: Deserializers,
}

/// A partition read in full ([`Batch::collect`]).
#[derive(Debug, Clone)]
pub struct CollectedPartition {
    /// Index in the batch.
    pub index: usize,
    /// The range read.
    pub range: OffsetRange,
    /// The executor that read it.
    pub executor: Executor,
    /// The records, in offset order, all inside `range`.
    pub records: Vec<Record>,
}

/// A batch of partitions; partition `i` reads exactly `offset_ranges()[i]`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Batch time (ms since the epoch); 0 for batch reads.
    pub time_ms: i64,
    pub(crate) ranges: Vec<OffsetRange>,
    placement: Vec<Executor>,
    pub(crate) pool: Arc<ExecutorPool>,
    allow_non_consecutive: bool,
}

impl HasOffsetRanges for Batch {
    fn offset_ranges(&self) -> &[OffsetRange] {
        &self.ranges
    }
}

impl Batch {
    pub(crate) fn new(
        time_ms: i64,
        ranges: Vec<OffsetRange>,
        placement: Vec<Executor>,
        pool: Arc<ExecutorPool>,
    ) -> Batch {
        let allow_non_consecutive = pool.read.allow_non_consecutive;
        Batch { time_ms, ranges, placement, pool, allow_non_consecutive }
    }

    /// The executor partition `i` runs on.
    pub fn executor(&self, i: usize) -> Option<&Executor> {
        self.placement.get(i)
    }

    /// Spark's description: non-empty ranges, largest first.
    pub fn description(&self) -> String {
        describe(&self.ranges)
    }

    /// Records the ranges span (exact unless non-consecutive offsets are allowed).
    pub fn record_count_hint(&self) -> i64 {
        self.ranges.iter().map(OffsetRange::count).sum()
    }

    /// Number of records, without reading when offsets are consecutive (Spark's `count`).
    pub async fn count(&self) -> Result<i64> {
        if !self.allow_non_consecutive {
            return Ok(self.record_count_hint());
        }
        let counts = self.foreach_partition(|p| async move { Ok(p.records.count().await? as i64) }).await?;
        Ok(counts.into_iter().sum())
    }

    /// Whether the batch holds no record (without reading when offsets are consecutive).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.count().await? == 0)
    }

    /// The executor of range `i` (`range`).
    pub(crate) fn placed(&self, i: usize, range: &OffsetRange) -> Result<&Executor> {
        self.placement.get(i).ok_or_else(|| StreamingError::Unplaced {
            strategy: "the batch".into(),
            partition: range.topic_partition(),
        })
    }

    /// The first `n` records, reading partition by partition only as much as needed.
    pub async fn take(&self, n: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for (i, r) in self.ranges.iter().enumerate() {
            if out.len() >= n {
                break;
            }
            if r.count() == 0 {
                continue;
            }
            let mut started = self.pool.start(self.placed(i, r)?, &[r])?;
            let Some(mut s) = started.pop() else { continue };
            while out.len() < n {
                match s.records.next().await {
                    Some(rec) => out.push(rec?),
                    None => break,
                }
            }
            s.keep.finish();
        }
        Ok(out)
    }

    /// Reads every partition into memory (concurrently, each on its executor). Prefer
    /// [`foreach_partition`](Self::foreach_partition) for large batches: it runs in
    /// bounded memory.
    pub async fn collect(&self) -> Result<Vec<CollectedPartition>> {
        self.foreach_partition(|p| async move {
            let BatchPartition { index, range, executor, records, .. } = p;
            Ok(CollectedPartition { index, range, executor, records: records.collect().await? })
        })
        .await
    }

    /// Starts every partition's read: one fetch loop per executor for all its ranges.
    pub(crate) fn start_all(&self) -> Result<Vec<Started>> {
        let mut by_executor: BTreeMap<&Executor, Vec<usize>> = BTreeMap::new();
        for (i, r) in self.ranges.iter().enumerate() {
            by_executor.entry(self.placed(i, r)?).or_default().push(i);
        }
        let mut started: Vec<Option<Started>> = (0..self.ranges.len()).map(|_| None).collect();
        for (executor, indices) in by_executor {
            let ranges: Vec<&OffsetRange> = indices.iter().map(|&i| &self.ranges[i]).collect();
            for (i, s) in indices.into_iter().zip(self.pool.start(executor, &ranges)?) {
                started[i] = Some(s);
            }
        }
        started
            .into_iter()
            .zip(&self.ranges)
            .map(|(s, r)| {
                s.ok_or_else(|| StreamingError::Unplaced {
                    strategy: "the batch".into(),
                    partition: r.topic_partition(),
                })
            })
            .collect()
    }

    /// Runs `f` on every partition concurrently (one task each, spread over the
    /// runtime's threads); each partition's records arrive as its executor fetches
    /// them: one Fetch per leader for all the partitions an executor reads. Returns
    /// the results in partition order; the first error wins.
    pub async fn foreach_partition<F, Fut, T>(&self, f: F) -> Result<Vec<T>>
    where
        F: Fn(BatchPartition) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        // One span per batch, and one per partition inside it (on the partition's task),
        // so a subscriber sees where each batch's time goes.
        let batch_span = tracing::info_span!(
            "batch",
            time = self.time_ms,
            partitions = self.ranges.len(),
            records = self.record_count_hint()
        );
        let f = Arc::new(f);
        let mut tasks = Vec::with_capacity(self.ranges.len());
        for (index, (range, s)) in self.ranges.iter().zip(self.start_all()?).enumerate() {
            let executor = self.placed(index, range)?.clone();
            let span = tracing::info_span!(
                parent: &batch_span,
                "partition",
                topic = %range.topic,
                partition = range.partition,
                from = range.from_offset,
                until = range.until_offset,
                executor = %executor.id,
            );
            let (range, f, deserializers) = (range.clone(), f.clone(), self.pool.deserializers);
            tasks.push(tokio::spawn(
                async move {
                    let Started { records, keep } = s;
                    let out = f(BatchPartition { index, range, executor, records, deserializers }).await;
                    keep.finish();
                    out
                }
                .instrument(span),
            ));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (t, range) in tasks.into_iter().zip(&self.ranges) {
            let joined = t.instrument(batch_span.clone()).await;
            out.push(joined.map_err(|e| StreamingError::TaskFailed {
                partition: range.topic_partition(),
                reason: e.to_string(),
            })??);
        }
        Ok(out)
    }
}

/// Places ranges on executors with a location strategy.
/// The racks holding a replica of each range's partition, as `md` knows them (brokers
/// without a rack and unknown partitions are left out).
pub(crate) fn replica_racks(
    md: &ferrokafka_client::metadata::Metadata,
    ranges: &[OffsetRange],
) -> HashMap<TopicPartition, Vec<String>> {
    let mut out = HashMap::new();
    for r in ranges {
        let tp = r.topic_partition();
        let Some(p) = md.partition(&tp) else { continue };
        let mut racks: Vec<String> =
            p.replicas.iter().filter_map(|id| md.brokers.get(id).and_then(|b| b.rack.clone())).collect();
        racks.sort();
        racks.dedup();
        if !racks.is_empty() {
            out.insert(tp, racks);
        }
    }
    out
}

pub(crate) fn place(
    location: &dyn LocationStrategy,
    ranges: &[OffsetRange],
    pool: &ExecutorPool,
    leaders: &HashMap<TopicPartition, String>,
    racks: &HashMap<TopicPartition, Vec<String>>,
) -> Result<Vec<Executor>> {
    let tps: Vec<TopicPartition> = ranges.iter().map(OffsetRange::topic_partition).collect();
    let placed = location.place_near(&tps, pool.executors(), leaders, racks)?;
    tps.iter()
        .map(|tp| {
            placed
                .get(tp)
                .cloned()
                .ok_or_else(|| StreamingError::Unplaced { strategy: location.name().to_owned(), partition: tp.clone() })
        })
        .collect()
}

/// Spark's `createRDD`: a batch reading exactly `ranges`, placed by `location`
/// (PreferBrokers is refused: there is no driver consumer to know leaders).
pub fn create_batch(
    ranges: Vec<OffsetRange>,
    location: &dyn LocationStrategy,
    pool: Arc<ExecutorPool>,
) -> Result<Batch> {
    if !location.allowed_for_batch_reads() {
        return Err(StreamingError::NotForBatchReads { strategy: location.name().to_owned() });
    }
    for r in &ranges {
        r.validate()?;
    }
    let racks = replica_racks(&pool.cluster.metadata(), &ranges);
    let placement = place(location, &ranges, &pool, &HashMap::new(), &racks)?;
    Ok(Batch::new(0, ranges, placement, pool))
}
