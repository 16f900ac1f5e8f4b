//! The client crate's one error type.

use std::sync::Arc;
use std::time::Duration;

use ferrokafka_protocol::ProtocolError;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use crate::config::ConfigError;
use crate::metadata::TopicPartition;

use crate::codes::{Api, ErrorCode};

/// What a broker's error code was about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// The request as a whole (ApiVersions, InitProducerId, …).
    Request,
    /// A topic.
    Topic(String),
    /// A partition.
    Partition(TopicPartition),
    /// A consumer group.
    Group(String),
    /// A transactional id.
    Transaction(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Request => Ok(()),
            Subject::Topic(t) => write!(f, " for topic {t}"),
            Subject::Partition(tp) => write!(f, " for {tp}"),
            Subject::Group(g) => write!(f, " for group {g}"),
            Subject::Transaction(t) => write!(f, " for transactional id {t}"),
        }
    }
}

/// Everything the client can fail with. Errors are `Clone`: one failure (a broken
/// connection, a rejected batch) is reported to every request or record it concerns.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A configuration key or value was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bytes from a broker could not be framed or decoded, or a batch could not be encoded.
    #[error("{}{}{source}", broker.as_deref().map(|b| format!("{b}: ")).unwrap_or_default(),
        partition.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
    Protocol {
        /// The broker the bytes came from, when they came from one.
        broker: Option<String>,
        /// The partition whose records were bad, when they were records.
        partition: Option<TopicPartition>,
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
        source: Arc<std::io::Error>,
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
    #[error("{api} request to {broker} timed out after {after:?}")]
    Timeout {
        /// The API.
        api: Api,
        /// The broker's address.
        broker: String,
        /// The timeout.
        after: Duration,
    },
    /// A broker answered with a Kafka error code.
    #[error("{api} failed{subject}: {error}")]
    Broker {
        /// The API.
        api: Api,
        /// The error.
        error: ErrorCode,
        /// What the error was about.
        subject: Subject,
    },
    /// `auto.offset.reset=none` and the position is outside the log.
    #[error("offset {offset} is out of range for {partition} and auto.offset.reset is none")]
    OffsetOutOfRange {
        /// The partition.
        partition: TopicPartition,
        /// The offset that was asked for.
        offset: i64,
    },
    /// A partition has no position and `auto.offset.reset` is none.
    #[error("no offset to start {partition} from and auto.offset.reset is none")]
    NoOffsetForPartition {
        /// The partition.
        partition: TopicPartition,
    },
    /// An exact range of offsets is not (or no longer) in the log.
    #[error(
        "offsets {from}..{until} of {partition} are not available: the log holds {}..{}",
        bound(*log_start), bound(*high_watermark)
    )]
    RangeUnavailable {
        /// The partition.
        partition: TopicPartition,
        /// Inclusive start asked for.
        from: i64,
        /// Exclusive end asked for.
        until: i64,
        /// First offset in the log.
        log_start: i64,
        /// High watermark (or last stable offset).
        high_watermark: i64,
    },
    /// A range whose start is negative or after its end.
    #[error("invalid range for {partition}: from {from} must be non-negative and not after until {until}")]
    InvalidRange {
        /// The partition.
        partition: TopicPartition,
        /// Inclusive start.
        from: i64,
        /// Exclusive end.
        until: i64,
    },
    /// A topic or partition is unknown to the cluster.
    #[error("unknown topic or partition {topic}{}", partition.map(|p| format!("-{p}")).unwrap_or_default())]
    UnknownTopicOrPartition {
        /// Topic.
        topic: String,
        /// The partition (`None`: the topic itself is unknown).
        partition: Option<i32>,
    },
    /// A broker id that is not in the current metadata.
    #[error("broker {node} is not in the metadata")]
    UnknownBroker {
        /// The broker id.
        node: i32,
    },
    /// A record batch is larger than `max.partition.fetch.bytes` and the broker (before
    /// KIP-74) returned it truncated: the partition cannot make progress.
    #[error(
        "the record batch at offset {offset} of {partition} ({size} bytes) is larger than max.partition.fetch.bytes"
    )]
    BatchTooLarge {
        /// The partition.
        partition: TopicPartition,
        /// The batch's offset.
        offset: i64,
        /// Its size, when the broker's bytes tell it (0 when they do not).
        size: u64,
    },
    /// A produced record could not be delivered.
    #[error("delivery to {partition} failed after {attempts} attempt(s){}: {last}",
        if last.is_retriable() { " (retries or delivery.timeout.ms exhausted)" } else { "" })]
    Delivery {
        /// The partition.
        partition: TopicPartition,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        #[source]
        last: Box<ClientError>,
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
    /// The idempotent or transactional producer can send no more: it got no producer id
    /// (or no new epoch after a failed batch), it was fenced by a newer producer with
    /// its transactional id, it is not authorized, or a batch could not be stamped.
    /// Create a new producer.
    #[error("the producer can no longer send{}: {cause}",
        partition.as_ref().map(|p| format!(" (a batch for {p} could not be sent)")).unwrap_or_default())]
    ProducerFatal {
        /// The partition whose batch failed (`None`: the producer as a whole).
        partition: Option<TopicPartition>,
        /// What failed.
        #[source]
        cause: Box<ClientError>,
    },
    /// A transactional call made in a state that does not allow it (`send` outside a
    /// transaction, `commit_transaction` before `begin_transaction`, any call on a
    /// producer without `transactional.id`), as the Java client's IllegalStateException.
    #[error("{operation} is not allowed: {state}")]
    TransactionState {
        /// The call.
        operation: &'static str,
        /// Why not.
        state: &'static str,
    },
    /// The transaction cannot commit (a record or offset of it failed); call
    /// `abort_transaction`, then begin a new one. The producer stays usable.
    #[error("the transaction must be aborted: {cause}")]
    TransactionAbortable {
        /// What failed.
        #[source]
        cause: Box<ClientError>,
    },
    /// The record was not sent: its transaction was aborted first.
    #[error("the transaction was aborted before this record was sent")]
    TransactionAborted,
    /// A commit was rejected because the member's generation is stale (the group
    /// rebalanced): the offsets were not stored.
    #[error("offset commit for group {group} (generation {generation}) rejected: {error}; the group is rebalancing")]
    CommitFailed {
        /// Group id.
        group: String,
        /// Generation the commit was made in.
        generation: i32,
        /// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS or FENCED_INSTANCE_ID.
        error: ErrorCode,
    },
    /// TLS failed: a bad `ssl.*` key or store (when the client is built, no broker)
    /// or a handshake refused by either side. See
    /// [`TlsError::is_retriable`](ferrokafka_tls::TlsError::is_retriable).
    #[error("{}{source}", broker.as_deref().map(|b| format!("{b}: ")).unwrap_or_default())]
    Tls {
        /// The broker's address (`None` for configuration errors).
        broker: Option<String>,
        /// What failed.
        #[source]
        source: ferrokafka_tls::TlsError,
    },
    /// An exact range read found a gap in the offsets and gaps were not allowed.
    #[error("offsets of {partition} are not consecutive: expected {expected}, got {got}; on a compacted or transactional topic allow non-consecutive offsets")]
    NonConsecutive {
        /// The partition.
        partition: TopicPartition,
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
    #[error("no broker of {bootstrap} could be reached{}", last.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    NoBrokerReachable {
        /// The bootstrap list.
        bootstrap: String,
        /// The last error seen (`None` when there was no address to try).
        #[source]
        last: Option<Box<ClientError>>,
    },
    /// A call gave up after retrying its retriable failures (a leader election that
    /// does not end, partitions a broker keeps leaving out of its answers).
    #[error("{api} did not succeed after {attempts} attempts{}", last.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    RetriesExhausted {
        /// The API.
        api: Api,
        /// Attempts made.
        attempts: u32,
        /// The last error, if one was returned.
        #[source]
        last: Option<Box<ClientError>>,
    },
    /// A broker's answer lacks what was asked for.
    #[error("{api} answer lacks {missing}")]
    IncompleteResponse {
        /// The API.
        api: Api,
        /// What is missing.
        missing: String,
    },
    /// The operation needs a partition this consumer is not assigned.
    #[error("{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The partition.
        partition: TopicPartition,
    },
    /// `poll` on a group consumer before `subscribe`.
    #[error("subscribe() before poll()")]
    NotSubscribed,
    /// The group could not be joined within the rebalance timeout.
    #[error("could not join group {group} within the rebalance timeout ({after:?})")]
    JoinTimeout {
        /// The group.
        group: String,
        /// The time waited.
        after: Duration,
    },
    /// A partition assignor refused or could not read what the group gave it.
    #[error("{assignor} assignor: {reason}")]
    Assignor {
        /// The assignor's protocol name.
        assignor: String,
        /// What was wrong.
        reason: String,
    },
    /// `group.protocol=consumer` (KIP-848) was asked for, and the group coordinator
    /// does not serve ConsumerGroupHeartbeat (brokers before Kafka 4.0, or 3.7–3.9
    /// without the new coordinator turned on).
    #[error(
        "group {group}: the coordinator {broker} does not support group.protocol=consumer \
         (KIP-848, Kafka 4.0+); use group.protocol=classic"
    )]
    GroupProtocolUnsupported {
        /// The group.
        group: String,
        /// The coordinator's address.
        broker: String,
    },
    /// Resetting a group's offsets needs the group to be empty.
    #[error("group {group} has {members} active member(s) (state {state}); stop them before resetting offsets")]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// Active members.
        members: usize,
        /// The group's state.
        state: String,
    },
    /// A background task of the client stopped without an answer (it panicked or
    /// was cancelled).
    #[error("{task} failed: {reason}")]
    TaskFailed {
        /// Which task.
        task: &'static str,
        /// The runtime's description.
        reason: String,
    },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

