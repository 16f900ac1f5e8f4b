//! Exact-range reads: "the records at offsets `[from, until)` of this partition",
//! for many partitions at once, in bounded memory.
//!
//! This is the one reader of exact ranges: `ferrokafka read-range`, the streaming
//! layer's batches and batch reads all use it. [`read_ranges`] starts one fetch loop
//! for a set of ranges; it sends one Fetch per leader for every partition whose
//! reader has room, and each range's [`PartitionRecords`] hands out records as they
//! arrive. Memory:
//!
//! - per range, at most two fetched chunks (the one being read and the next), each
//!   at most `max.partition.fetch.bytes` (plus its decompressed size), whatever the
//!   range's length;
//! - across every range sharing a [`MemoryBudget`], at most the budget's limit: a
//!   fetch reserves its bytes first and waits for room.
//!
//! A read never returns a record outside its range, steps over gaps when
//! `allow_non_consecutive` is set (compaction, transaction markers, aborted records;
//! otherwise a gap is [`ClientError::NonConsecutive`]), retries retriable broker
//! errors (leader moves, timeouts) until `poll_timeout` passes without progress, and
//! fails with [`ClientError::RangeUnavailable`], naming the log's real bounds, when the
//! range starts below the log start or the log ends before `until` and has not grown
//! within `catch_up`.
//!
//! | Java / Spark | ferrokafka |
//! |---|---|
//! | `consumer.assign(tp); consumer.seek(tp, from); poll …` until `until` (Spark's `KafkaRDD` iterator) | `read_ranges(&cluster, vec![ExactRange::new(tp, from, until)?], opts, budget)` |
//! | `spark.streaming.kafka.consumer.poll.ms` | [`RangeOptions::poll_timeout`] |
//! | `spark.streaming.kafka.allowNonConsecutiveOffsets` | [`RangeOptions::allow_non_consecutive`] |

use std::sync::Arc;
use std::time::Duration;

use ferrokafka_protocol::records::Record;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

mod budget;
mod reader;
mod records;

pub use budget::{MemoryBudget, Reservation};
pub use records::{PartitionRecords, Remainder, RemainderSink};

/// One range to read: offsets `[from, until)` of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactRange {
    /// The partition.
    pub tp: TopicPartition,
    /// First offset (inclusive).
    pub from: i64,
    /// End offset (exclusive).
    pub until: i64,
}

impl ExactRange {
    /// A range; `from` must be non-negative and not after `until`.
    pub fn new(tp: TopicPartition, from: i64, until: i64) -> Result<Self> {
        if from < 0 || until < from {
            return Err(ClientError::InvalidRange { partition: tp, from, until });
        }
        Ok(ExactRange { tp, from, until })
    }
}

/// How ranges are read.
#[derive(Clone, Copy, Debug)]
pub struct RangeOptions {
    /// Longest time a range may make no progress before it fails (Spark's
    /// `spark.streaming.kafka.consumer.poll.ms`, 120 s).
    pub poll_timeout: Duration,
    /// Accept offset gaps (compaction, transaction markers, aborted records).
    pub allow_non_consecutive: bool,
    /// How long a range whose `until` is past the log end waits for the log to grow
    /// once the reader has caught up with it (a follower catching up, a producer's
    /// acknowledgement racing the high watermark): 2 s by default.
    pub catch_up: Duration,
}

impl Default for RangeOptions {
    fn default() -> Self {
        RangeOptions {
            poll_timeout: Duration::from_secs(120),
            allow_non_consecutive: false,
            catch_up: Duration::from_secs(2),
        }
    }
}

/// Starts reading `ranges` with one fetch loop (one Fetch per leader for all of them),
/// within `budget`. Readers come back in the order of `ranges`; the loop stops when
/// every reader is done or dropped. Needs a tokio runtime.
pub fn read_ranges(
    cluster: &Cluster,
    ranges: Vec<ExactRange>,
    opts: RangeOptions,
    budget: Arc<MemoryBudget>,
) -> Vec<PartitionRecords> {
    resume_ranges(cluster, ranges.into_iter().map(|r| (r, None)).collect(), opts, budget)
}

/// Like [`read_ranges`], continuing from what earlier reads of the same partitions
/// left over ([`PartitionRecords::keep_remainder_in`]) where a remainder continues
/// at the range's start; other remainders are dropped.
pub fn resume_ranges(
    cluster: &Cluster,
    ranges: Vec<(ExactRange, Option<Remainder>)>,
    opts: RangeOptions,
    budget: Arc<MemoryBudget>,
) -> Vec<PartitionRecords> {
    let specs = ranges
        .into_iter()
        .map(|(r, rest)| {
            let resume = rest.filter(|m| m.tp == r.tp).and_then(|m| m.resume_at(r.from, opts.allow_non_consecutive));
            reader::Spec { tp: r.tp, from: r.from, until: r.until, resume }
        })
        .collect();
    reader::start_readers(cluster, specs, opts, budget)
}

/// Reads one range (the form `ferrokafka read-range` uses): a reader with a budget
/// of its own, two fetches' worth.
#[derive(Debug)]
pub struct RangeReader {
    records: PartitionRecords,
}

impl RangeReader {
    /// A reader of `[from, until)`; `poll_timeout` bounds the wait for data that
    /// should be there (Spark's `spark.streaming.kafka.consumer.poll.ms`).
    pub fn new(cluster: Cluster, tp: TopicPartition, from: i64, until: i64, poll_timeout: Duration) -> Result<Self> {
        let range = ExactRange::new(tp, from, until)?;
        let budget = MemoryBudget::new(2 * cluster.config().max_partition_fetch_bytes());
        let opts = RangeOptions {
            poll_timeout,
            catch_up: poll_timeout.min(RangeOptions::default().catch_up),
            ..Default::default()
        };
        let mut readers = read_ranges(&cluster, vec![range], opts, budget);
        let records = readers
            .pop()
            .ok_or(ClientError::TaskFailed { task: "range reader", reason: "no reader for the range".into() })?;
        Ok(RangeReader { records })
    }

    /// The next record, `None` once the range is read.
    pub async fn next(&mut self) -> Option<Result<Record>> {
        self.records.next().await
    }

    /// The records, as a lazy reader.
    pub fn into_records(self) -> PartitionRecords {
        self.records
    }

    /// Reads the whole range.
    pub async fn read_all(self) -> Result<Vec<Record>> {
        self.records.collect().await
    }
}
