//! The accumulator: per-partition queues of batches, open (being filled) and sealed
//! (ready to send, or put back to be sent again).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use ferrokafka_protocol::records::{OutputBuffers, RecordBatchBuilder};
use tokio::time::Instant;

use super::delivery::BatchDelivery;
use super::txn;
use crate::error::ClientError;
use crate::metadata::TopicPartition;

/// A batch being filled.
pub(crate) struct OpenBatch {
    pub(crate) builder: RecordBatchBuilder,
    /// Where the sealed batch's buffer goes back for reuse once acknowledged.
    pub(crate) buffers: OutputBuffers,
    pub(crate) delivery: BatchDelivery,
    pub(crate) created: Instant,
    /// Bytes of `buffer.memory` its records hold.
    pub(crate) reserved: usize,
    /// Room to reserve for records when the second record comes (0: none).
    pub(crate) grow_to: usize,
}

impl OpenBatch {
    /// Encodes the batch as the partition's `ordinal`-th; on failure its records are
    /// failed and `None` returned.
    pub(crate) fn seal(self, ordinal: u64) -> Option<SealedBatch> {
        let mut out = bytes::BytesMut::new();
        match self.builder.finish(&mut out) {
            Ok(()) => Some(SealedBatch {
                capacity: out.capacity(),
                buffers: self.buffers,
                data: out.freeze(),
                delivery: self.delivery,
                created: self.created,
                attempts: 0,
                reserved: self.reserved,
                ordinal,
                sequence: None,
            }),
            Err(e) => {
                self.delivery.fail(ClientError::Protocol { broker: None, partition: None, source: e });
                None
            }
        }
    }
}

/// An encoded batch waiting to be sent (again).
pub(crate) struct SealedBatch {
    pub(crate) data: Bytes,
    /// Capacity of `data`'s allocation.
    pub(crate) capacity: usize,
    /// Where `data`'s buffer goes when the batch is done with (sent for good or failed).
    pub(crate) buffers: OutputBuffers,
    pub(crate) delivery: BatchDelivery,
    pub(crate) created: Instant,
    pub(crate) attempts: u32,
    /// Bytes of `buffer.memory` its records hold.
    pub(crate) reserved: usize,
    /// Its place in the partition's order of batches.
    pub(crate) ordinal: u64,
    /// Base sequence, once stamped (idempotent producer, first send).
    pub(crate) sequence: Option<i32>,
}

impl SealedBatch {
    /// The batch is done with (acknowledged, or failed for good): its buffer goes back
    /// for a new batch, reused once every other handle (a request being written) is
    /// gone. Returns what reports its outcome.
    pub(crate) fn retire(self) -> BatchDelivery {
        self.buffers.keep(&self.data, self.capacity);
        self.delivery
    }
}

#[derive(Default)]
pub(crate) struct PartQueue {
    pub(crate) open: Option<OpenBatch>,
    /// Sealed batches in partition order (retries go back to their place).
    pub(crate) ready: VecDeque<SealedBatch>,
    pub(crate) in_flight: usize,
    /// Retry backoff: not sent before this instant.
    pub(crate) not_before: Option<Instant>,
    /// A batch failed and will be resent: nothing is sent until every batch in
    /// flight is back, so the resends go out in order.
    pub(crate) recovering: bool,
    /// Resends go out one request at a time until one of them is acknowledged (as the
    /// Java producer resends in sequence order). Pipelining new batches behind a resend
    /// that fails again lets them be stored first, and a batch resent after more than
    /// five newer ones is beyond the broker's duplicate window: refused out of order,
    /// for ever. Holds the ordinal of the earliest batch to resend: only an answer for
    /// that batch or a later one ends it (the late success of a batch sent before it,
    /// answered after the failure, once ended it and let the resend go out pipelined).
    pub(crate) resending: Option<u64>,
    /// Ordinal of the next sealed batch.
    pub(crate) sealed: u64,
    /// Its last batch was sealed by `linger.ms` or a flush, not because it was full:
    /// the next batch does not start in a reused buffer with room for a whole batch (a
    /// sparse partition must not pin one), but in one sized for the last batch.
    pub(crate) lingered: bool,
    /// Bytes of records in the last batch sealed.
    pub(crate) last_records: usize,
    /// Next base sequence (idempotent producer).
    pub(crate) next_sequence: i32,
    /// The broker its batches in flight went to: the partition follows a leader move
    /// only once they are all back, so one connection carries them, in order.
    pub(crate) sent_to: Option<i32>,
}

impl PartQueue {
    /// Seals the open batch onto `ready`; returns the records and bytes of a batch that
    /// failed to encode (already reported to its futures).
    pub(crate) fn seal_open(&mut self) -> Option<(usize, usize)> {
        let b = self.open.take()?;
        self.lingered = true;
        self.last_records = b.builder.records_size();
        let failed = (b.delivery.len(), b.reserved);
        self.sealed += 1;
        match b.seal(self.sealed) {
            Some(s) => {
                self.ready.push_back(s);
                None
            }
            None => Some(failed),
        }
    }

    /// The batch of `ordinal` failed and will be resent: resends go out one at a time.
    pub(crate) fn resend_from(&mut self, ordinal: u64) {
        self.resending = Some(self.resending.map_or(ordinal, |first| first.min(ordinal)));
    }

