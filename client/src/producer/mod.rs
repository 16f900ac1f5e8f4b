//! The producer: per-partition batching (`linger.ms`, `batch.size`), compression,
//! `acks`, retries with backoff, ordering kept per partition, a memory bound
//! (`buffer.memory`: `send` waits up to `max.block.ms` for room), and `flush`/`close`
//! that deliver or report every record.
//!
//! Ordering: without idempotence one batch per partition is in flight, so a retry
//! cannot overtake a later batch. With `enable.idempotence=true` the producer gets a
//! producer id from the cluster and numbers each partition's records; up to
//! `max.in.flight.requests.per.connection` (at most 5) batches per partition are in
//! flight, a failed batch and everything sent after it are resent in order with the
//! same sequence numbers, and the broker drops what it already stored. A batch that
//! fails for good fails its records; the producer then bumps its epoch (KIP-360) and
//! goes on with fresh sequences. With `transactional.id`, see [`Producer::init_transactions`].

mod delivery;
mod idempotence;
mod lanes;
mod partitioner;
mod queue;
mod record;
mod sender;
mod transactions;
mod txn;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferrokafka_protocol::records::{NewHeader, NewRecord, OutputBuffers, RecordBatchBuilder, MAX_POOLED};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

use delivery::BatchDelivery;
pub use delivery::DeliveryFuture;
pub use partitioner::{murmur2, partition_for_key};
pub(crate) use queue::{Accumulator, OpenBatch, PartQueue, SealedBatch};
pub use record::{ProducerRecord, ProducerRecordRef, RecordMetadata};

pub(crate) struct Shared {
    acc: Mutex<Accumulator>,
    /// Batches sent, retried, settled (statistics).
    pub(crate) counters: crate::stats::ProducerCounters,
    /// The task serving the statistics callback (aborted on replace, close and drop).
    statistics_task: Mutex<Option<JoinHandle<()>>>,
    /// Wakes the sender (new data, flush, close).
    pub(crate) wake: Notify,
    /// Wakes flushers when `pending` drops.
    pub(crate) drained: Notify,
    /// Wakes blocked `send` calls when `buffered` drops.
    pub(crate) space: Notify,
    /// Batch buffers, reused once their batch is acknowledged and dropped.
    pub(crate) buffers: OutputBuffers,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Accumulator> {
        self.acc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A Kafka producer.
pub struct Producer {
    cluster: Cluster,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("cluster", &self.cluster).finish()
    }
}

impl Producer {
    /// Connects to the cluster described by `config`.
    pub async fn new(config: ClientConfig) -> Result<Producer> {
        Self::with_cluster(Cluster::connect(config).await?)
    }

    /// A producer sharing an existing cluster handle. With `enable.idempotence=true` the
    /// sender first asks the cluster for a producer id (InitProducerId); if it cannot
    /// get one, every record fails with [`ClientError::ProducerFatal`]. With
    /// `transactional.id`, call [`Producer::init_transactions`] first, and send records
    /// inside [`Producer::begin_transaction`] … [`Producer::commit_transaction`].
    pub fn with_cluster(cluster: Cluster) -> Result<Producer> {
        let shared = Arc::new(Shared {
            acc: Mutex::default(),
            counters: crate::stats::ProducerCounters::new(cluster.config().client_id()),
            statistics_task: Mutex::default(),
            wake: Notify::new(),
            drained: Notify::new(),
            space: Notify::new(),
            buffers: OutputBuffers::new(),
        });
        {
            let mut acc = shared.lock();
            acc.idempotent = cluster.config().enable_idempotence();
            acc.txn = cluster.config().transactional_id().map(txn::Txn::new);
        }
        let task = tokio::spawn(sender::run(cluster.clone(), shared.clone()));
        Ok(Producer { cluster, shared, task: Some(task) })
    }

    /// Queues a record; the future resolves once the broker acknowledged it.
    ///
    /// When the records not yet acknowledged hold `buffer.memory` bytes, this waits for
    /// room (lingering batches are sent at once meanwhile) and fails with
    /// [`ClientError::BufferFull`] after `max.block.ms`. A record larger than
    /// `buffer.memory` fails at once with [`ClientError::RecordTooLarge`].
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.send_ref(record.as_ref()).await
    }

