//! The streaming crate's one error type.

use ferrokafka_client::metadata::TopicPartition;
use ferrokafka_client::ClientError;

/// Everything a stream, a batch read or an offset store can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamingError {
    /// The Kafka client failed (connection, broker error, configuration).
    #[error(transparent)]
    Client(ClientError),
    /// A kafkaParams key or value is not acceptable for a stream.
    #[error("kafkaParams: {0}")]
    Params(String),
    /// An offset range is malformed.
    #[error("Beginning offset {from} is after the ending offset {until} for topic {topic} partition {partition}")]
    InvalidRange {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Inclusive start.
        from: i64,
        /// Exclusive end.
        until: i64,
    },
    /// A negative offset in a range.
    #[error("offsets must be non-negative: topic {topic} partition {partition} offsets {from} to {until}")]
    NegativeOffset {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Inclusive start.
        from: i64,
        /// Exclusive end.
        until: i64,
    },
    /// A record is missing where one was expected and non-consecutive offsets are not allowed.
    #[error("Got wrong record for {topic} {partition} even after seeking to offset {expected} got offset {got} instead. If this is a compacted topic, consider enabling allow_non_consecutive_offsets")]
    NonConsecutive {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset that should have come.
        expected: i64,
        /// The offset that came.
        got: i64,
    },
    /// Partitions the stream tracked were revoked by a rebalance (another consumer joined the group).
    #[error("partitions {partitions:?} were revoked from this stream's consumer; use a separate group.id per stream, or the scale-out mode")]
    Revoked {
        /// The revoked partitions, as `topic-partition`.
        partitions: Vec<String>,
    },
    /// No starting position for some partitions and `auto.offset.reset` is none.
    #[error("no starting offset for {partitions:?} and auto.offset.reset is none")]
    NoStartingOffset {
        /// The partitions, as `topic-partition`.
        partitions: Vec<String>,
    },
    /// A location strategy or an executor pool was given no executor.
    #[error("{strategy} needs at least one executor")]
    NoExecutors {
        /// The strategy (or `ExecutorPool`).
        strategy: String,
    },
    /// An executor that is not in the pool.
    #[error("unknown executor {executor}")]
    UnknownExecutor {
        /// The executor's id.
        executor: String,
    },
    /// A location strategy left a partition without an executor.
    #[error("{strategy} placed no executor for {partition}")]
    Unplaced {
        /// The strategy.
        strategy: String,
        /// The partition.
        partition: TopicPartition,
    },
    /// A location strategy that cannot place batch reads of explicit ranges (PreferBrokers:
    /// there is no driver consumer to find leaders).
    #[error("{strategy} cannot be used for batch reads of explicit ranges: there is no driver consumer to find leaders; use PreferConsistent or PreferFixed")]
    NotForBatchReads {
        /// The strategy.
        strategy: String,
    },
    /// The task reading a partition of a batch stopped without a result (it panicked or
    /// was cancelled).
    #[error("the task reading {partition} failed: {reason}")]
    TaskFailed {
        /// The partition.
        partition: TopicPartition,
        /// The runtime's description.
        reason: String,
    },
    /// Reading or writing a checkpoint failed.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// An offset store refused a batch: the stored offset of a partition is not the range's start.
    #[error("offset store: {topic} partition {partition} is stored at {stored:?} but the batch starts at {from}; the batch was repeated or a range skipped")]
    OffsetMismatch {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What the store holds (`None` if nothing).
        stored: Option<i64>,
        /// The range's start.
        from: i64,
    },
    /// The offset store itself failed (its database, or your code inside its transaction).
    #[error("offset store: {source}")]
    Store {
        /// What failed, with its chain of causes.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stream was stopped.
    #[error("the stream is stopped")]
    Stopped,
}

impl From<ClientError> for StreamingError {
    /// A gap found by the client's range reader is the streaming layer's
    /// [`StreamingError::NonConsecutive`] (Spark's message); everything else wraps.
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NonConsecutive { partition, expected, got } => StreamingError::NonConsecutive {
                topic: partition.topic.to_string(),
                partition: partition.partition,
                expected,
                got,
            },
            e => StreamingError::Client(e),
        }
    }
}

impl StreamingError {
    /// An offset store error: your database's error (or a message) inside a store's
    /// transaction, kept as the source.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StreamingError::Store { source: source.into() }
    }

    /// Whether retrying (the batch, the read) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            StreamingError::Client(e) => e.is_retriable(),
            StreamingError::Store { .. } => true,
            _ => false,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StreamingError> = std::result::Result<T, E>;
