//! What [`Consumer::poll`](super::Consumer::poll) returns.

use ferrokafka_protocol::records::{Batch, BatchViews, Record, RecordView};

use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// One record with the partition it came from.
///
/// From [`ConsumerRecords::iter`], `record` is an owned [`Record`] whose key, value and
/// headers are `Bytes` slices of the fetched buffer. From [`ConsumerRecords::views`] it
/// is a [`RecordView`] borrowing that buffer ([`ConsumerRecordView`]): no refcount per
/// record, the cheaper way to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord<'a, R = Record> {
    /// Topic and partition.
    pub topic_partition: &'a TopicPartition,
    /// The record (offset, timestamp, key, value, headers).
    pub record: R,
    /// Leader epoch of the batch the record came in (-1 if unknown).
    pub leader_epoch: i32,
}

/// A record borrowed from the poll's [`ConsumerRecords`].
pub type ConsumerRecordView<'a> = ConsumerRecord<'a, RecordView<'a>>;

/// The batches returned by one poll, grouped by partition in fetch order.
#[derive(Debug, Default)]
pub struct ConsumerRecords {
    parts: Vec<(TopicPartition, i64, Vec<Batch>)>,
}

impl ConsumerRecords {
    pub(crate) fn push(&mut self, tp: TopicPartition, from: i64, batches: Vec<Batch>) {
        self.parts.push((tp, from, batches));
    }

    /// Whether nothing arrived.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Records declared by the batches (an upper bound of what iteration yields).
    pub fn record_count_hint(&self) -> usize {
        self.parts.iter().flat_map(|(_, _, b)| b).map(|b| b.record_count as usize).sum()
    }

    /// The partitions that have data, in fetch order.
    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.parts.iter().map(|(tp, _, _)| tp)
    }

    /// The batches of each partition (for callers that want batch metadata).
    pub fn batches(&self) -> impl Iterator<Item = (&TopicPartition, &Batch)> {
        self.parts.iter().flat_map(|(tp, _, bs)| bs.iter().map(move |b| (tp, b)))
    }

    pub(super) fn into_parts(self) -> Vec<(TopicPartition, i64, Vec<Batch>)> {
        self.parts
    }

    /// Iterates every record as an owned [`Record`]; a corrupt record ends iteration
    /// with its error.
    pub fn iter(&self) -> RecordsIter<'_> {
        RecordsIter(self.views())
    }

    /// Iterates every record as a [`RecordView`] borrowing from these batches; a corrupt
    /// record ends iteration with its error. Nothing is allocated or reference-counted
    /// per record; call [`RecordView::to_record`] (or `key_bytes`/`value_bytes`) to keep
    /// one past this `ConsumerRecords`.
    pub fn views(&self) -> RecordViews<'_> {
        RecordViews { parts: &self.parts, part: 0, batch: 0, current: None }
    }
}

impl<'a> IntoIterator for &'a ConsumerRecords {
    type Item = Result<ConsumerRecord<'a>>;
    type IntoIter = RecordsIter<'a>;
    fn into_iter(self) -> RecordsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`ConsumerRecords`] as owned records.
#[derive(Debug)]
pub struct RecordsIter<'a>(RecordViews<'a>);

impl<'a> Iterator for RecordsIter<'a> {
    type Item = Result<ConsumerRecord<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| {
            r.map(|c| ConsumerRecord {
                topic_partition: c.topic_partition,
                record: c.record.to_record(),
                leader_epoch: c.leader_epoch,
            })
        })
    }
}

/// Iterator over [`ConsumerRecords`] as [`RecordView`]s.
#[derive(Debug)]
pub struct RecordViews<'a> {
    parts: &'a [(TopicPartition, i64, Vec<Batch>)],
    part: usize,
    batch: usize,
    current: Option<(BatchViews<'a>, i32)>,
}

impl<'a> Iterator for RecordViews<'a> {
    type Item = Result<ConsumerRecordView<'a>>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (tp, from, batches) = self.parts.get(self.part)?;
            if let Some((records, epoch)) = &mut self.current {
                match records.next() {
                    Some(Ok(record)) => {
                        return Some(Ok(ConsumerRecord { topic_partition: tp, record, leader_epoch: *epoch }))
                    }
                    Some(Err(source)) => {
                        self.part = self.parts.len();
                        return Some(Err(ClientError::Protocol { broker: None, partition: Some(tp.clone()), source }));
                    }
                    None => self.current = None,
                }
            }
            match batches.get(self.batch) {
                Some(b) => {
                    self.current = Some((b.views_from(*from), b.partition_leader_epoch));
                    self.batch += 1;
                }
                None => {
                    self.part += 1;
                    self.batch = 0;
                }
            }
        }
    }
}
