//! The direct stream: a driver loop that computes each interval's offset ranges
//! and hands out batches whose partitions run on executors.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrokafka_client::admin::{list_offsets, OffsetSpec};
use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::AutoOffsetReset;
use tokio::time::Instant;

use crate::batch::{place, Batch, ExecutorPool};
use crate::cache::{CacheConfig, ReadOptions};
use crate::checkpoint::Checkpoint;
use crate::commit::CommitQueue;
use crate::error::{Result, StreamingError};
use crate::location::{Executor, LocationStrategy};
use crate::offset_range::{OffsetRange, TopicPartition};
use crate::rate::{max_messages_per_partition, PidRateEstimator, RateLimits};
use crate::strategy::ConsumerStrategy;

/// How a stream runs.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Time between batches.
    pub batch_interval: Duration,
    /// The executors (default: two on this host).
    pub executors: Vec<Executor>,
    /// The executors' consumer cache.
    pub cache: CacheConfig,
    /// Range reads: poll timeout, non-consecutive offsets.
    pub read: ReadOptions,
    /// Rate limits and backpressure.
    pub rate: RateLimits,
    /// Where checkpoints go (none: no checkpointing).
    pub checkpoint_dir: Option<PathBuf>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            batch_interval: Duration::from_secs(1),
            executors: ExecutorPool::local_executors(2),
            cache: CacheConfig::default(),
            read: ReadOptions::default(),
            rate: RateLimits::default(),
            checkpoint_dir: None,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How [`DirectStream::stop`] stops (Spark's `stop(stopSparkContext, stopGracefully)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Flush queued `commit_async` offsets and wait for the result, then leave the group.
    Graceful,
    /// Leave the group at once; queued commits are dropped.
    Immediate,
}

impl From<bool> for StopMode {
    /// `true` is graceful (Spark's `stopGracefully`).
    fn from(graceful: bool) -> Self {
        if graceful {
            StopMode::Graceful
        } else {
            StopMode::Immediate
        }
    }
}

/// A direct stream (Spark's `DirectKafkaInputDStream`).
pub struct DirectStream {
    strategy: Box<dyn ConsumerStrategy>,
    location: Box<dyn LocationStrategy>,
    pool: Arc<ExecutorPool>,
    driver: Cluster,
    cfg: StreamConfig,
    current: BTreeMap<TopicPartition, i64>,
    queue: CommitQueue,
    estimator: Option<PidRateEstimator>,
    pending: VecDeque<(i64, Vec<OffsetRange>)>,
    replay: VecDeque<(i64, Vec<OffsetRange>)>,
    next_tick: Instant,
    /// The batch handed out last and not completed yet: (time, when handed out, records).
    in_flight: Option<(i64, Instant, i64)>,
    counters: crate::stats::StreamCounters,
}

impl std::fmt::Debug for DirectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectStream").field("location", &self.location).field("current", &self.current).finish()
    }
}