    /// The batch of `ordinal` was acknowledged: the resends are over if it is the first
    /// batch that needed one, or a later one.
    pub(crate) fn acknowledged(&mut self, ordinal: u64) {
        if self.resending.is_some_and(|first| ordinal >= first) {
            self.resending = None;
        }
    }

    /// Puts a batch back at its place in `ready`.
    pub(crate) fn requeue(&mut self, batch: SealedBatch) {
        let at = self.ready.iter().position(|b| b.ordinal > batch.ordinal).unwrap_or(self.ready.len());
        self.ready.insert(at, batch);
    }
}

#[derive(Default)]
pub(crate) struct Accumulator {
    /// Fx-hashed: looked up once per record (`crate::fxhash`).
    pub(crate) parts: HashMap<TopicPartition, PartQueue, crate::fxhash::FxBuild>,
    /// Sticky partition per topic for records without a key.
    pub(super) sticky: HashMap<String, i32>,
    /// Topic names seen, shared by the queues' keys (no allocation per record).
    pub(super) topics: HashSet<Arc<str>>,
    /// The topic sent to last and its partition count, valid while the cluster's
    /// metadata generation is unchanged: a run of records to one topic looks up
    /// neither the metadata nor the topic names.
    pub(super) recent: Option<(Arc<str>, usize, u64)>,
    /// Records accepted and not yet delivered or failed.
    pub(crate) pending: usize,
    /// Bytes those records hold, bounded by `buffer.memory`.
    pub(crate) buffered: usize,
    /// `send` calls waiting for room; while any wait, lingering batches go out now.
    pub(crate) blocked: usize,
    /// `enable.idempotence`.
    pub(crate) idempotent: bool,
    /// Producer id and epoch (idempotent producer, once the cluster gave them).
    pub(crate) producer: Option<(i64, i16)>,
    /// Why the producer can send no more (idempotent producer after a batch failed
    /// for good, or no producer id): every record fails with it.
    pub(crate) fatal: Option<ClientError>,
    /// A batch failed for good: the epoch is bumped (KIP-360) once nothing is in flight.
    pub(crate) bump_epoch: bool,
    /// The transactional producer's state (`transactional.id` set).
    pub(crate) txn: Option<txn::Txn>,
    pub(crate) flushing: usize,
    pub(crate) closed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokafka_protocol::records::{DecodeOptions, NewRecord, RecordSet};
    use ferrokafka_protocol::Compression;

    fn open(buffers: &OutputBuffers, value: u8) -> OpenBatch {
        let mut builder = RecordBatchBuilder::with_buffer(Compression::None, buffers.take_mut());
        builder.reserve(1 << 16);
        for _ in 0..100 {
            builder.push(&NewRecord { key: None, value: Some(&[value; 300]), headers: &[], timestamp: 1 }).unwrap();
        }
        OpenBatch {
            builder,
            buffers: buffers.clone(),
            delivery: BatchDelivery::new(),
            created: Instant::now(),
            reserved: 0,
            grow_to: 0,
        }
    }

    fn values(data: &Bytes) -> Vec<u8> {
        let batch = RecordSet::new(data.clone(), DecodeOptions::default()).next().unwrap().unwrap();
        batch.views().map(|v| v.unwrap().value().unwrap()[0]).collect()
    }

    /// The trace of a stall `resends_keep_order_under_contention` found about once in a
    /// hundred runs: batch 3 was refused and 4 and 5 (pipelined behind it) out of
    /// order; then the answer to batch 1, sent before all of them and processed after
    /// (a request's completion is its own task), ended the resends, and batch 3 went out
    /// again with four more behind it. Its answer was lost, they were stored, and batch
    /// 3's next resend was beyond the broker's five-batch window: refused for ever.
    #[test]
    fn only_the_resent_batch_or_a_later_one_ends_the_resends() {
        let mut q = PartQueue::default();
        for failed in [3, 5, 4] {
            q.resend_from(failed);
        }
        assert_eq!(q.resending, Some(3));
        q.acknowledged(1);
        q.acknowledged(2);
        assert_eq!(q.resending, Some(3), "a batch sent before the failed one ends nothing");
        q.acknowledged(3);
        assert_eq!(q.resending, None);
        q.resend_from(7);
        q.acknowledged(9);
        assert_eq!(q.resending, None, "a later batch stored means the earlier ones were");
    }

    /// A retired batch's buffer carries the next batch; one still held (a request
    /// being written) is never written over.
    #[test]
    fn retired_batch_buffers_are_reused() {
        let buffers = OutputBuffers::new();
        let first = open(&buffers, 1).seal(1).unwrap();
        let at = first.data.as_ptr();
        let in_request = first.data.clone();
        first.retire().succeed(0, 0);
        let second = open(&buffers, 2).seal(2).unwrap();
        assert_ne!(second.data.as_ptr(), at, "a buffer still held was reused");
        assert!(values(&in_request).iter().all(|v| *v == 1));
        drop(in_request);
        second.retire().succeed(0, 100);
        let third = open(&buffers, 3).seal(3).unwrap();
        assert_eq!(third.data.as_ptr(), at, "the released buffer was not reused");
        assert_eq!(values(&third.data), vec![3; 100]);
    }
}
