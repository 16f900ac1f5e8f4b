//! Kafka client core on tokio: connections, metadata, fetch and produce.
//!
//! All I/O of ferrokafka lives here; bytes are framed, encoded and decoded by the
//! sans-IO `ferrokafka-protocol` crate. Configuration is a Kafka-style string map
//! with the Java client's key names ([`config::ClientConfig`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrokafka_client::config::ClientConfig;
//! use ferrokafka_client::consumer::Consumer;
//! use ferrokafka_client::metadata::TopicPartition;
//! use ferrokafka_client::producer::{Producer, ProducerRecord};
//!
//! # async fn demo() -> ferrokafka_client::Result<()> {
//! let config = ClientConfig::from_pairs([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("auto.offset.reset", "earliest"),
//!     ("compression.type", "lz4"),
//! ])?;
//!
//! let producer = Producer::new(config.clone()).await?;
//! let delivered = producer.send(ProducerRecord::new("events", "hello").key("k1")).await?.await?;
//! println!("written to partition {} at offset {}", delivered.partition, delivered.offset);
//! producer.close().await;
//!
//! let mut consumer = Consumer::new(config).await?;
//! consumer.assign([TopicPartition::new("events", 0)]);
//! for record in &consumer.poll(Duration::from_secs(1)).await? {
//!     let r = record?;
//!     println!("{} @ {}: {:?}", r.topic_partition, r.record.offset, r.record.value);
//! }
//! // Cheaper: views borrowed from the poll's buffers, nothing counted per record.
//! let records = consumer.poll(Duration::from_secs(1)).await?;
//! for view in records.views() {
//!     let v = view?;
//!     let _kept = v.record.value_bytes(); // a `Bytes` only when asked for (no copy)
//!     println!("{} @ {}: {:?}", v.topic_partition, v.record.offset, v.record.value_str());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`cluster`] (bootstrap, metadata cache and its refresh loop, connections
//! per broker and purpose, each a reader and a writer task), [`consumer`] (assign-mode
//! consumer with prefetch, `poll` or a `Stream`), [`range`] (exact offset ranges, many partitions at once,
//! in bounded memory), [`producer`],
//! [`admin`] (topics, ListOffsets), [`serde`] (deserializers and Java class names).

pub mod admin;
pub(crate) mod backoff;
pub mod cluster;
mod code_names;
mod codes;
pub mod config;
pub(crate) mod conn;
pub mod consumer;
mod error;
mod fetch;
mod fetch_session;
mod fxhash;
pub mod group;
pub mod metadata;
pub mod producer;
pub mod range;
pub mod sasl;
pub mod serde;
pub mod stats;

pub use codes::{Api, ErrorCode};
pub use error::{ClientError, Result, Subject};
/// The record types consumers and range reads hand out (zero-copy views), so that
/// users need not depend on `ferrokafka-protocol`.
pub use ferrokafka_protocol::records::{Header, HeaderView, HeaderViews, Headers, Record, RecordView, TimestampType};
