//! The client crate's one error type.

use std::time::Duration;

use ferrokafka_protocol::messages::ApiKey;
use ferrokafka_protocol::ProtocolError;

use crate::config::ConfigError;

/// A Kafka error code returned by a broker, with its name.
pub use ferrokafka_protocol::ResponseError;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A configuration key or value was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bytes from a broker could not be framed or decoded.
    #[error("{broker}: {source}")]
    Protocol {
        /// The broker's address.
        broker: String,
        /// What the protocol crate rejected.
        #[source]
        source: ProtocolError,
    },
    /// A socket operation failed.
    #[error("{broker}: {source}")]
    Io {
        /// The broker's address.
        broker: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The connection closed (or was poisoned) while the request was in flight.
    #[error("connection to {broker} closed: {reason}")]
    Disconnected {
        /// The broker's address.
        broker: String,
        /// Why.
        reason: String,
    },
    /// No response arrived within `request.timeout.ms`.
    #[error("{api:?} request to {broker} timed out after {after:?}")]
    Timeout {
        /// The API.
        api: ApiKey,
        /// The broker's address.
        broker: String,
        /// The timeout.
        after: Duration,
    },
    /// A broker answered with a Kafka error code.
    #[error("{api:?} failed for {topic}/{partition}: {error} (code {})", error.code())]
    Broker {
        /// The API.
        api: ApiKey,
        /// The error.
        error: ResponseError,
        /// Topic concerned ("" when not about a topic).
        topic: String,
        /// Partition concerned (-1 when not about a partition).
        partition: i32,
    },
    /// `auto.offset.reset=none` and the position is outside the log.
    #[error("offset {offset} is out of range for {topic}/{partition} and auto.offset.reset is none")]
    OffsetOutOfRange {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset that was asked for.
        offset: i64,
    },
    /// A partition has no position and `auto.offset.reset` is none.
    #[error("no offset to start {topic}/{partition} from and auto.offset.reset is none")]
    NoOffsetForPartition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// An exact range of offsets is not (or no longer) in the log.
    #[error(
        "offsets {from}..{until} of {topic}/{partition} are not available: the log holds {}..{}",
        bound(*log_start), bound(*high_watermark)
    )]
    RangeUnavailable {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Inclusive start asked for.
        from: i64,
        /// Exclusive end asked for.
        until: i64,
        /// First offset in the log.
        log_start: i64,
        /// High watermark (or last stable offset).
        high_watermark: i64,
    },
    /// A topic or partition is unknown to the cluster.
    #[error("unknown topic or partition {topic}/{partition}")]
    UnknownTopicOrPartition {
        /// Topic.
        topic: String,
        /// Partition (-1 for the whole topic).
        partition: i32,
    },
    /// A produced record could not be delivered.
    #[error("delivery to {topic}/{partition} failed after {attempts} attempt(s){}: {reason}",
        if *retriable { " (retries or delivery.timeout.ms exhausted)" } else { "" })]
    Delivery {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Attempts made.
        attempts: u32,
        /// Whether the last error was retriable.
        retriable: bool,
        /// The last error.
        reason: String,
    },
    /// The producer's `buffer.memory` stayed full for `max.block.ms`: the record was
    /// not queued. Retriable: room frees as the broker acknowledges.
    #[error("record for {topic} not queued: the producer's buffer.memory ({buffer_memory} bytes) stayed full for max.block.ms ({max_block:?})")]
    BufferFull {
        /// Topic of the record.
        topic: String,
        /// `buffer.memory`.
        buffer_memory: usize,
        /// `max.block.ms`.
        max_block: std::time::Duration,
    },
    /// A record is larger than the whole producer buffer (`buffer.memory`).
    #[error("record of about {size} bytes for {topic} is larger than buffer.memory ({buffer_memory} bytes)")]
    RecordTooLarge {
        /// Topic of the record.
        topic: String,
        /// Its size as counted against `buffer.memory`.
        size: usize,
        /// `buffer.memory`.
        buffer_memory: usize,
    },
    /// The idempotent producer can send no more: it got no producer id, or a batch
    /// failed for good, after which later records of its partition could not keep
    /// their sequence. Create a new producer.
    #[error("the producer can no longer send: {reason}")]
    ProducerFatal {
        /// What happened.
        reason: String,
    },
    /// A commit was rejected because the member's generation is stale (the group
    /// rebalanced): the offsets were not stored.
    #[error("offset commit for group {group} (generation {generation}) rejected: {error}; the group is rebalancing")]
    CommitFailed {
        /// Group id.
        group: String,
        /// Generation the commit was made in.
        generation: i32,
        /// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS or FENCED_INSTANCE_ID.
        error: ResponseError,
    },
    /// TLS failed: a bad `ssl.*` key or store (when the client is built, `broker`
    /// empty) or a handshake refused by either side. See
    /// [`TlsError::is_retriable`](ferrokafka_tls::TlsError::is_retriable).
    #[error("{source}")]
    Tls {
        /// The broker's address ("" for configuration errors).
        broker: String,
        /// What failed.
        #[source]
        source: ferrokafka_tls::TlsError,
    },
    /// An exact range read found a gap in the offsets and gaps were not allowed.
    #[error("offsets of {topic}/{partition} are not consecutive: expected {expected}, got {got}; on a compacted or transactional topic allow non-consecutive offsets")]
    NonConsecutive {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset that should have come next.
        expected: i64,
        /// The offset that came (the range's end when the data ended before it).
        got: i64,
    },
    /// SASL authentication failed: wrong credentials, a refused token, a server that
    /// could not prove it knows the password, or a malformed server message.
    #[error("{broker}: {mechanism} authentication as {user:?} failed: {reason}")]
    Authentication {
        /// The broker's address.
        broker: String,
        /// The mechanism.
        mechanism: &'static str,
        /// The user (or token principal); never the secret.
        user: String,
        /// What the broker or the client's checks said.
        reason: String,
    },
    /// The broker does not enable the configured SASL mechanism.
    #[error("{broker} does not enable SASL mechanism {mechanism}; it enables {enabled:?}")]
    SaslMechanismNotEnabled {
        /// The broker's address.
        broker: String,
        /// The configured mechanism.
        mechanism: &'static str,
        /// The mechanisms the broker enables.
        enabled: Vec<String>,
    },
    /// No bootstrap broker could be reached.
    #[error("no broker of {bootstrap} could be reached: {last}")]
    NoBrokerReachable {
        /// The bootstrap list.
        bootstrap: String,
        /// The last error seen.
        last: String,
    },
    /// The operation needs a partition that is paused, unassigned or otherwise unusable.
    #[error("{0}")]
    InvalidState(String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

impl ClientError {
    /// Whether retrying (after a metadata refresh or reconnect) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Protocol { source, .. } => source.is_retriable(),
            ClientError::Io { .. } | ClientError::Disconnected { .. } | ClientError::Timeout { .. } => true,
            ClientError::NoBrokerReachable { .. } | ClientError::BufferFull { .. } => true,
            ClientError::Broker { error, .. } => error.is_retriable(),
            ClientError::Tls { source, .. } => source.is_retriable(),
            _ => false,
        }
    }

    /// Whether the error means metadata (leaders) may be stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Broker { error, .. } => matches!(
                error,
                ResponseError::NotLeaderOrFollower
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
            ),
            ClientError::Io { .. } | ClientError::Disconnected { .. } | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// An offset bound for messages: `?` when unknown (-1).
fn bound(offset: i64) -> String {
    if offset < 0 {
        "?".to_owned()
    } else {
        offset.to_string()
    }
}