impl DirectStream {
    /// Spark's `createDirectStream`: starts the strategy (joining the group for
    /// Subscribe/SubscribePattern and waiting for the assignment), the executors, and
    /// restores a checkpoint if `checkpoint_dir` holds one.
    ///
    /// Starting offsets are fixed here, as in Spark: for every partition the strategy
    /// has now, the checkpoint's position, else the explicit offset, else the committed
    /// (or stored) one, else `auto.offset.reset` resolved now. Records produced between
    /// `create` and the first batch are in the first batch.
    pub async fn create(
        strategy: impl ConsumerStrategy + 'static,
        location: impl LocationStrategy + 'static,
        cfg: StreamConfig,
    ) -> Result<DirectStream> {
        let mut strategy: Box<dyn ConsumerStrategy> = Box::new(strategy);
        let location: Box<dyn LocationStrategy> = Box::new(location);
        strategy.params().group_id()?;
        strategy.set_executors(&cfg.executors);
        strategy.start().await?;
        let pool = ExecutorPool::new(strategy.params(), cfg.executors.clone(), cfg.cache, cfg.read).await?;
        let driver = Cluster::connect(strategy.params().driver_config()?).await?;
        let (mut current, mut replay) = (BTreeMap::new(), VecDeque::new());
        if let Some(dir) = &cfg.checkpoint_dir {
            if let Some(cp) = Checkpoint::read(dir)? {
                tracing::info!(dir = %dir.display(), pending = cp.pending.len(), "restoring from checkpoint");
                current = cp.offsets;
                replay = cp.pending.into_iter().collect();
            }
        }
        // Spark fixes the starting offsets when the stream starts: every partition known
        // now gets its position here, so records produced before the first batch are read.
        let parts = strategy.partitions().await?;
        let fresh: Vec<TopicPartition> = parts.iter().filter(|tp| !current.contains_key(*tp)).cloned().collect();
        if !fresh.is_empty() {
            current.extend(starting_offsets(strategy.as_mut(), &driver, &fresh).await?);
        }
        let estimator = cfg.rate.backpressure.then(|| PidRateEstimator::with_defaults(cfg.batch_interval));
        let counters = crate::stats::StreamCounters::new(strategy.params().group_id()?);
        Ok(DirectStream {
            strategy,
            location,
            pool,
            driver,
            next_tick: Instant::now(),
            cfg,
            current,
            queue: CommitQueue::default(),
            estimator,
            pending: replay.clone(),
            replay,
            in_flight: None,
            counters,
        })
    }

