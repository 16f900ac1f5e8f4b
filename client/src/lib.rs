//! Kafka client core on tokio: connections, metadata, fetch and produce.
//!
//! All I/O of ferrokafka lives here; the bytes are handled by the sans-IO
//! `ferrokafka-protocol` crate.

pub mod config;
mod error;

pub use error::{ClientError, ResponseError, Result};
pub mod admin;
pub mod backoff;
pub mod cluster;
pub mod conn;
pub mod consumer;
pub mod metadata;
pub mod producer;
pub mod range;
