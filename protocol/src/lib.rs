//! Sans-IO implementation of the Apache Kafka wire protocol.
//!
//! This crate turns bytes into typed values and back; it owns no socket, spawns
//! no task and never blocks. The `ferrokafka-client` crate drives it over tokio.
//!
//! - [`frame`]: size-prefixed frames, request and response headers.
//! - [`versions`]: ApiVersions negotiation.
//! - [`produce`]: Produce requests written as parts, their record batches not copied.
//! - [`records`]: record batches (magic 2) and legacy message sets (magic 0/1),
//!   decoded zero-copy from `Bytes`; encoding of v2 batches.
//! - [`compression`]: gzip, snappy, lz4 and zstd in pure Rust, with a size limit.
//!
//! Message bodies are the generated types of the `kafka-protocol` crate (the patched
//! copy in `vendor/`); crates that build messages depend on it directly, and
//! [`Request`] ties each request type to its API key and response.
//!
//! ```
//! use bytes::Bytes;
//! use ferrokafka_protocol::records::{DecodeOptions, NewRecord, RecordBatchBuilder, RecordSet};
//! use ferrokafka_protocol::Compression;
//!
//! let mut builder = RecordBatchBuilder::new(Compression::Lz4).base_offset(42);
//! builder.push(&NewRecord { key: Some(b"k"), value: Some(b"v"), headers: &[], timestamp: 1 })?;
//! let mut buf = bytes::BytesMut::new();
//! builder.finish(&mut buf)?;
//!
//! for batch in RecordSet::new(buf.freeze(), DecodeOptions::default()) {
//!     for record in batch?.records() {
//!         let record = record?;
//!         assert_eq!((record.offset, record.value), (42, Some(Bytes::from_static(b"v"))));
//!     }
//! }
//! # Ok::<(), ferrokafka_protocol::ProtocolError>(())
//! ```

mod codec;
pub mod compression;
mod error;
pub mod frame;
mod lz4;
pub mod produce;
pub mod records;
pub mod request;
pub mod varint;
pub mod versions;

pub use compression::Compression;
pub use error::{ProtocolError, Result};
pub use request::Request;