    /// The stream as a `futures` `Stream` of batches (see [`crate::Batches`]).
    pub fn batches(&mut self) -> crate::Batches<'_> {
        crate::Batches::new(self)
    }

    /// A handle to queue commits from anywhere (Spark's `CanCommitOffsets`).
    pub fn commit_queue(&self) -> CommitQueue {
        self.queue.clone()
    }

    /// Queues the ranges of a completed output for commit to Kafka.
    pub fn commit_async(&self, ranges: &[OffsetRange]) {
        self.queue.commit_async(ranges);
    }

    /// Next offset of every tracked partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.current
    }

    /// Per-partition lag: latest offset minus the stream's position.
    pub async fn lag(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let tps: Vec<TopicPartition> = self.current.keys().cloned().collect();
        let latest =
            list_offsets(&self.driver, &tps, OffsetSpec::Latest, self.driver.config().isolation_level()).await?;
        Ok(self.current.iter().map(|(tp, o)| (tp.clone(), latest.get(tp).map_or(0, |l| (l - o).max(0)))).collect())
    }

    /// Waits for the next interval and returns its batch. Batches restored from a
    /// checkpoint (generated but never completed) come first, unchanged.
    ///
    /// Asking for the next batch completes the previous one (as Spark's scheduler
    /// does when a batch's jobs end): it leaves the checkpoint's pending list and its
    /// processing time (from when it was handed out until now) feeds backpressure. A
    /// batch whose processing failed is simply never followed by `next_batch`: it stays
    /// pending and is re-run after a restart. [`complete`](Self::complete) marks one
    /// done earlier, with a processing time you measured.
    pub async fn next_batch(&mut self) -> Result<Batch> {
        if let Some((time, handed_out, records)) = self.in_flight.take() {
            self.completed(time, records, handed_out.elapsed())?;
        }
        let batch = self.next_batch_inner().await?;
        self.in_flight = Some((batch.time_ms, Instant::now(), batch.record_count_hint()));
        self.counters.handed_out(batch.record_count_hint());
        Ok(batch)
    }

    /// The stream's statistics: batches, records per batch, planning and processing
    /// time, scheduling delay, the backpressure rate and the consumer caches' hits,
    /// misses and evictions (Spark's streaming UI figures; also on the metrics facade,
    /// see [`crate::stats`]).
    pub fn statistics(&self) -> crate::stats::StreamStatistics {
        self.counters.snapshot(self.pool.cache_statistics())
    }

    async fn next_batch_inner(&mut self) -> Result<Batch> {
        if let Some((time, ranges)) = self.replay.pop_front() {
            return self.build(time, ranges);
        }
        tokio::time::sleep_until(self.next_tick).await;
        self.next_tick = Instant::now() + self.cfg.batch_interval;
        let time = now_ms();
        // Queued commits go out before the strategy may take part in a rebalance, so a
        // partition that moves to another process is handed over at its committed offset.
        self.flush_commits().await;
        let planning = Instant::now();
        let ranges = {
            use tracing::Instrument;
            self.compute().instrument(tracing::info_span!("plan_batch", time)).await?
        };
        self.counters.planned(planning.elapsed());
        self.pending.push_back((time, ranges.clone()));
        self.write_checkpoint()?;
        self.build(time, ranges)
    }

    /// Marks a batch done: it leaves the checkpoint's pending list, and its timing
    /// feeds the backpressure estimator.
    /// Optional: `next_batch` completes the previous batch by itself; call this to
    /// complete one earlier or with your own processing time. Completing twice is a no-op.
    pub fn complete(&mut self, batch: &Batch, processing: Duration) -> Result<()> {
        match self.in_flight {
            Some((time, _, _)) if time == batch.time_ms => self.in_flight = None,
            _ if !self.pending.iter().any(|(t, _)| *t == batch.time_ms) => return Ok(()),
            _ => {}
        }
        self.completed(batch.time_ms, batch.record_count_hint(), processing)
    }

    /// Runs `f` on the next batch and completes it with the time `f` took (Spark's
    /// `foreachRDD`). A failure of `f` leaves the batch pending (re-run after a restart
    /// from a checkpoint) and is returned.
    pub async fn process<T, F, Fut>(&mut self, f: F) -> Result<T>
    where
        F: FnOnce(Batch) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let batch = self.next_batch().await?;
        let (time, records) = (batch.time_ms, batch.record_count_hint());
        let started = Instant::now();
        let out = f(batch).await?;
        if self.in_flight.is_some_and(|(t, _, _)| t == time) {
            self.in_flight = None;
            self.completed(time, records, started.elapsed())?;
        }
        Ok(out)
    }

    fn completed(&mut self, time: i64, records: i64, processing: Duration) -> Result<()> {
        if let Some(pos) = self.pending.iter().position(|(t, _)| *t == time) {
            self.pending.remove(pos);
        }
        let delay = (now_ms() - time - processing.as_millis() as i64).max(0);
        if let Some(est) = self.estimator.as_mut() {
            est.compute(now_ms(), records, processing.as_millis() as i64, delay);
        }
        let rate = self.estimator.as_ref().and_then(PidRateEstimator::latest_rate);
        self.counters.completed(processing, Duration::from_millis(delay.unsigned_abs()), rate);
        self.write_checkpoint()
    }

    fn build(&self, time: i64, ranges: Vec<OffsetRange>) -> Result<Batch> {
        let md = self.driver.metadata();
        let leaders: HashMap<TopicPartition, String> = ranges
            .iter()
            .filter_map(|r| md.leader(&r.topic_partition()).map(|b| (r.topic_partition(), b.host.clone())))
            .collect();
        let racks = crate::batch::replica_racks(&md, &ranges);
        let placement = place(self.location.as_ref(), &ranges, &self.pool, &leaders, &racks)?;
        let batch = Batch::new(time, ranges, placement, self.pool.clone());
        tracing::info!(time, records = batch.record_count_hint(), "batch\n{}", batch.description());
        Ok(batch)
    }

    fn write_checkpoint(&self) -> Result<()> {
        match &self.cfg.checkpoint_dir {
            Some(dir) => {
                Checkpoint { offsets: self.current.clone(), pending: self.pending.iter().cloned().collect() }.write(dir)
            }
            None => Ok(()),
        }
    }

    /// Spark's `compute`: latest offsets, rate caps, `until = min(current + cap, latest)`.
    async fn compute(&mut self) -> Result<Vec<OffsetRange>> {
        let parts = self.strategy.partitions().await?;
        let lost: Vec<String> = self.current.keys().filter(|tp| !parts.contains(tp)).map(|tp| tp.to_string()).collect();
        if !lost.is_empty() && self.strategy.shares_partitions() {
            tracing::info!(partitions = ?lost, "partitions moved to another process");
            self.current.retain(|tp, _| parts.contains(tp));
        } else if !lost.is_empty() {
            return Err(StreamingError::Revoked { partitions: lost });
        }
        let fresh: Vec<TopicPartition> = parts.iter().filter(|tp| !self.current.contains_key(*tp)).cloned().collect();
        if !fresh.is_empty() {
            let starts = starting_offsets(self.strategy.as_mut(), &self.driver, &fresh).await?;
            self.current.extend(starts);
        }
        self.driver.track_topics(parts.iter().map(|tp| &*tp.topic));
        let iso = self.driver.config().isolation_level();
        let latest = list_offsets(&self.driver, &parts, OffsetSpec::Latest, iso).await?;
        let lags: BTreeMap<TopicPartition, i64> = parts
            .iter()
            .map(|tp| {
                (tp.clone(), (latest.get(tp).copied().unwrap_or(0) - self.current.get(tp).copied().unwrap_or(0)).max(0))
            })
            .collect();
        let rate = self.estimator.as_ref().and_then(PidRateEstimator::latest_rate);
        let caps = max_messages_per_partition(&self.cfg.rate, rate, &lags, self.cfg.batch_interval);
        let mut ranges = Vec::with_capacity(parts.len());
        for tp in &parts {
            let from = self.current.get(tp).copied().unwrap_or(0);
            let end = latest.get(tp).copied().unwrap_or(from).max(from);
            let until = match caps.as_ref().and_then(|c| c.get(tp)) {
                Some(cap) => end.min(from.saturating_add(*cap)),
                None => end,
            };
            ranges.push(OffsetRange::new(tp.topic.clone(), tp.partition, from, until)?);
            self.current.insert(tp.clone(), until);
        }
        Ok(ranges)
    }

    /// Commits what `commit_async` queued (max `until` per partition) and runs the latest callback.
    async fn flush_commits(&mut self) {
        if let Some((offsets, callback)) = self.queue.drain() {
            let result = self.strategy.commit(&offsets).await;
            if let Err(e) = &result {
                tracing::warn!(error = %e, "commit of queued offsets failed");
            }
            if let Some(cb) = callback {
                cb(&offsets, result);
            }
        }
    }

    /// Stops the stream. Graceful: the commit queue is flushed and its result waited
    /// for (better than Spark, SPARK-20050), then the group is left. Hard: the group
    /// is left at once; queued commits are dropped.
    pub async fn stop(mut self, mode: impl Into<StopMode>) -> Result<()> {
        if mode.into() == StopMode::Graceful {
            self.flush_commits().await;
        }
        self.strategy.stop().await
    }
}

