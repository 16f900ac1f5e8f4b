//! Kafka itself as the transactional store: a batch's results are records written to
//! output topics, and its input offsets are committed to the consumer group, in one
//! Kafka transaction (KIP-98 + KIP-447). A `read_committed` reader of the output sees
//! every input record's results exactly once, across crashes before and after a commit;
//! this is what Kafka Streams' and Flink's exactly-once Kafka sinks do, and what Spark
//! users built by hand.
//!
//! ```no_run
//! # async fn example(ranges: Vec<ferrokafka_streaming::OffsetRange>) -> ferrokafka_streaming::Result<()> {
//! use ferrokafka_client::config::ClientConfig;
//! use ferrokafka_client::producer::ProducerRecord;
//! use ferrokafka_streaming::store::{commit_batch, KafkaStore, TransactionalStore};
//!
//! // One transactional.id per writer: a restarted writer with the same id fences the
//! // old one (a zombie) and aborts its open transaction.
//! let pairs = [("bootstrap.servers", "localhost:9092"), ("transactional.id", "wordcount-0")];
//! let config = ClientConfig::from_pairs(pairs).map_err(ferrokafka_client::ClientError::from)?;
//! let store = KafkaStore::connect(config).await?;
//! let from_offsets = store.load_offsets("my-group").await?; // give them to `Assign`
//! # let _ = from_offsets;
//! commit_batch(&store, "my-group", &ranges, async |txn| {
//!     txn.send(ProducerRecord::new("counts", "a result")).await?;
//!     Ok(())
//! })
//! .await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::group::{admin, CommitIdentity, OffsetAndMetadata};
use ferrokafka_client::producer::{DeliveryFuture, Producer, ProducerRecord};
use ferrokafka_client::ClientError;
use tokio::sync::{Mutex, MutexGuard};

use super::{Abort, Mismatch, StoreTransaction, TransactionalStore};
use crate::error::{Result, StreamingError};
use crate::offset_range::{OffsetRange, TopicPartition};

/// Offsets and results in Kafka transactions, through one transactional producer.
pub struct KafkaStore {
    producer: Producer,
    /// One transaction at a time (the producer has one).
    turn: Mutex<()>,
    /// A transaction was begun and dropped without commit: the next begin aborts it.
    dangling: AtomicBool,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStore").field("producer", &self.producer).finish_non_exhaustive()
    }
}

impl KafkaStore {
    /// A transactional producer for `config` (which must set `transactional.id`), with
    /// its transactions initialized: an older writer with the same id is fenced.
    pub async fn connect(config: ClientConfig) -> Result<KafkaStore> {
        if config.transactional_id().is_none() {
            return Err(StreamingError::Client(ClientError::TransactionState {
                operation: "KafkaStore::connect",
                state: "the producer has no transactional.id",
            }));
        }
        KafkaStore::with_producer(Producer::new(config).await?).await
    }

    /// A store writing through `producer` (transactional, not yet initialized).
    pub async fn with_producer(producer: Producer) -> Result<KafkaStore> {
        producer.init_transactions().await?;
        Ok(KafkaStore { producer, turn: Mutex::new(()), dangling: AtomicBool::new(false) })
    }

    /// The producer (its cluster, to read what was written).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Ends the producer (an open transaction is left to the coordinator's timeout).
    pub async fn close(self) {
        self.producer.close().await;
    }

    fn cluster(&self) -> &Cluster {
        self.producer.cluster()
    }
}

impl TransactionalStore for KafkaStore {
    type Txn<'a> = KafkaTransaction<'a>;

    /// The group's committed offsets of every topic, once stable: offsets a transaction
    /// still holds are waited for (KIP-447), never returned half-committed.
    async fn load_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let tps = admin::every_partition(self.cluster()).await?;
        let stored = admin::stable_committed_offsets(self.cluster(), group, &tps).await?;
        Ok(stored.into_iter().map(|(tp, om)| (tp, om.offset)).collect())
    }

    async fn begin(&self) -> Result<KafkaTransaction<'_>> {
        let turn = self.turn.lock().await;
        if self.dangling.swap(false, Ordering::SeqCst) {
            // The previous batch dropped its transaction (an error in its results):
            // nothing of it may be committed.
            self.producer.abort_transaction().await?;
        }
        self.producer.begin_transaction()?;
        self.dangling.store(true, Ordering::SeqCst);
        Ok(KafkaTransaction { store: self, _turn: turn, aborted: None })
    }
}

/// One batch's Kafka transaction. Dropping it without commit aborts it (at the next
/// `begin`, or by the coordinator after `transaction.timeout.ms`).
pub struct KafkaTransaction<'a> {
    store: &'a KafkaStore,
    _turn: MutexGuard<'a, ()>,
    aborted: Option<Abort>,
}

impl std::fmt::Debug for KafkaTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransaction").field("aborted", &self.aborted).finish_non_exhaustive()
    }
}

impl KafkaTransaction<'_> {
    /// Writes a result record in the transaction (visible to `read_committed` readers
    /// only if it commits). The returned future resolves when the broker stored it.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        Ok(self.store.producer.send(record).await?)
    }

    async fn advance(&self, group: &str, ranges: &[OffsetRange]) -> Result<()> {
        let tps: Vec<TopicPartition> =
            ranges.iter().map(|r| TopicPartition { topic: r.topic.clone(), partition: r.partition }).collect();
        let stored = admin::stable_committed_offsets(self.store.cluster(), group, &tps).await?;
        for (range, tp) in ranges.iter().zip(&tps) {
            Mismatch::check(range, stored.get(tp).map(|o| o.offset)).map_err(|m| m.error())?;
        }
        let offsets: Vec<(TopicPartition, OffsetAndMetadata)> =
            ranges.iter().zip(tps).map(|(r, tp)| (tp, OffsetAndMetadata::new(r.until_offset))).collect();
        let who = CommitIdentity::standalone(group);
        self.store.producer.send_offsets_to_transaction(&offsets, &who).await?;
        Ok(())
    }
}

impl StoreTransaction for KafkaTransaction<'_> {
    async fn advance_offsets(&mut self, group: &str, ranges: &[OffsetRange]) -> Result<()> {
        if let Some(abort) = &self.aborted {
            return Err(abort.error());
        }
        let result = match ranges.iter().try_for_each(OffsetRange::validate) {
            Ok(()) => self.advance(group, ranges).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.aborted = Some(Abort::from_error(e));
        }
        result
    }

    async fn commit(self) -> Result<()> {
        let producer = &self.store.producer;
        if let Some(abort) = &self.aborted {
            producer.abort_transaction().await?;
            self.store.dangling.store(false, Ordering::SeqCst);
            return Err(abort.error());
        }
        match producer.commit_transaction().await {
            Ok(()) => {
                self.store.dangling.store(false, Ordering::SeqCst);
                Ok(())
            }
            Err(e @ ClientError::TransactionAbortable { .. }) => {
                producer.abort_transaction().await?;
                self.store.dangling.store(false, Ordering::SeqCst);
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
