//! A consumer of explicitly assigned partitions (`assign` mode), with prefetching.
//!
//! A background fetcher task keeps one Fetch in flight per leader broker and
//! queues decoded batches, bounded by a memory budget, while the application
//! handles what [`Consumer::poll`] returned. Records are zero-copy views into the
//! fetched buffers.

pub(crate) mod decode;
mod fetcher;
mod records;
mod stream;
mod tasks;

use ferrokafka_protocol::records::OutputBuffers;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

pub use records::{ConsumerRecord, ConsumerRecordView, ConsumerRecords, RecordViews, RecordsIter};
pub use stream::{RecordStream, StreamRecord};

use fetcher::{Event, Fetched};

/// Per-partition state shared by the application side and the fetcher.
#[derive(Debug)]
pub(crate) struct PartState {
    /// Next offset the application will see; `None` until reset.
    pub(crate) position: Option<i64>,
    /// Next offset to fetch (ahead of `position` while data is queued).
    pub(crate) fetch_position: Option<i64>,
    /// Bumped by every seek: queued data of an older epoch is dropped.
    pub(crate) epoch: u64,
    pub(crate) paused: bool,
    pub(crate) in_flight: bool,
    pub(crate) high_watermark: i64,
    pub(crate) last_stable_offset: i64,
    pub(crate) log_start_offset: i64,
    /// Offsets handed to the application (statistics).
    pub(crate) consumed: u64,
    /// An error to hand to the application at the next poll.
    pub(crate) error: Option<ClientError>,
    /// Set with `error`: nothing is fetched until the next seek.
    pub(crate) stopped: bool,
    /// The replica the leader told us to read from (KIP-392) and until when
    /// (`metadata.max.age.ms`); any error there sends the partition back to its leader.
    pub(crate) read_replica: Option<(i32, tokio::time::Instant)>,
    /// The partition's `ferrokafka_consumer_lag` gauge (metrics facade), made on its
    /// first fetched data.
    lag_gauge: Option<metrics::Gauge>,
}

impl PartState {
    fn new(position: Option<i64>) -> Self {
        PartState {
            position,
            fetch_position: position,
            epoch: 0,
            paused: false,
            in_flight: false,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            consumed: 0,
            error: None,
            stopped: false,
            read_replica: None,
            lag_gauge: None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) parts: HashMap<TopicPartition, PartState>,
    pub(crate) closed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the fetcher after assign/seek/resume/poll.
    pub(crate) wake: Notify,
    /// Decompression output buffers, reused once the records in them are dropped.
    pub(crate) buffers: OutputBuffers,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A consumer of assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    cluster: Cluster,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Event>,
    budget: Arc<Semaphore>,
    task: JoinHandle<()>,
    /// `isolation.level=read_committed`: lag counts to the last stable offset.
    read_committed: bool,
    /// The application's statistics callback, served by `poll`.
    statistics_cb: Option<crate::stats::Scheduled>,
}

impl Consumer {
    /// Connects to the cluster described by `config`.
    pub async fn new(config: ClientConfig) -> Result<Consumer> {
        let cluster = Cluster::connect(config).await?;
        Ok(Self::with_cluster(cluster))
    }

    /// A consumer sharing an existing cluster handle.
    pub fn with_cluster(cluster: Cluster) -> Consumer {
        let shared = Arc::new(Shared::default());
        // Prefetched data may occupy up to twice `fetch.max.bytes` before the
        // fetcher waits for the application.
        let budget_bytes = cluster.config().fetch_max_bytes().saturating_mul(2).max(1 << 20);
        let budget = Arc::new(Semaphore::new(budget_bytes));
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(fetcher::run(cluster.clone(), shared.clone(), tx, budget.clone(), budget_bytes));
        let read_committed = cluster.config().isolation_level() == crate::config::IsolationLevel::ReadCommitted;
        Consumer { cluster, shared, rx, budget, task, read_committed, statistics_cb: None }
    }

