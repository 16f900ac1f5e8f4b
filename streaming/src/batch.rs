//! A batch: partitions that each read exactly one offset range on an executor
//! (Spark's KafkaRDD), and batch reads of explicit ranges (Spark's `createRDD`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use ferrokafka_protocol::records::Record;
use tracing::Instrument;

use crate::cache::{CacheConfig, CachedConsumer, ConsumerCache, ReadOptions};
use crate::error::{Result, StreamingError};
use crate::location::{Executor, LocationStrategy};
use crate::offset_range::{describe, HasOffsetRanges, OffsetRange, TopicPartition};
use crate::params::KafkaParams;

/// Spark's default `spark.task.maxFailures`: attempts per partition read.
const MAX_TASK_ATTEMPTS: u32 = 4;

/// The executors a stream or batch read runs on, each with its consumer cache.
#[derive(Debug)]
pub struct ExecutorPool {
    executors: Vec<Executor>,
    caches: BTreeMap<Executor, Arc<ConsumerCache>>,
    cluster: ferrokafka_client::cluster::Cluster,
    group: String,
    read: ReadOptions,
}

impl ExecutorPool {
    /// `n` executors on this host (ids `0..n`, host `localhost`).
    pub fn local_executors(n: usize) -> Vec<Executor> {
        (0..n.max(1)).map(|i| Executor { id: i.to_string(), host: "localhost".into() }).collect()
    }

    /// Connects the executors' cluster handle with the executor kafkaParams.
    pub async fn new(
        params: &KafkaParams,
        executors: Vec<Executor>,
        cache: CacheConfig,
        read: ReadOptions,
    ) -> Result<Arc<ExecutorPool>> {
        if executors.is_empty() {
            return Err(StreamingError::Placement("at least one executor is needed".into()));
        }
        let exec = params.executor_params()?;
        exec.validate_for_executors()?;
        let group = exec.group_id()?.to_owned();
        let cluster = ferrokafka_client::cluster::Cluster::connect(exec.driver_config()?).await?;
        let caches = executors.iter().map(|e| (e.clone(), ConsumerCache::new(cache))).collect();
        Ok(Arc::new(ExecutorPool { executors, caches, cluster, group, read }))
    }

    /// The executors.
    pub fn executors(&self) -> &[Executor] {
        &self.executors
    }

    /// The cache of one executor.
    pub fn cache(&self, executor: &Executor) -> Option<&Arc<ConsumerCache>> {
        self.caches.get(executor)
    }

    /// Reads one range on `executor`, retrying retriable failures with a fresh
    /// consumer (a retried task invalidates the cached one).
    pub async fn read(&self, executor: &Executor, range: &OffsetRange) -> Result<Vec<Record>> {
        if range.count() == 0 {
            return Ok(Vec::new()); // an empty range opens nothing
        }
        let cache = self
            .caches
            .get(executor)
            .ok_or_else(|| StreamingError::Placement(format!("unknown executor {executor:?}")))?;
        let tp = range.topic_partition();
        let mut attempt = 0;
        loop {
            let cluster = self.cluster.clone();
            let key = (self.group.clone(), tp.clone());
            let tp2 = tp.clone();
            let mut lease = cache.acquire(key, attempt, move || CachedConsumer::new(cluster, tp2));
            let result = match lease.consumer() {
                Some(c) => c.read(range, self.read).await,
                None => Err(StreamingError::Placement("empty cache lease".into())),
            };
            match result {
                Ok(records) => {
                    cache.release(lease);
                    return Ok(records);
                }
                Err(e) if e.is_retriable() && attempt + 1 < MAX_TASK_ATTEMPTS => {
                    tracing::warn!(%range, attempt, error = %e, "partition read failed; retrying");
                    drop(lease);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// One partition of a batch, read: its range, where it ran, its records.
#[derive(Debug, Clone)]
pub struct BatchPartition {
    /// Index in the batch: `batch.offset_ranges()[index] == range`.
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
    ranges: Vec<OffsetRange>,
    placement: Vec<Executor>,
    pool: Arc<ExecutorPool>,
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
        let mut n = 0;
        for p in self.collect().await? {
            n += p.records.len() as i64;
        }
        Ok(n)
    }

    /// Whether the batch holds no record (without reading when offsets are consecutive).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.count().await? == 0)
    }

    /// The first `n` records, reading partition by partition only as much as needed.
    pub async fn take(&self, n: usize) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for (i, r) in self.ranges.iter().enumerate() {
            if out.len() >= n {
                break;
            }
            let want = (n - out.len()) as i64;
            let range = if self.allow_non_consecutive || r.count() <= want {
                r.clone()
            } else {
                OffsetRange { until_offset: r.from_offset + want, ..r.clone() }
            };
            let exec =
                self.placement.get(i).ok_or_else(|| StreamingError::Placement("batch without placement".into()))?;
            let mut records = self.pool.read(exec, &range).await?;
            records.truncate(n - out.len());
            out.extend(records);
        }
        Ok(out)
    }

    /// Reads every partition (concurrently, each on its executor).
    pub async fn collect(&self) -> Result<Vec<BatchPartition>> {
        self.foreach_partition(|p| async move { Ok(p) }).await
    }

    /// Runs `f` on every partition concurrently, each after its executor read its
    /// range; returns the results in partition order. The first error wins.
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
        for (index, range) in self.ranges.iter().enumerate() {
            let executor = self
                .placement
                .get(index)
                .cloned()
                .ok_or_else(|| StreamingError::Placement("batch without placement".into()))?;
            let span = tracing::info_span!(
                parent: &batch_span,
                "partition",
                topic = %range.topic,
                partition = range.partition,
                from = range.from_offset,
                until = range.until_offset,
                executor = %executor.id,
            );
            let (pool, range, f) = (self.pool.clone(), range.clone(), f.clone());
            tasks.push(tokio::spawn(
                async move {
                    let records = pool.read(&executor, &range).await?;
                    tracing::debug!(records = records.len(), "read");
                    f(BatchPartition { index, range, executor, records }).await
                }
                .instrument(span),
            ));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            let joined = t.instrument(batch_span.clone()).await;
            out.push(joined.map_err(|e| StreamingError::Placement(format!("partition task failed: {e}")))??);
        }
        Ok(out)
    }
}

/// Places ranges on executors with a location strategy.
pub(crate) fn place(
    location: &dyn LocationStrategy,
    ranges: &[OffsetRange],
    pool: &ExecutorPool,
    leaders: &HashMap<TopicPartition, String>,
) -> Result<Vec<Executor>> {
    let tps: Vec<TopicPartition> = ranges.iter().map(OffsetRange::topic_partition).collect();
    let placed = location.place(&tps, pool.executors(), leaders)?;
    tps.iter()
        .map(|tp| {
            placed
                .get(tp)
                .cloned()
                .ok_or_else(|| StreamingError::Placement(format!("{} placed no executor for {tp}", location.name())))
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
        return Err(StreamingError::Placement(format!(
            "{} cannot be used for batch reads of explicit ranges: there is no driver consumer to find leaders; use PreferConsistent or PreferFixed",
            location.name()
        )));
    }
    for r in &ranges {
        r.validate()?;
    }
    let placement = place(location, &ranges, &pool, &HashMap::new())?;
    Ok(Batch::new(0, ranges, placement, pool))
}
