//! The reading side of a range: [`PartitionRecords`] hands out the records of one
//! range, chunk by chunk, as the fetch loop delivers them.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use ferrokafka_protocol::records::{Batch, BatchRecords, Record};
use tokio::sync::{mpsc, Notify};

use super::budget::Reservation;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

mod views;

/// One partition's decoded answer to one fetch, holding its bytes' reservation.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) batches: Vec<Batch>,
    /// The offset the fetch asked for: records below it are skipped.
    pub(crate) start: i64,
    /// Where the next fetch of this partition starts.
    pub(crate) next: i64,
    pub(crate) reservation: Option<Reservation>,
}

/// A position inside a chunk.
#[derive(Debug)]
pub(crate) struct Cursor {
    chunk: Chunk,
    batch: usize,
    records: Option<BatchRecords>,
    peeked: Option<Record>,
}

impl Cursor {
    pub(crate) fn new(chunk: Chunk) -> Cursor {
        Cursor { chunk, batch: 0, records: None, peeked: None }
    }

    fn next_record(&mut self) -> Option<std::result::Result<Record, ferrokafka_protocol::ProtocolError>> {
        if let Some(r) = self.peeked.take() {
            return Some(Ok(r));
        }
        loop {
            if let Some(it) = &mut self.records {
                match it.next() {
                    Some(r) => return Some(r),
                    None => self.records = None,
                }
            }
            let b = self.chunk.batches.get(self.batch)?;
            self.records = Some(b.records_from(self.chunk.start));
            self.batch += 1;
        }
    }

    /// Skips records below `offset`: the offset of the first record at or past it,
    /// `Ok(None)` when the chunk holds none, `Err` at a record that does not decode.
    fn skip_below(&mut self, offset: i64) -> std::result::Result<Option<i64>, ()> {
        loop {
            match self.next_record() {
                None => return Ok(None),
                Some(Ok(r)) if r.offset < offset => continue,
                Some(Ok(r)) => {
                    let o = r.offset;
                    self.peeked = Some(r);
                    return Ok(Some(o));
                }
                Some(Err(_)) => return Err(()),
            }
        }
    }
}

/// What a finished range read left over: the rest of its last chunk, so that the
/// next range of the partition continues without fetching those bytes again
/// (Spark's cached consumer). It keeps its bytes' reservation.
#[derive(Debug)]
pub struct Remainder {
    pub(crate) tp: TopicPartition,
    pub(crate) cursor: Cursor,
    /// `until` of the range that left it.
    pub(crate) served_until: i64,
}

impl Remainder {
    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Bytes it holds against the budget.
    pub fn bytes(&self) -> usize {
        self.cursor.chunk.reservation.as_ref().map_or(0, Reservation::bytes)
    }

    /// A cursor for a range starting at `from`, if this remainder continues there:
    /// its next record is `from` itself, or — gaps allowed — the range starts where
    /// the range that left it ended. Also returns where fetching continues.
    pub(crate) fn resume_at(mut self, from: i64, allow_gaps: bool) -> Option<(Cursor, i64)> {
        let after_last = self.served_until == from;
        let next = self.cursor.chunk.next;
        match self.cursor.skip_below(from) {
            Ok(Some(o)) if o == from || (after_last && allow_gaps) => Some((self.cursor, next)),
            Ok(Some(_)) => None,
            Ok(None) if next == from || (after_last && allow_gaps && next >= from) => Some((self.cursor, next)),
            Ok(None) => None,
            // A record that does not decode: the range fetches afresh (and meets the
            // error there) rather than continue past the rest of a broken batch.
            Err(()) => None,
        }
    }
}

/// Where a finished read puts its [`Remainder`].
pub type RemainderSink = Arc<Mutex<Option<Remainder>>>;

/// The records of one exact range `[from, until)`, in offset order, read lazily: at
/// most two fetched chunks (each at most `max.partition.fetch.bytes`) are held for it
/// at a time, whatever the size of the range. Records are views into the fetched
/// buffers (no copy).
///
/// Pull them with [`next`](Self::next) (or as a `futures` `Stream`); a range is never
/// read past `until`, and without `allow_non_consecutive` a gap in the offsets is an
/// error ([`ClientError::NonConsecutive`]).
#[derive(Debug)]
pub struct PartitionRecords {
    tp: TopicPartition,
    from: i64,
    until: i64,
    allow_gaps: bool,
    expected: i64,
    rx: Option<mpsc::Receiver<Result<Chunk>>>,
    current: Option<Cursor>,
    wake: Option<Arc<Notify>>,
    finished: bool,
    sink: Option<RemainderSink>,
    /// Started from an earlier read's remainder.
    resumed: bool,
    _guard: Option<Arc<TaskGuard>>,
}

impl PartitionRecords {
    pub(crate) fn new(
        tp: TopicPartition,
        (from, until): (i64, i64),
        allow_gaps: bool,
        rx: Option<mpsc::Receiver<Result<Chunk>>>,
        current: Option<Cursor>,
        wake: Option<Arc<Notify>>,
        guard: Option<Arc<TaskGuard>>,
    ) -> Self {
        let finished = from >= until;
        let resumed = current.is_some();
        PartitionRecords {
            tp,
            from,
            until,
            allow_gaps,
            expected: from,
            rx,
            current,
            wake,
            finished,
            sink: None,
            resumed,
            _guard: guard,
        }
    }

