//! Spark's Kafka 0-10 direct stream, in Rust.
//!
//! (Module documentation with the Rust form of every Spark example: see below and README.)

pub mod error;
pub mod location;
pub mod offset_range;
pub mod rate;
pub mod store;

pub use error::{Result, StreamingError};
pub use offset_range::{describe, HasOffsetRanges, OffsetRange, TopicPartition};