    /// [`send`](Self::send) for a borrowed record: nothing is allocated per record
    /// (key, value and headers are copied into the batch being built).
    pub async fn send_ref(&self, record: ProducerRecordRef<'_>) -> Result<DeliveryFuture> {
        let cfg = self.cluster.config();
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let headers: Vec<NewHeader<'_>> =
            record.headers.iter().map(|(k, v)| NewHeader { key: k, value: v.as_deref() }).collect();
        let new = NewRecord { key: record.key, value: record.value, headers: &headers, timestamp };
        let size_hint = 32
            + record.key.map_or(0, <[u8]>::len)
            + record.value.map_or(0, <[u8]>::len)
            + record.headers.iter().map(|(k, v)| 8 + k.len() + v.as_ref().map_or(0, Bytes::len)).sum::<usize>();
        // The topic's partition count: from the last send's, while the metadata is
        // unchanged (no lookup, no hashing), else from the metadata.
        let generation = self.cluster.metadata_generation();
        let recent = match &self.shared.lock().recent {
            Some((t, n, g)) if *g == generation && &**t == record.topic => Some((t.clone(), *n)),
            _ => None,
        };
        let (topic, partitions) = match recent {
            Some(r) => r,
            None => {
                let n = self.partition_count(record.topic).await?;
                let mut acc = self.shared.lock();
                let topic = match acc.topics.get(record.topic) {
                    Some(t) => t.clone(),
                    None => {
                        let t: Arc<str> = Arc::from(record.topic);
                        acc.topics.insert(t.clone());
                        t
                    }
                };
                acc.recent = Some((topic.clone(), n, generation));
                (topic, n)
            }
        };
        let mut acc = self.room_for(size_hint, record.topic).await?;
        if let Some(t) = &acc.txn {
            if t.phase != txn::Phase::InTransaction {
                return Err(match (&t.error, t.phase) {
                    (Some(cause), txn::Phase::Abortable) => {
                        ClientError::TransactionAbortable { cause: Box::new(cause.clone()) }
                    }
                    _ => ClientError::TransactionState { operation: "send", state: t.phase.describe() },
                });
            }
        }
        let partition = match (record.partition, record.key) {
            (Some(p), _) if p >= 0 && (p as usize) < partitions => p,
            (Some(p), _) => {
                return Err(ClientError::UnknownTopicOrPartition {
                    topic: record.topic.to_owned(),
                    partition: Some(p),
                });
            }
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => match acc.sticky.get(record.topic) {
                Some(p) => *p,
                None => {
                    let p = fastrand::usize(..partitions) as i32;
                    acc.sticky.insert(record.topic.to_owned(), p);
                    p
                }
            },
        };
        let tp = TopicPartition { topic, partition };
        let (mut failed, mut released) = (0, 0);
        let mut sealed = false;
        let created;
        let delivery = {
            let queue = acc.parts.entry(tp).or_default();
            created = queue.open.is_none();
            let full = queue.open.as_ref().is_some_and(|b| b.builder.records_size() + size_hint > cfg.batch_size());
            if full {
                (failed, released) = queue.seal_open().unwrap_or((0, 0));
                sealed = true;
                queue.lingered = false;
            }
            let (lingered, last) = (queue.lingered, queue.last_records);
            let batch = queue.open.get_or_insert_with(|| OpenBatch {
                builder: if !lingered {
                    // A partition that fills its batches (or has not sent one yet) gets a
                    // reused buffer, sized for a whole batch at once: it will hold about
                    // that much in records, counted in buffer.memory. One whose last
                    // batch went out half empty (linger.ms, a flush) grows with its records.
                    let mut b = RecordBatchBuilder::with_buffer(cfg.compression(), self.shared.buffers.take_mut());
                    b.reserve(cfg.batch_size().min(MAX_POOLED));
                    b
                } else {
                    RecordBatchBuilder::new(cfg.compression())
                },
                // Once a second record comes (a partition with one record per linger
                // window stays small), room for the last batch's records and a quarter
                // more, at once: grown by doubling from nothing, a 500 KB batch was
                // reallocated and copied eight times, each an mmap and munmap under musl.
                grow_to: if lingered { (last + last / 4).min(cfg.batch_size()) } else { 0 },
                buffers: self.shared.buffers.clone(),
                delivery: BatchDelivery::new(),
                created: Instant::now(),
                reserved: 0,
            });
            if batch.grow_to != 0 && batch.builder.len() == 1 {
                batch.builder.reserve(std::mem::take(&mut batch.grow_to));
            }
            match batch.builder.push(&new) {
                Ok(()) => {
                    batch.reserved += size_hint;
                    Ok(batch.delivery.add())
                }
                Err(source) => Err(ClientError::Protocol { broker: None, partition: None, source }),
            }
        };
        // Counted before a refused record returns: a batch sealed (or failed) on the way
        // must still be accounted for.
        let added = usize::from(delivery.is_ok());
        acc.pending = acc.pending + added - failed;
        acc.buffered = acc.buffered + added * size_hint - released;
        if sealed && record.key.is_none() && record.partition.is_none() && partitions > 1 {
            // Sticky partitioning: move to another partition once a batch is complete.
            let next = (partition as usize + 1 + fastrand::usize(..partitions - 1)) % partitions;
            if let Some(p) = acc.sticky.get_mut(record.topic) {
                *p = next as i32;
            }
        }
        // The sender needs waking only when there is something new for it to act on: a
        // sealed batch, a new open batch (whose linger deadline it must learn) or a flush.
        // A record appended to an open batch changes neither.
        let wake = sealed || created || acc.flushing > 0 || failed > 0;
        drop(acc);
        if wake {
            self.shared.wake.notify_one();
        }
        delivery
    }