impl ClientError {
    /// Whether retrying (after a metadata refresh or reconnect) may succeed. Every
    /// variant is listed: a new one must be classified.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Protocol { source, .. } => source.is_retriable(),
            ClientError::Io { .. } | ClientError::Disconnected { .. } | ClientError::Timeout { .. } => true,
            ClientError::NoBrokerReachable { .. } | ClientError::BufferFull { .. } => true,
            ClientError::Broker { error, .. } => error.is_retriable(),
            ClientError::Tls { source, .. } => source.is_retriable(),
            // An unknown broker id is stale metadata: the next refresh knows it.
            ClientError::UnknownBroker { .. } => true,
            // Reported after the metadata was refreshed: the cluster says so.
            ClientError::UnknownTopicOrPartition { .. }
            | ClientError::JoinTimeout { .. }
            | ClientError::IncompleteResponse { .. }
            | ClientError::Config(_)
            | ClientError::OffsetOutOfRange { .. }
            | ClientError::NoOffsetForPartition { .. }
            | ClientError::RangeUnavailable { .. }
            | ClientError::InvalidRange { .. }
            | ClientError::BatchTooLarge { .. }
            | ClientError::Delivery { .. }
            | ClientError::RecordTooLarge { .. }
            | ClientError::ProducerFatal { .. }
            | ClientError::TransactionState { .. }
            | ClientError::TransactionAbortable { .. }
            | ClientError::TransactionAborted
            | ClientError::CommitFailed { .. }
            | ClientError::NonConsecutive { .. }
            | ClientError::Authentication { .. }
            | ClientError::SaslMechanismNotEnabled { .. }
            | ClientError::RetriesExhausted { .. }
            | ClientError::NotAssigned { .. }
            | ClientError::NotSubscribed
            | ClientError::Assignor { .. }
            | ClientError::GroupNotEmpty { .. }
            | ClientError::GroupProtocolUnsupported { .. }
            | ClientError::TaskFailed { .. }
            | ClientError::Closed => false,
        }
    }

    /// Whether the error means metadata (leaders) may be stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Broker { error, .. } => matches!(
                error.response(),
                ResponseError::NotLeaderOrFollower
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
            ),
            ClientError::Io { .. }
            | ClientError::Disconnected { .. }
            | ClientError::Timeout { .. }
            | ClientError::UnknownBroker { .. } => true,
            _ => false,
        }
    }

    /// Whether the error is a configuration error found before any broker was
    /// contacted (a bad key or value, an unreadable `ssl.*` store).
    pub fn is_config(&self) -> bool {
        matches!(self, ClientError::Config(_) | ClientError::Tls { broker: None, .. })
    }

    /// A broker's error code about `subject`.
    pub(crate) fn broker(api: ApiKey, error: ResponseError, subject: Subject) -> Self {
        ClientError::Broker { api: Api::of(api), error: ErrorCode::of(error), subject }
    }

    /// A request that timed out.
    pub(crate) fn timeout(api: ApiKey, broker: &str, after: Duration) -> Self {
        ClientError::Timeout { api: Api::of(api), broker: broker.to_owned(), after }
    }

    /// An answer that lacks what was asked for.
    pub(crate) fn incomplete(api: ApiKey, missing: impl Into<String>) -> Self {
        ClientError::IncompleteResponse { api: Api::of(api), missing: missing.into() }
    }

    /// The broker's error code, if this is a broker's error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Broker { error, .. } => Some(*error),
            _ => None,
        }
    }

    /// A socket error at `broker`.
    pub(crate) fn io(broker: &str, source: std::io::Error) -> Self {
        ClientError::Io { broker: broker.to_owned(), source: Arc::new(source) }
    }
}

/// Whether a broker's error code is retriable, as Kafka's `Errors` table says.
pub(crate) fn code_is_retriable(error: &ResponseError) -> bool {
    ErrorCode::of(*error).is_retriable()
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
