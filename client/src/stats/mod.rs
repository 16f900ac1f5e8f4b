//! Statistics an operator watches, as librdkafka's statistics JSON and the Java
//! client's metrics give them: per broker (connections, requests, bytes, round trips),
//! per partition (positions, watermarks, lag), errors by API and code, the producer
//! (queue, batches, retries, delivery latency) and the group (generation, rebalances).
//!
//! Where they are recorded:
//! - a connection counts its requests, bytes and round trips in its broker's
//!   `BrokerCounters` (shared by the broker's general, produce, fetch and group
//!   connections; `conn/mod.rs`), and the cluster counts connects when it opens one
//!   (`cluster.rs`);
//! - the code that reads an answer's error codes counts each non-zero code in its
//!   broker's error counts (`Connection::note_error`, or `Cluster::note_error` by
//!   address): Produce (per partition), Fetch (per request and partition,
//!   consumer and range reads), ListOffsets, OffsetCommit, OffsetFetch,
//!   FindCoordinator, JoinGroup, SyncGroup, Heartbeat, ConsumerGroupHeartbeat, the
//!   transactional APIs (at the transaction coordinator) and CreateTopics/DeleteTopics;
//! - the producer's sender counts batches sent, retried, delivered and failed when it
//!   settles them (`producer/sender.rs`);
//! - the group member counts a rebalance when its assignment changes;
//! - the consumer reads its partition state when asked.
//!
//! Counting is a few relaxed atomic adds per request or batch, never per record.
//!
//! The same figures go to the [`metrics`] facade, for Prometheus or OpenTelemetry
//! exporters: `ferrokafka_broker_connects_total`, `…_requests_total`,
//! `…_request_failures_total`, `…_bytes_sent_total`, `…_bytes_received_total` (counters),
//! `ferrokafka_broker_requests_in_flight` (gauge) and `ferrokafka_broker_rtt_seconds`
//! (histogram), each labelled `broker="host:port"`; `ferrokafka_consumer_lag` (gauge,
//! `topic`, `partition`), set when a fetch moves a partition; `ferrokafka_errors_total`
//! (`broker`, `api`, `code`); the producer's `ferrokafka_producer_queued_records`,
//! `…_queued_bytes` (gauges), `…_batches_total`, `…_retries_total`,
//! `…_records_delivered_total`, `…_records_failed_total` (counters), `…_batch_bytes` and
//! `…_delivery_latency_seconds` (histograms), labelled `client_id` (give each
//! producer its own `client.id` to tell them apart); the group's
//! `ferrokafka_group_rebalances_total` and `ferrokafka_group_assigned_partitions`
//! (`group`). The handles are made once per broker, partition, producer and group;
//! without an installed recorder they do nothing.

mod broker;
mod callback;
mod errors;
mod group;
mod json;
mod producer;

pub(crate) use broker::BrokerCounters;
pub(crate) use callback::Scheduled;
pub use callback::StatisticsCallback;
pub(crate) use errors::ErrorCounts;
pub(crate) use group::GroupCounters;
pub(crate) use producer::ProducerCounters;

use std::time::Duration;

use crate::metadata::TopicPartition;

/// One broker's statistics (librdkafka's `brokers.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerStatistics {
    /// `host:port`.
    pub broker: String,
    /// `UP` with a connection open, `DOWN` when all closed, `INIT` before the first
    /// (librdkafka's `state`, without its intermediate states).
    pub state: &'static str,
    /// Connections open now (general, produce, fetch, group).
    pub connections: u64,
    /// Connections opened (`connects`).
    pub connects: u64,
    /// Requests sent (`tx`).
    pub requests: u64,
    /// Answers received (`rx`).
    pub responses: u64,
    /// Requests that got no answer: timed out or cut by a closed connection (`txerrs`).
    pub failed_requests: u64,
    /// Requests awaiting their answer now (`waitresp_cnt`).
    pub in_flight: u64,
    /// Request bytes written (`txbytes`).
    pub bytes_sent: u64,
    /// Answer bytes read (`rxbytes`).
    pub bytes_received: u64,
    /// Mean round trip, request queued to answer read (`rtt.avg`).
    pub rtt_avg: Duration,
    /// Longest round trip (`rtt.max`).
    pub rtt_max: Duration,
    /// Error codes this broker answered, by API and code (Java's per-node error
    /// metrics; librdkafka keeps none per broker).
    pub errors: Vec<ErrorStatistics>,
}

