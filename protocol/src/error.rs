//! The protocol crate's one error type.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

use crate::codec::Compression;

/// Everything that can go wrong while framing, encoding or decoding Kafka bytes.
///
/// Every variant carries enough context (API, version, offset, codec) to tell a
/// user which piece of data was bad. None of them is produced by a panic path:
/// the decoders check every length against the bytes at hand before slicing or
/// allocating.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame's size prefix exceeds the configured maximum
    /// (`receive.message.max.bytes`); nothing was allocated for it.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes (receive.message.max.bytes)")]
    FrameTooLarge {
        /// The size the peer announced.
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A frame's size prefix is negative.
    #[error("negative frame size {0}")]
    NegativeFrameSize(i32),
    /// A response carried another correlation id than the request it answers.
    #[error("correlation id mismatch: expected {expected}, got {actual}")]
    CorrelationMismatch {
        /// The id of the oldest request in flight.
        expected: i32,
        /// The id the broker sent.
        actual: i32,
    },
    /// kafka-protocol refused to encode a message.
    #[error("cannot encode {api:?} v{version}: {message}")]
    Encode {
        /// The API being encoded.
        api: ApiKey,
        /// The version it was encoded at.
        version: i16,
        /// kafka-protocol's description.
        message: String,
    },
    /// A response (or response header) could not be decoded.
    #[error("malformed {api:?} v{version} response: {message}")]
    Decode {
        /// The API of the response.
        api: ApiKey,
        /// The version it was decoded at.
        version: i16,
        /// What was wrong.
        message: String,
    },
    /// No version of an API is supported by both the client and the broker.
    #[error("no common version for {api:?}: client supports {client}, broker supports {}",
        broker.map(|b| b.to_string()).unwrap_or_else(|| "none".to_owned()))]
    NoCommonVersion {
        /// The API.
        api: ApiKey,
        /// What this client implements.
        client: VersionRange,
        /// What the broker announced, if anything.
        broker: Option<VersionRange>,
    },
    /// The broker answered ApiVersions with an error.
    #[error("ApiVersions failed with broker error code {code}")]
    ApiVersionsFailed {
        /// The Kafka error code.
        code: i16,
    },
    /// A complete record batch or message is internally inconsistent.
    #[error("corrupt record batch at offset {offset}: {reason}")]
    CorruptBatch {
        /// Base offset of the batch (or offset of the legacy message).
        offset: i64,
        /// What was inconsistent.
        reason: &'static str,
    },
    /// A record inside a batch could not be parsed.
    #[error("corrupt record {index} of batch at offset {offset}: {reason}")]
    CorruptRecord {
        /// Base offset of the batch.
        offset: i64,
        /// Index of the record inside the batch.
        index: u32,
        /// What was wrong.
        reason: &'static str,
    },
    /// A checksum did not match (`check.crcs`).
    #[error("CRC mismatch in batch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// Base offset of the batch or message.
        offset: i64,
        /// CRC stored in the data.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// The magic byte names a format this crate does not know.
    #[error("unsupported record format magic {magic} at offset {offset}")]
    UnsupportedMagic {
        /// Offset of the batch.
        offset: i64,
        /// The magic byte.
        magic: i8,
    },
    /// The attributes name a codec that does not exist.
    #[error("unknown compression codec id {codec} in batch at offset {offset}")]
    UnknownCodec {
        /// Offset of the batch.
        offset: i64,
        /// The codec bits.
        codec: u8,
    },
    /// Decompression failed.
    #[error("{codec} decompression failed in batch at offset {offset}: {message}")]
    Decompress {
        /// The codec.
        codec: Compression,
        /// Offset of the batch.
        offset: i64,
        /// The codec library's description.
        message: String,
    },
    /// Decompressed data would exceed the configured limit.
    #[error("{codec} data in batch at offset {offset} decompresses to more than the {limit}-byte limit")]
    DecompressLimit {
        /// The codec.
        codec: Compression,
        /// Offset of the batch.
        offset: i64,
        /// The limit.
        limit: usize,
    },
    /// Compression failed while building a batch.
    #[error("{codec} compression failed: {message}")]
    Compress {
        /// The codec.
        codec: Compression,
        /// The codec library's description.
        message: String,
    },
    /// A value given to an encoder is out of the range the format allows.
    #[error("cannot encode record batch: {0}")]
    Unencodable(&'static str),
}

impl ProtocolError {
    /// Whether retrying the same operation (usually on a fresh connection) may succeed.
    ///
    /// Corruption seen on the wire (CRC mismatch, malformed frames, correlation
    /// mismatches) is treated as retriable because it most often comes from a broken
    /// connection; format or configuration problems are not.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ProtocolError::CorrelationMismatch { .. }
                | ProtocolError::CrcMismatch { .. }
                | ProtocolError::Decode { .. }
                | ProtocolError::NegativeFrameSize(_)
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