/// Precedence for partitions without a position: explicit > committed > `auto.offset.reset`.
async fn starting_offsets(
    strategy: &mut dyn ConsumerStrategy,
    driver: &Cluster,
    fresh: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut out = BTreeMap::new();
    let explicit = strategy.explicit_offsets().clone();
    let mut rest: Vec<TopicPartition> = Vec::new();
    for tp in fresh {
        match explicit.get(tp) {
            Some(o) => {
                out.insert(tp.clone(), *o);
            }
            None => rest.push(tp.clone()),
        }
    }
    if rest.is_empty() {
        return Ok(out);
    }
    let committed = strategy.committed(&rest).await?;
    let mut none: Vec<TopicPartition> = Vec::new();
    for tp in rest {
        match committed.get(&tp) {
            Some(o) => {
                out.insert(tp, *o);
            }
            None => none.push(tp),
        }
    }
    if none.is_empty() {
        return Ok(out);
    }
    let spec = match driver.config().auto_offset_reset() {
        AutoOffsetReset::Earliest => OffsetSpec::Earliest,
        AutoOffsetReset::Latest => OffsetSpec::Latest,
        AutoOffsetReset::None => {
            return Err(StreamingError::NoStartingOffset { partitions: none.iter().map(|tp| tp.to_string()).collect() })
        }
    };
    let found = list_offsets(driver, &none, spec, driver.config().isolation_level()).await?;
    out.extend(found);
    Ok(out)
}