/// One assigned partition's statistics (librdkafka's `topics.*.partitions.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionStatistics {
    /// The partition.
    pub partition: TopicPartition,
    /// The next offset the application consumes (`app_offset`; `None` before it is known).
    pub position: Option<i64>,
    /// The high watermark last seen (`hi_offset`, -1 before the first fetch).
    pub high_watermark: i64,
    /// The last stable offset last seen (`ls_offset`, -1 before the first fetch).
    pub last_stable_offset: i64,
    /// Records between the position and the end (`consumer_lag`; the last stable
    /// offset under `read_committed`).
    pub lag: Option<i64>,
    /// The offset this group member last committed or found committed for it
    /// (`committed_offset`; `None` outside a group, or before either).
    pub committed: Option<i64>,
    /// Offsets the application's position moved over in this partition: its records,
    /// plus control records and compaction gaps (librdkafka's `rxmsgs` and Java's
    /// `records-consumed-total` count records only; counting offsets costs nothing per
    /// record). Its derivative is the consumption rate.
    pub consumed_offsets: u64,
    /// Paused by the application.
    pub paused: bool,
}

/// A producer's queue (librdkafka's top-level `msg_cnt`, `msg_size`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStatistics {
    /// Records accepted by `send` and not yet delivered or failed (`msg_cnt`).
    pub queued_records: u64,
    /// The bytes they hold, bounded by `buffer.memory` (`msg_size`).
    pub queued_bytes: u64,
    /// `send` calls waiting for room in `buffer.memory` now.
    pub blocked_sends: u64,
    /// Batches sent, first attempts and retries (librdkafka's `batchcnt`).
    pub batches_sent: u64,
    /// Batches sent again after a retriable error (librdkafka's `txretries`, Java's
    /// `record-retry-total` counts records instead).
    pub retries: u64,
    /// Records the brokers acknowledged (`txmsgs`).
    pub records_delivered: u64,
    /// Records failed for good (Java's `record-error-total`).
    pub records_failed: u64,
    /// Mean bytes per batch sent (Java's `batch-size-avg`).
    pub batch_bytes_avg: u64,
    /// `batch_bytes_avg` as a percentage of `batch.size`: how full batches leave.
    pub batch_fill_percent: u64,
    /// Mean time from a batch's first record to its acknowledgement (Java's
    /// `record-queue-time-avg` plus `request-latency-avg`).
    pub delivery_latency_avg: Duration,
    /// The longest such time.
    pub delivery_latency_max: Duration,
}

/// Answers with one error code to one API, since the client started (Java's
/// `error-rate` and librdkafka's error counters, split by code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorStatistics {
    /// The request.
    pub api: crate::Api,
    /// The code the broker answered (codes this client does not know are counted
    /// together, as `UNKNOWN`, code -32768, so a broker cannot grow the table).
    pub code: crate::ErrorCode,
    /// How many answers (one per partition for partition-level codes).
    pub count: u64,
}

/// A group member (librdkafka's `cgrp`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStatistics {
    /// `group.id`.
    pub group_id: String,
    /// The member id ("" before joining).
    pub member_id: String,
    /// `classic` or `consumer` (KIP-848).
    pub protocol: &'static str,
    /// The generation (classic) or member epoch (KIP-848); -1 or 0 before joining.
    pub generation: i32,
    /// `up` in a generation with an assignment, `joining` otherwise (`state`).
    pub state: &'static str,
    /// Assignments taken so far (`rebalance_cnt`).
    pub rebalances: u64,
    /// Partitions assigned now (`assignment_size`).
    pub assignment_size: usize,
}

/// A snapshot of a client's statistics; [`Statistics::to_json`] writes librdkafka's
/// statistics layout (its key names) for the parts ferrokafka has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Every broker the client has talked to.
    pub brokers: Vec<BrokerStatistics>,
    /// Assigned partitions (consumers).
    pub partitions: Vec<PartitionStatistics>,
    /// The producer's queue (producers).
    pub producer: Option<ProducerStatistics>,
    /// The group membership (group consumers).
    pub group: Option<GroupStatistics>,
    /// Error codes brokers answered, by API and code, summed over the brokers (each
    /// broker's own are in [`BrokerStatistics::errors`]).
    pub errors: Vec<ErrorStatistics>,
}

impl Statistics {
    /// The summed lag of every partition whose lag is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }

    /// Answers with `code` (any API).
    pub fn errors_with(&self, code: i16) -> u64 {
        self.errors.iter().filter(|e| e.code.code() == code).map(|e| e.count).sum()
    }
}
