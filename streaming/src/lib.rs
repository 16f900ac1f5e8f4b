//! Spark's Kafka 0-10 direct stream, in Rust.
//!
//! Batches map 1:1 onto Kafka partitions: partition `i` of a [`Batch`] reads exactly
//! `batch.offset_ranges()[i]`. Executors (tasks with an id and a host) read their
//! partitions through cached, prefetching consumers.
//!
//! | Spark (Scala) | ferrokafka |
//! |---|---|
//! | `KafkaUtils.createDirectStream(ssc, PreferConsistent, Subscribe(topics, kafkaParams))` | `DirectStream::create(Box::new(Subscribe::new(topics, params, offsets)?), Box::new(PreferConsistent), cfg)` |
//! | `rdd.asInstanceOf[HasOffsetRanges].offsetRanges` | `batch.offset_ranges()` ([`HasOffsetRanges`]) |
//! | `rdd.foreachPartition { iter => … offsetRanges(TaskContext.get.partitionId) }` | `batch.foreach_partition(\|p\| async move { … p.range … p.records … })` |
//! | `stream.asInstanceOf[CanCommitOffsets].commitAsync(offsetRanges)` | `stream.commit_async(batch.offset_ranges())` |
//! | `KafkaUtils.createRDD(sc, kafkaParams, offsetRanges, PreferConsistent)` | `create_batch(ranges, &PreferConsistent, pool)` |
//! | `Assign(fromOffsets.keySet, kafkaParams, fromOffsets)` | `Assign::new(partitions, params, from_offsets)` |
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrokafka_streaming::{DirectStream, KafkaParams, PreferConsistent, StreamConfig, Subscribe, HasOffsetRanges};
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
//! let mut stream = DirectStream::create(Box::new(strategy), Box::new(PreferConsistent), cfg).await?;
//! loop {
//!     let batch = stream.next_batch().await?;
//!     let started = std::time::Instant::now();
//!     batch.foreach_partition(|p| async move {
//!         println!("{} {} {} {}", p.range.topic, p.range.partition, p.range.from_offset, p.range.until_offset);
//!         Ok(())
//!     }).await?;
//!     // After the output is stored:
//!     stream.commit_async(batch.offset_ranges());
//!     stream.complete(&batch, started.elapsed())?;
//! }
//! # }
//! ```

pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod commit;
pub mod error;
pub mod location;
pub mod offset_range;
pub mod params;
pub mod rate;
pub mod scaleout;
pub mod store;
pub mod strategy;
pub mod stream;

pub use batch::{create_batch, Batch, BatchPartition, CollectedPartition, ExecutorPool};
pub use cache::{CacheConfig, ReadOptions};
pub use commit::CommitQueue;
pub use error::{Result, StreamingError};
pub use ferrokafka_client::range::PartitionRecords;
pub use ferrokafka_protocol::records::{Header, Headers, Record};
pub use location::{Executor, LocationStrategy, PreferBrokers, PreferConsistent, PreferFixed};
pub use offset_range::{describe, HasOffsetRanges, OffsetRange, TopicPartition};
pub use params::KafkaParams;
pub use rate::{PidRateEstimator, RateLimits};
pub use scaleout::ExecutorAssignor;
pub use strategy::{Assign, ConsumerStrategy, OffsetSource, Subscribe};
pub use stream::{DirectStream, StopMode, StreamConfig};
