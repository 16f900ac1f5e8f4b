//! Spark's Kafka 0-10 direct stream, in Rust.
//!
//! Batches map 1:1 onto Kafka partitions: partition `i` of a [`Batch`] reads exactly
//! `batch.offset_ranges()[i]`. Executors (tasks with an id and a host) read their
//! partitions lazily, one Fetch per leader for all of an executor's partitions, within
//! one memory budget ([`ReadOptions::memory_budget`]); records reach your code as they
//! are fetched, sharing the fetched buffers (no copy): as owned records
//! (`p.records.next()`), or as views for the length of a callback
//! (`p.records.for_each_view(…)`, no refcount either).
//!
//! | Spark (Scala) | ferrokafka |
//! |---|---|
//! | `KafkaUtils.createDirectStream(ssc, PreferConsistent, Subscribe(topics, kafkaParams))` | `DirectStream::create(Subscribe::new(topics, params, offsets)?, PreferConsistent, cfg)` |
//! | `stream.foreachRDD { rdd => … }` | `stream.process(\|batch\| async move { … })` |
//! | `rdd.asInstanceOf[HasOffsetRanges].offsetRanges` | `batch.offset_ranges()` ([`HasOffsetRanges`]) |
//! | `rdd.foreachPartition { iter => … offsetRanges(TaskContext.get.partitionId) }` | `batch.foreach_partition(\|mut p\| async move { … p.range … p.records.next().await … })` |
//! | `iter.foreach { record => … }` inside `foreachPartition` | `p.records.for_each_view(\|record\| …).await`: views borrowing from the fetched bytes, nothing allocated or reference-counted per record |
//! | `record.value` (`StringDeserializer`) | [`Record::value_str`] |
//! | `stream.asInstanceOf[CanCommitOffsets].commitAsync(offsetRanges)` | `stream.commit_async(batch.offset_ranges())` |
//! | `KafkaUtils.createRDD(sc, kafkaParams, offsetRanges, PreferConsistent)` | `create_batch(ranges, &PreferConsistent, pool)` |
//! | `Assign(fromOffsets.keySet, kafkaParams, fromOffsets)` | `Assign::new(partitions, params, from_offsets)` |
//! | `ssc.stop(stopSparkContext = false, stopGracefully = true)` | `stream.stop(StopMode::Graceful)` |
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrokafka_streaming::{DirectStream, HasOffsetRanges, KafkaParams, PreferConsistent, StreamConfig, Subscribe};
//!
//! # async fn demo() -> ferrokafka_streaming::Result<()> {
//! let params = KafkaParams::new([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("group.id", "use_a_separate_group_id_for_each_stream"),
//!     ("auto.offset.reset", "latest"),
//!     ("enable.auto.commit", "false"),
//! ])?;
//! let strategy = Subscribe::new(["topicA", "topicB"], params, Default::default())?;
//! let cfg = StreamConfig { batch_interval: Duration::from_secs(2), ..Default::default() };
//! // Starting offsets are fixed here: records produced from now on are read.
//! let mut stream = DirectStream::create(strategy, PreferConsistent, cfg).await?;
//! loop {
//!     let batch = stream.next_batch().await?; // completes the previous batch
//!     batch.foreach_partition(|mut p| async move {
//!         println!("{} {} {} {}", p.range.topic, p.range.partition, p.range.from_offset, p.range.until_offset);
//!         while let Some(record) = p.records.next().await {
//!             let record = record?;
//!             println!("{}: {:?}", record.offset, record.value_str());
//!         }
//!         Ok(())
//!     }).await?;
//!     // After the output is stored:
//!     stream.commit_async(batch.offset_ranges());
//! }
//! # }
//! ```

pub mod batch;
mod batch_local;
pub mod batches;
pub mod cache;
pub mod checkpoint;
pub mod commit;
pub mod error;
pub mod location;
pub mod offset_range;
pub mod params;
pub mod rate;
pub mod scaleout;
pub mod stats;
pub mod store;
pub mod strategy;
pub mod stream;

pub use batch::{create_batch, Batch, BatchPartition, CollectedPartition, ExecutorPool};
pub use batches::Batches;
pub use cache::{CacheConfig, CacheStatistics, ReadOptions};
pub use commit::CommitQueue;
pub use error::{Result, StreamingError};
pub use ferrokafka_client::range::PartitionRecords;
pub use ferrokafka_client::serde::Deserialized;
pub use ferrokafka_protocol::records::{Header, Headers, Record};
pub use location::{Executor, LocationStrategy, PreferBrokers, PreferConsistent, PreferFixed};
pub use offset_range::{describe, HasOffsetRanges, OffsetRange, TopicPartition};
pub use params::{Deserializers, KafkaParams};
pub use rate::{PidRateEstimator, RateLimits};
pub use scaleout::ExecutorAssignor;
pub use stats::StreamStatistics;
pub use strategy::{Assign, ConsumerStrategy, OffsetSource, Subscribe};
pub use stream::{DirectStream, StopMode, StreamConfig};