    /// The cluster handle.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Replaces the assignment. Partitions kept from the previous assignment keep
    /// their positions; new ones start per `auto.offset.reset` unless sought.
    pub fn assign(&self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
        self.cluster.track_topics(partitions.iter().map(|tp| &*tp.topic));
        let mut st = self.shared.lock();
        let mut next = HashMap::new();
        for tp in partitions {
            let part = st.parts.remove(&tp).unwrap_or_else(|| PartState::new(None));
            next.insert(tp, part);
        }
        st.parts = next;
        drop(st);
        self.shared.wake.notify_one();
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut v: Vec<_> = self.shared.lock().parts.keys().cloned().collect();
        v.sort();
        v
    }

    /// Sets the next offset to consume for an assigned partition.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.with_part(tp, |p| {
            p.position = Some(offset);
            p.fetch_position = Some(offset);
            p.epoch += 1;
            p.error = None;
            p.stopped = false;
        })
    }

    /// Seeks to the log start (`Some(true)`) or end (`Some(false)`) on the next fetch.
    pub async fn seek_to(&self, tp: &TopicPartition, beginning: bool) -> Result<()> {
        let spec = if beginning { crate::admin::OffsetSpec::Earliest } else { crate::admin::OffsetSpec::Latest };
        let iso = self.cluster.config().isolation_level();
        let offsets = crate::admin::list_offsets(&self.cluster, std::slice::from_ref(tp), spec, iso).await?;
        let offset = offsets.get(tp).copied().ok_or_else(|| ClientError::UnknownTopicOrPartition {
            topic: tp.topic.to_string(),
            partition: Some(tp.partition),
        })?;
        self.seek(tp, offset)
    }

    /// The next offset the application will see, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.lock().parts.get(tp).and_then(|p| p.position)
    }

    /// The last known high watermark of a partition (-1 before the first fetch).
    pub fn high_watermark(&self, tp: &TopicPartition) -> i64 {
        self.shared.lock().parts.get(tp).map_or(-1, |p| p.high_watermark)
    }

    /// Lag of a partition once its position and end are known: to the high watermark,
    /// or with `read_committed` to the last stable offset (as the Java client counts).
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let committed = self.cluster.config().isolation_level() == crate::config::IsolationLevel::ReadCommitted;
        let st = self.shared.lock();
        let p = st.parts.get(tp)?;
        let end = if committed && p.last_stable_offset >= 0 { p.last_stable_offset } else { p.high_watermark };
        (end >= 0).then_some((end - p.position?).max(0))
    }

    /// The consumer's statistics: its brokers' (requests, bytes, round trips,
    /// connects) and each assigned partition's position, watermarks and lag, sorted.
    /// [`Statistics::to_json`](crate::stats::Statistics::to_json) writes them as
    /// librdkafka's statistics JSON.
    pub fn statistics(&self) -> crate::stats::Statistics {
        let mut partitions: Vec<crate::stats::PartitionStatistics> = {
            let st = self.shared.lock();
            st.parts
                .iter()
                .map(|(tp, p)| crate::stats::PartitionStatistics {
                    partition: tp.clone(),
                    position: p.position,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    lag: None,
                    committed: None,
                    consumed_offsets: p.consumed,
                    paused: p.paused,
                })
                .collect()
        };
        partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
        for p in &mut partitions {
            p.lag = self.lag(&p.partition);
        }
        crate::stats::Statistics {
            brokers: self.cluster.statistics(),
            errors: self.cluster.error_statistics(),
            partitions,
            ..Default::default()
        }
    }

    /// Calls `callback` with [`statistics`](Self::statistics) every
    /// `statistics.interval.ms`, from `poll`, as librdkafka serves its `stats_cb` from
    /// `rd_kafka_poll`. With the interval at 0 (the default) it is never called.
    pub fn set_statistics_callback(&mut self, callback: impl FnMut(&crate::stats::Statistics) + Send + 'static) {
        self.statistics_cb =
            crate::stats::Scheduled::new(self.cluster.config().statistics_interval(), Box::new(callback));
    }

    /// Stops fetching a partition; queued data for it is kept.
    pub fn pause(&self, tp: &TopicPartition) -> Result<()> {
        self.with_part(tp, |p| p.paused = true)
    }

    /// Resumes fetching a paused partition.
    pub fn resume(&self, tp: &TopicPartition) -> Result<()> {
        self.with_part(tp, |p| p.paused = false)
    }

    fn with_part(&self, tp: &TopicPartition, f: impl FnOnce(&mut PartState)) -> Result<()> {
        let mut st = self.shared.lock();
        let part = st.parts.get_mut(tp).ok_or_else(|| ClientError::NotAssigned { partition: tp.clone() })?;
        f(part);
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Waits up to `timeout` for records; returns what arrived (possibly nothing).
    ///
    /// An error of a partition (e.g. OffsetOutOfRange with `auto.offset.reset=none`)
    /// is returned once; the partition then stays stopped until the next seek.
    pub async fn poll(&mut self, timeout: Duration) -> Result<ConsumerRecords> {
        let mut out = ConsumerRecords::default();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if out.is_empty() {
                if let Some(e) = self.take_error() {
                    return Err(e);
                }
            }
            let event = if out.is_empty() {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(ev)) => ev,
                    Ok(None) => return Err(ClientError::Closed),
                    Err(_) => break,
                }
            } else {
                match self.rx.try_recv() {
                    Ok(ev) => ev,
                    Err(_) => break,
                }
            };
            if let Event::Data(f) = event {
                self.accept(f, &mut out);
            }
            if out.record_count_hint() >= self.cluster.config().max_poll_records() {
                break;
            }
        }
        if self.statistics_cb.as_ref().is_some_and(crate::stats::Scheduled::due) {
            let snapshot = self.statistics();
            if let Some(cb) = &mut self.statistics_cb {
                cb.serve(&snapshot);
            }
        }
        Ok(out)
    }

    /// The consumer as a [`futures_core::Stream`] of [`StreamRecord`]s (rdkafka's
    /// `StreamConsumer`): `poll` in a loop, record by record. Each record owns its
    /// partition (one `Arc` count); `poll` hands out borrowed ones at no cost.
    pub fn stream(&mut self) -> RecordStream<'_> {
        RecordStream::new(self)
    }

    fn accept(&self, f: Fetched, out: &mut ConsumerRecords) {
        self.budget.add_permits(f.permits);
        let mut st = self.shared.lock();
        let Some(part) = st.parts.get_mut(&f.tp) else { return };
        // Data from before a seek, or not contiguous with what was delivered, is dropped.
        if part.epoch != f.epoch || part.position != Some(f.fetch_offset) {
            return;
        }
        part.position = Some(f.next_offset);
        part.consumed += u64::try_from(f.next_offset - f.fetch_offset).unwrap_or(0);
        // The fetcher may already know newer watermarks than this queued data carries.
        part.high_watermark = part.high_watermark.max(f.high_watermark);
        part.last_stable_offset = part.last_stable_offset.max(f.last_stable_offset);
        let end = if self.read_committed && part.last_stable_offset >= 0 {
            part.last_stable_offset
        } else {
            part.high_watermark
        };
        if end >= 0 {
            let gauge = part.lag_gauge.get_or_insert_with(|| {
                let (topic, partition) = (f.tp.topic.to_string(), f.tp.partition.to_string());
                metrics::gauge!("ferrokafka_consumer_lag", "topic" => topic, "partition" => partition)
            });
            gauge.set((end - f.next_offset).max(0) as f64);
        }
        if !f.batches.is_empty() {
            out.push(f.tp, f.fetch_offset, f.batches);
        }
    }

    fn take_error(&self) -> Option<ClientError> {
        self.shared.lock().parts.values_mut().find_map(|p| p.error.take())
    }

    /// Stops the fetcher.
    pub async fn close(self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        self.task.abort();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
