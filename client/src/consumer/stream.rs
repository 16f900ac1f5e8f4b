//! [`Consumer::stream`]: the consumer as a `futures` `Stream` of records (rdkafka's
//! `StreamConsumer`, rskafka's `StreamConsumer`), next to `poll`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ferrokafka_protocol::records::{Batch, BatchRecords, Record};

use super::{Consumer, ConsumerRecords};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// A record of [`RecordStream`]: it owns its partition (an `Arc` count, no copy) so it
/// can outlive the poll it came from. Key, value and headers are slices of the fetched
/// buffer, as with `poll`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// Topic and partition.
    pub topic_partition: TopicPartition,
    /// The record.
    pub record: Record,
    /// Leader epoch of the batch the record came in (-1 if unknown).
    pub leader_epoch: i32,
}

/// The records of one poll, owned: what the stream hands out one by one.
#[derive(Debug)]
pub(super) struct IntoRecords {
    parts: std::vec::IntoIter<(TopicPartition, i64, Vec<Batch>)>,
    part: Option<(TopicPartition, i64, std::vec::IntoIter<Batch>)>,
    current: Option<(BatchRecords, i32)>,
}

impl IntoRecords {
    pub(super) fn new(records: ConsumerRecords) -> Self {
        IntoRecords { parts: records.into_parts().into_iter(), part: None, current: None }
    }
}

impl Iterator for IntoRecords {
    type Item = Result<StreamRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let (Some((records, epoch)), Some((tp, _, _))) = (&mut self.current, &self.part) {
                match records.next() {
                    Some(Ok(record)) => {
                        return Some(Ok(StreamRecord { topic_partition: tp.clone(), record, leader_epoch: *epoch }))
                    }
                    Some(Err(source)) => {
                        let tp = tp.clone();
                        (self.current, self.part) = (None, None);
                        self.parts = Vec::new().into_iter();
                        return Some(Err(ClientError::Protocol { broker: None, partition: Some(tp), source }));
                    }
                    None => self.current = None,
                }
            }
            match &mut self.part {
                Some((_, from, batches)) => match batches.next() {
                    Some(b) => self.current = Some((b.records_from(*from), b.partition_leader_epoch)),
                    None => self.part = None,
                },
                None => {
                    let (tp, from, batches) = self.parts.next()?;
                    self.part = Some((tp, from, batches.into_iter()));
                }
            }
        }
    }
}

type Polling<'a> = Pin<Box<dyn Future<Output = (&'a mut Consumer, Result<ConsumerRecords>)> + Send + 'a>>;

enum State<'a> {
    Idle(&'a mut Consumer),
    Polling(Polling<'a>),
    Done,
}

/// The consumer as a [`futures_core::Stream`] of records, from
/// [`Consumer::stream`]. It polls as records are wanted; an error (a partition's
/// `OffsetOutOfRange` with `auto.offset.reset=none`, say) is one item and the stream
/// goes on; it ends when the consumer is closed.
pub struct RecordStream<'a> {
    state: State<'a>,
    buffered: Option<IntoRecords>,
}

impl<'a> RecordStream<'a> {
    pub(super) fn new(consumer: &'a mut Consumer) -> Self {
        RecordStream { state: State::Idle(consumer), buffered: None }
    }

    /// The next record (`None` once the consumer is closed): the stream's
    /// `next().await` without `futures-util`.
    pub async fn next(&mut self) -> Option<Result<StreamRecord>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next_record(cx)).await
    }

    fn poll_next_record(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<StreamRecord>>> {
        loop {
            if let Some(r) = self.buffered.as_mut().and_then(Iterator::next) {
                return Poll::Ready(Some(r));
            }
            self.buffered = None;
            match std::mem::replace(&mut self.state, State::Done) {
                State::Idle(c) => {
                    // One poll at a time; an empty poll (nothing within the wait) polls again.
                    self.state = State::Polling(Box::pin(async move {
                        let r = c.poll(Duration::from_millis(500)).await;
                        (c, r)
                    }));
                }
                State::Polling(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.state = State::Polling(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((c, result)) => {
                        self.state = State::Idle(c);
                        match result {
                            Ok(records) => self.buffered = Some(IntoRecords::new(records)),
                            Err(ClientError::Closed) => {
                                self.state = State::Done;
                                return Poll::Ready(None);
                            }
                            Err(e) => return Poll::Ready(Some(Err(e))),
                        }
                    }
                },
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl futures_core::Stream for RecordStream<'_> {
    type Item = Result<StreamRecord>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_record(cx)
    }
}
