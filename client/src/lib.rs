//! Kafka client core on tokio: connections, metadata, fetch and produce.
//!
//! All I/O of ferrokafka lives here; the bytes are handled by the sans-IO
//! `ferrokafka-protocol` crate.

pub mod config;
mod error;

pub use error::{ClientError, ResponseError, Result};
pub mod conn;
pub mod backoff;
pub mod cluster;
pub mod metadata;
pub mod admin;
pub mod consumer;
pub mod range;
pub mod producer;
