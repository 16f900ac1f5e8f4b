//! What the producer sends and what it answers.

use bytes::Bytes;

/// A record to send.
#[derive(Clone, Debug, Default)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Bytes>,
    /// Value (`None` for a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; `None` = now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value only.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord { topic: topic.into(), value: Some(value.into()), ..Default::default() }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// Where a record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Partition.
    pub partition: i32,
    /// Offset (-1 with `acks=0`).
    pub offset: i64,
}

impl ProducerRecord {
    /// This record, borrowed, for [`Producer::send_ref`](super::Producer::send_ref).
    pub fn as_ref(&self) -> ProducerRecordRef<'_> {
        ProducerRecordRef {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
            timestamp: self.timestamp,
        }
    }
}

/// A record to send, borrowed: nothing is allocated to send it. The producer copies
/// key, value and headers into the batch it builds, so the caller's buffers are free
/// again as soon as [`Producer::send_ref`](super::Producer::send_ref) returns (Java's
/// `send(new ProducerRecord<>(…))` and librdkafka's `rd_kafka_produce` with
/// `RD_KAFKA_MSG_F_COPY`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProducerRecordRef<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: &'a [(String, Option<Bytes>)],
    /// Create time in ms since the epoch; `None` = now.
    pub timestamp: Option<i64>,
}