    /// Whether this read continues from what an earlier read left over (given to
    /// [`resume_ranges`](crate::range::resume_ranges) and continuing at `from`): a
    /// consumer-cache hit, in the streaming layer's terms.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    pub(crate) fn set_guard(&mut self, guard: Arc<TaskGuard>) {
        self._guard = Some(guard);
    }

    /// An empty range's records (nothing to read).
    pub fn empty(tp: TopicPartition, at: i64) -> Self {
        Self::new(tp, (at, at), false, None, None, None, None)
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The range: `(from, until)`.
    pub fn range(&self) -> (i64, i64) {
        (self.from, self.until)
    }

    /// Where the rest of the last chunk goes once the range has been read in full.
    pub fn keep_remainder_in(&mut self, sink: RemainderSink) {
        self.sink = Some(sink);
    }

    fn finish(&mut self) {
        self.finished = true;
        self.rx = None;
        if let (Some(sink), Some(cursor)) = (self.sink.take(), self.current.take()) {
            let rest = Remainder { tp: self.tp.clone(), cursor, served_until: self.until };
            *sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(rest);
        }
        self.current = None;
        if let Some(w) = &self.wake {
            w.notify_one();
        }
    }

    fn gap(&mut self, got: i64) -> ClientError {
        self.finished = true;
        self.current = None;
        self.rx = None;
        ClientError::NonConsecutive { partition: self.tp.clone(), expected: self.expected, got }
    }

    /// The next record of the range, `None` at its end.
    pub async fn next(&mut self) -> Option<Result<Record>> {
        std::future::poll_fn(|cx| self.poll_record(cx)).await
    }

    /// Reads the rest of the range into a vector.
    pub async fn collect(mut self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        while let Some(r) = self.next().await {
            out.push(r?);
        }
        Ok(out)
    }

    /// Counts the rest of the range's records (reading them, as views).
    pub async fn count(mut self) -> Result<usize> {
        let n = self.for_each_view(|_| {}).await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Record>>> {
        loop {
            if self.finished {
                return Poll::Ready(None);
            }
            if self.complete() {
                self.finish();
                return Poll::Ready(None);
            }
            if let Some(cur) = &mut self.current {
                match cur.next_record() {
                    Some(Ok(r)) => match self.judge(r.offset) {
                        Judged::Skip => continue,
                        Judged::Take => return Poll::Ready(Some(Ok(r))),
                        Judged::Past => {
                            if let Some(cur) = &mut self.current {
                                cur.peeked = Some(r);
                            }
                            self.finish();
                            return Poll::Ready(None);
                        }
                        Judged::Gap(e) => return Poll::Ready(Some(Err(e))),
                    },
                    Some(Err(source)) => return Poll::Ready(Some(Err(self.corrupt(source)))),
                    None => self.current = None,
                }
            }
            match self.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => return Poll::Ready(None),
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
            }
        }
    }

    /// Without gaps allowed, `until - 1` was handed out: the range is read.
    fn complete(&self) -> bool {
        !self.allow_gaps && self.expected >= self.until
    }

    /// What to do with the next record of the partition, at `offset`: the range's
    /// rules, shared by [`next`](Self::next) and [`for_each_view`](Self::for_each_view).
    fn judge(&mut self, offset: i64) -> Judged {
        if offset < self.expected {
            Judged::Skip
        } else if offset >= self.until {
            Judged::Past
        } else if offset != self.expected && !self.allow_gaps {
            Judged::Gap(self.gap(offset))
        } else {
            self.expected = offset + 1;
            Judged::Take
        }
    }

    fn corrupt(&mut self, source: ferrokafka_protocol::ProtocolError) -> ClientError {
        self.finished = true;
        self.current = None;
        self.rx = None;
        ClientError::Protocol { broker: None, partition: Some(self.tp.clone()), source }
    }

    /// Waits for the next chunk: `Ok(true)` when it is the current one, `Ok(false)` at
    /// the end of the range.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        let Some(rx) = &mut self.rx else {
            return Poll::Ready(self.end_of_data());
        };
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(w) = &self.wake {
                    w.notify_one();
                }
                self.current = Some(Cursor::new(chunk));
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finished = true;
                self.rx = None;
                Poll::Ready(Err(e))
            }
            Poll::Ready(None) => {
                self.rx = None;
                Poll::Ready(self.end_of_data())
            }
        }
    }

    /// Every chunk was delivered and the fetch position passed `until`: the rest of the
    /// range holds no records (markers, compaction). An error when gaps are refused.
    fn end_of_data(&mut self) -> Result<bool> {
        if !self.allow_gaps && self.expected < self.until {
            return Err(self.gap(self.until));
        }
        self.finish();
        Ok(false)
    }
}

/// A record's place in the range.
enum Judged {
    /// Below the position: already handed out, or before `from`.
    Skip,
    /// The next record of the range.
    Take,
    /// At or past `until`: the range is read.
    Past,
    /// Past a gap the range does not allow.
    Gap(ClientError),
}

impl futures_core::Stream for PartitionRecords {
    type Item = Result<Record>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_record(cx)
    }
}
/// Aborts the fetch loop when the last reader of its ranges is dropped.
#[derive(Debug)]
pub(crate) struct TaskGuard(pub(crate) tokio::task::AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