    /// Waits until `size` more bytes fit in `buffer.memory` and returns the locked
    /// accumulator, open for appending.
    async fn room_for(&self, size: usize, topic: &str) -> Result<MutexGuard<'_, Accumulator>> {
        let cfg = self.cluster.config();
        let limit = cfg.buffer_memory();
        if size > limit {
            return Err(ClientError::RecordTooLarge { topic: topic.to_owned(), size, buffer_memory: limit });
        }
        // The deadline is read from the clock only once a wait begins: most sends find room.
        let mut deadline = None;
        loop {
            let room = self.shared.space.notified();
            {
                let mut acc = self.shared.lock();
                if acc.closed {
                    return Err(ClientError::Closed);
                }
                if let Some(fatal) = &acc.fatal {
                    return Err(fatal.clone());
                }
                if acc.buffered + size <= limit {
                    return Ok(acc);
                }
                acc.blocked += 1;
            }
            self.shared.wake.notify_one();
            let until = *deadline.get_or_insert_with(|| Instant::now() + cfg.max_block());
            let waited = tokio::time::timeout_at(until, room).await;
            self.shared.lock().blocked -= 1;
            if waited.is_err() {
                return Err(ClientError::BufferFull {
                    topic: topic.to_owned(),
                    buffer_memory: limit,
                    max_block: cfg.max_block(),
                });
            }
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<usize> {
        if let Some(n) = self.cluster.metadata().partition_count(topic) {
            return Ok(n);
        }
        self.cluster.track_topics([topic]);
        let md = self.cluster.refresh_metadata().await?;
        md.partition_count(topic)
            .filter(|n| *n > 0)
            .ok_or_else(|| ClientError::UnknownTopicOrPartition { topic: topic.to_owned(), partition: None })
    }

    /// The producer's statistics: its queue (records and bytes not yet delivered),
    /// batches (sent, retried, fill), records delivered and failed, delivery latency,
    /// its brokers' counters and the error codes they answered;
    /// [`to_json`](crate::stats::Statistics::to_json) writes librdkafka's layout
    /// (`msg_cnt`, `msg_size`, `txmsgs`, `brokers`).
    pub fn statistics(&self) -> crate::stats::Statistics {
        statistics(&self.cluster, &self.shared)
    }

    /// Calls `callback` with [`statistics`](Self::statistics) every
    /// `statistics.interval.ms`, from a task of its own until the producer is closed
    /// (librdkafka serves its `stats_cb` from `rd_kafka_poll`; a ferrokafka producer
    /// needs no polling). With the interval at 0 (the default) it is never called. A
    /// second call replaces the first callback.
    pub fn set_statistics_callback(&self, callback: impl FnMut(&crate::stats::Statistics) + Send + 'static) {
        let interval = self.cluster.config().statistics_interval();
        let Some(mut scheduled) = crate::stats::Scheduled::new(interval, Box::new(callback)) else {
            self.stop_statistics();
            return;
        };
        let (cluster, shared) = (self.cluster.clone(), Arc::downgrade(&self.shared));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(scheduled.interval()).await;
                let Some(shared) = shared.upgrade() else { return };
                if shared.lock().closed {
                    return;
                }
                scheduled.serve(&statistics(&cluster, &shared));
            }
        });
        let replaced = self.shared.statistics_task.lock().unwrap_or_else(|p| p.into_inner()).replace(task);
        if let Some(old) = replaced {
            old.abort();
        }
    }

    /// Stops the statistics task; returns it, to wait for its end.
    fn stop_statistics(&self) -> Option<JoinHandle<()>> {
        let task = self.shared.statistics_task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = &task {
            t.abort();
        }
        task
    }

    /// Sends everything queued now (ignoring `linger.ms`) and waits until every
    /// record accepted so far is delivered or failed.
    pub async fn flush(&self) {
        self.shared.lock().flushing += 1;
        self.shared.wake.notify_one();
        loop {
            let notified = self.shared.drained.notified();
            if self.shared.lock().pending == 0 {
                break;
            }
            notified.await;
        }
        self.shared.lock().flushing -= 1;
    }

    /// Flushes, then stops the sender. Records sent after `close` fail with `Closed`.
    pub async fn close(mut self) {
        self.flush().await;
        if let Some(task) = self.stop_statistics() {
            // Aborted: once this returns, no callback runs any more.
            let _ = task.await;
        }
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The cluster handle.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for Producer {
    /// Dropping without `close` still sends what was queued; the sender stops when done.
    fn drop(&mut self) {
        drop(self.stop_statistics());
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

fn statistics(cluster: &Cluster, shared: &Shared) -> crate::stats::Statistics {
    let queue = {
        let acc = shared.lock();
        (acc.pending, acc.buffered, acc.blocked)
    };
    crate::stats::Statistics {
        brokers: cluster.statistics(),
        errors: cluster.error_statistics(),
        producer: Some(shared.counters.snapshot(queue, cluster.config().batch_size())),
        ..Default::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
